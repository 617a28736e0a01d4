//! jobsched benchmarks. Each workload sets itself up, runs `--runs` times, and prints a markdown table
//! (median, min, max) plus one JSON line per run.
//!
//! ```text
//! cargo run --release -p jobsched-bench -- throughput --tasks 100000
//! cargo run --release -p jobsched-bench -- scale --jobs 1000000
//! cargo run --release -p jobsched-bench -- store --backend mysql
//! cargo run --release -p jobsched-bench -- store --backend sqlite
//! cargo run --release -p jobsched-bench -- kafka --tasks 20000
//! ```

mod kafka;
mod measure;
mod store;
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
    /// End-to-end tasks/s in process: N tasks fire at once, run a no-op handler, and their results are
    /// recorded.
    Throughput {
        /// Tasks per run.
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
        /// Executors.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// Tasks each executor runs at once. A no-op handler finishes inline, so slots only bound how many
        /// tasks one scheduler ↔ executor round trip carries.
        #[arg(long, default_value_t = 1024)]
        capacity: u32,
        /// How tasks are created: `fire` (one-shot jobs due at the same instant) or `execute` (one job run
        /// N times through `Scheduler::execute`, all requests in flight at once).
        #[arg(long, default_value = "fire")]
        via: String,
        /// Count completions with a live event subscriber instead of polling the engine's counters.
        #[arg(long)]
        events: bool,
        /// Bulk storage writes in flight at once.
        #[arg(long, default_value_t = 4)]
        storage_concurrency: usize,
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
    /// Execution records written per second through a SQL store (batched and one per call, plus the
    /// result updates), next to a plain multi-row INSERT of the same rows on the same server.
    Store {
        /// `mysql` (the server of `--mysql`) or `sqlite` (files under `--dir`).
        #[arg(long, default_value = "mysql")]
        backend: String,
        /// MySQL server, without a database (each figure gets a fresh one).
        #[arg(
            long,
            env = "JOBSCHED_TEST_MYSQL",
            default_value = "mysql://jobsched:jobsched@127.0.0.1:3306"
        )]
        mysql: String,
        /// Directory for SQLite files (each figure gets a fresh one).
        #[arg(long, default_value_os_t = std::env::temp_dir())]
        dir: std::path::PathBuf,
        /// Records per batched figure.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// Records per one-at-a-time figure.
        #[arg(long, default_value_t = 20_000)]
        single_records: usize,
        /// Records per call, and rows per plain INSERT statement.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        writers: usize,
    },
    /// End to end through MariaDB, Kafka and ZooKeeper: N no-op tasks fired at once (tasks/s), then a
    /// steady load of every-second jobs (fire → start lag).
    Kafka {
        /// MySQL server, without a database (each run gets a fresh one).
        #[arg(
            long,
            env = "JOBSCHED_TEST_MYSQL",
            default_value = "mysql://jobsched:jobsched@127.0.0.1:3306"
        )]
        mysql: String,
        /// Kafka brokers.
        #[arg(long, env = "JOBSCHED_TEST_KAFKA", default_value = "127.0.0.1:9092")]
        kafka: String,
        /// ZooKeeper hosts.
        #[arg(
            long,
            env = "JOBSCHED_TEST_ZOOKEEPER",
            default_value = "127.0.0.1:2181"
        )]
        zookeeper: String,
        /// Tasks fired at once.
        #[arg(long, default_value_t = 20_000)]
        tasks: usize,
        /// Slots per executor (2 executors).
        #[arg(long, default_value_t = 256)]
        capacity: u32,
        /// Every-second jobs of the latency run.
        #[arg(long, default_value_t = 50)]
        latency_jobs: usize,
        /// Seconds of the latency run.
        #[arg(long, default_value_t = 10)]
        latency_secs: u64,
    },
    /// One scale run in this process (the `scale` workload starts one fresh process per run, so memory
    /// figures are not polluted by earlier runs).
    #[command(hide = true)]
    ScaleOnce {
        #[arg(long)]
        jobs: usize,
        #[arg(long)]
        fires: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    // Logs only when asked for (JOBSCHED_LOG=info, …), on standard error: the tables stay clean.
    if let Ok(filter) = std::env::var("JOBSCHED_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
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
                events,
                storage_concurrency,
            } => {
                let p = workloads::Throughput {
                    tasks,
                    executors,
                    capacity,
                    via_execute: via == "execute",
                    observe: if events {
                        workloads::Observe::Events
                    } else {
                        workloads::Observe::Poll
                    },
                    storage_concurrency,
                };
                workloads::throughput(cli.runs, p).await
            }
            Workload::Store {
                backend,
                mysql,
                dir,
                records,
                single_records,
                batch,
                writers,
            } => {
                let target = match backend.as_str() {
                    "mysql" => store::Target::Mysql(mysql),
                    "sqlite" => store::Target::Sqlite(dir),
                    other => {
                        eprintln!("unknown --backend '{other}': expected mysql or sqlite");
                        std::process::exit(2);
                    }
                };
                let p = store::StoreBench {
                    target,
                    records,
                    single_records,
                    batch,
                    writers,
                };
                store::store(cli.runs, p).await
            }
            Workload::Kafka {
                mysql,
                kafka,
                zookeeper,
                tasks,
                capacity,
                latency_jobs,
                latency_secs,
            } => {
                let p = kafka::KafkaBench {
                    mysql,
                    kafka,
                    zookeeper,
                    tasks,
                    capacity,
                    latency_jobs,
                    latency_secs,
                };
                kafka::kafka(cli.runs, p).await
            }
            Workload::Scale { jobs, fires } => workloads::scale(cli.runs, jobs, fires).await,
            Workload::ScaleOnce { jobs, fires } => workloads::scale_once(jobs, fires).await,
        }
    });
}
