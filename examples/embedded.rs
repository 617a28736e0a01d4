//! Embeds the whole scheduler in one process: `cargo run -p jobsched-examples --example embedded [SECONDS]`.
//!
//! Runs a cron job that echoes `hello` every second and a custom-handler job every two seconds, printing
//! each result as it arrives; stops after SECONDS (or on Ctrl-C) and prints how many runs succeeded.

#![allow(clippy::print_stdout)] // An example prints what it does.

use std::time::Duration;

#[tokio::main]
async fn main() -> jobsched::Result<()> {
    let seconds = std::env::args().nth(1).and_then(|s| s.parse::<u64>().ok());
    let runs = jobsched_examples::run_embedded(seconds.map(Duration::from_secs)).await?;
    println!("successful runs: {runs:?}");
    Ok(())
}
