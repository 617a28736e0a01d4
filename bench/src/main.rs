//! jobsched benchmarks. Each workload sets itself up, runs `--runs` times, and prints a markdown table
//! (median, min, max) plus one JSON line per run.
//!
//! ```text
//! cargo run --release -p jobsched-bench -- throughput --tasks 100000
//! cargo run --release -p jobsched-bench -- scale --jobs 1000000
//! ```

mod measure;
mod workloads;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "jobsched benchmarks")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
    /// Runs per figure (the table shows median, min and max).
    #[arg(long, default_value_t = 3, global = true)]
    runs: usize,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// End-to-end tasks/s in process: N one-shot jobs fire at the same instant, run a no-op handler, and
    /// their results are recorded.
    Throughput {
        /// Tasks per run.
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
        /// Executors.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Tasks each executor runs at once.
        #[arg(long, default_value_t = 64)]
        capacity: u32,
        /// How tasks are created: `fire` (one-shot jobs due at the same instant) or `execute` (one job run
        /// N times through `Scheduler::execute`, all requests in flight at once).
        #[arg(long, default_value = "fire")]
        via: String,
    },
    /// Scale: register N cron jobs (firing once a day), report registration time, RSS, reload time and
    /// the cost of a fire with N jobs scheduled against an empty scheduler.
    Scale {
        /// Registered cron jobs.
        #[arg(long, default_value_t = 1_000_000)]
        jobs: usize,
        /// One-shot jobs fired together to measure the per-fire cost.
        #[arg(long, default_value_t = 20_000)]
        fires: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        match cli.workload {
            Workload::Throughput {
                tasks,
                executors,
                capacity,
                via,
            } => {
                workloads::throughput(cli.runs, tasks, executors, capacity, via == "execute").await
            }
            Workload::Scale { jobs, fires } => workloads::scale(cli.runs, jobs, fires).await,
        }
    });
}
