//! Embeds the whole scheduler in one process:
//! `cargo run -p jobsched-examples --example embedded [SECONDS] [DATA_DIR]`.
//!
//! Runs a cron job that echoes `hello` every second and a custom-handler job every two seconds, printing
//! each result as it arrives; stops after SECONDS (or on Ctrl-C) and prints how many runs succeeded. Jobs
//! and history are kept in an SQLite file in DATA_DIR (default `./jobsched-data`): run it again and it
//! goes on where it stopped.

#![allow(clippy::print_stdout)] // An example prints what it does.

use std::path::PathBuf;
use std::time::Duration;

#[tokio::main]
async fn main() -> jobsched::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds = args.next().and_then(|s| s.parse::<u64>().ok());
    let dir = args
        .next()
        .map_or_else(|| PathBuf::from("jobsched-data"), PathBuf::from);
    let summary = jobsched_examples::run_embedded(&dir, seconds.map(Duration::from_secs)).await?;
    println!("successful runs: {:?}", summary.succeeded);
    Ok(())
}
