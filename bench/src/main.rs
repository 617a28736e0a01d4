//! jobsched benchmarks. Each workload sets itself up, runs `--runs` times, and prints a markdown table
//! (median, min, max) plus one JSON line per run. `scripts/bench.sh` runs the whole suite.
//!
//! ```text
//! cargo run --release -p jobsched-bench -- w1 --mode memory        # drain 20,000 no-op tasks
//! cargo run --release -p jobsched-bench -- w2 --mode sqlite        # 1,000 every-second jobs: fire lag
//! cargo run --release -p jobsched-bench -- w3 --mode distributed   # 1,000,000 cron jobs: RSS, reload
//! cargo run --release -p jobsched-bench -- w4 --mode memory        # 5,000 shell tasks
//! cargo run --release -p jobsched-bench -- store --backend mysql   # records/s through a SQL store
//! cargo run --release -p jobsched-bench -- api --store sqlite       # jobs/s through the HTTP API
//! ```

mod api;
mod measure;
mod purge;
mod rig;
mod store;
mod suite;
mod ui;

use clap::{Args, Parser, Subcommand};

use rig::{Mode, RigSpec, Servers};

#[derive(Parser, Debug)]
#[command(about = "jobsched benchmarks")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
    /// Runs per figure (the table shows median, min and max).
    #[arg(long, default_value_t = 3, global = true)]
    runs: usize,
}

/// Where a workload runs and with how many executors.
#[derive(Args, Debug, Clone)]
struct Setup {
    /// `memory` (embedded, in-memory backends), `sqlite` (embedded on the SQLite store, as `jobsched
    /// standalone`), `distributed` (MariaDB + Kafka + ZooKeeper, executor processes).
    #[arg(long, value_enum, default_value = "memory")]
    mode: Mode,
    /// Executors.
    #[arg(long, default_value_t = 2)]
    executors: usize,
    /// The system setting `executor_prefetch`: tasks sent to an executor beyond its free slots (they wait
    /// in its local queue).
    #[arg(long, default_value_t = 0)]
    prefetch: u32,
    #[command(flatten)]
    servers: Servers,
}

impl Setup {
    fn spec(&self, capacity: u32) -> RigSpec {
        RigSpec {
            mode: self.mode,
            executors: self.executors,
            capacity,
            prefetch: self.prefetch,
            servers: self.servers.clone(),
        }
    }
}

/// The parameters of W3 (and of each of its run processes).
#[derive(Args, Debug)]
struct ScaleArgs {
    #[command(flatten)]
    setup: Setup,
    /// Cron jobs registered.
    #[arg(long, default_value_t = 1_000_000)]
    jobs: usize,
    /// Seconds over which the every-second job's lag is measured.
    #[arg(long, default_value_t = 10)]
    lag_secs: u64,
}

impl ScaleArgs {
    fn params(&self) -> suite::Scale {
        suite::Scale {
            spec: self.setup.spec(64),
            jobs: self.jobs,
            lag_secs: self.lag_secs,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// W1 drain: N no-op tasks enqueued at once; enqueue rate and tasks/s until every result is recorded.
    W1 {
        #[command(flatten)]
        setup: Setup,
        /// Tasks.
        #[arg(long, default_value_t = 20_000)]
        tasks: usize,
        /// Tasks each executor runs at once.
        #[arg(long, default_value_t = 8)]
        capacity: u32,
        /// How the tasks are created.
        #[arg(long, value_enum, default_value = "execute")]
        via: suite::Via,
    },
    /// W2 precision: jobs firing every second; fire → start lag p50/p99/max and CPU.
    W2 {
        #[command(flatten)]
        setup: Setup,
        /// Jobs firing every second.
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        /// Seconds measured.
        #[arg(long, default_value_t = 20)]
        secs: u64,
        /// Tasks each executor runs at once (room for a whole second's fires).
        #[arg(long, default_value_t = 1024)]
        capacity: u32,
    },
    /// W3 scale: N cron jobs firing once a day plus one every-second job: registration time, scheduler
    /// RSS, reload time, and that job's lag p99.
    W3(ScaleArgs),
    /// One W3 run in this process (W3 starts one fresh process per run).
    #[command(hide = true)]
    W3Once(ScaleArgs),
    /// W4 shell: N tasks of `true` through the shell handler (fork and exec included).
    W4 {
        #[command(flatten)]
        setup: Setup,
        /// Tasks.
        #[arg(long, default_value_t = 5000)]
        tasks: usize,
        /// Tasks each executor runs at once.
        #[arg(long, default_value_t = 8)]
        capacity: u32,
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
    /// The history purge: ended records deleted per second in batches of 1,000, each batch's time, and
    /// a concurrent writer's latency.
    Purge {
        /// `sqlite` (files under `--dir`) or `mysql` (a fresh database of `--mysql`).
        #[arg(long, default_value = "sqlite")]
        backend: String,
        /// MySQL server, without a database.
        #[arg(
            long,
            env = "JOBSCHED_TEST_MYSQL",
            default_value = "mysql://jobsched:jobsched@127.0.0.1:3306"
        )]
        mysql: String,
        /// Directory for SQLite files.
        #[arg(long, default_value_os_t = std::env::temp_dir())]
        dir: std::path::PathBuf,
        /// Jobs the records belong to.
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        /// Ended records in the store (half of them past the retention).
        #[arg(long, default_value_t = 1_000_000)]
        history: usize,
    },
    /// Jobs registered per second through the HTTP API: 10,000 per bulk request, and one per request
    /// (sequential and concurrent), against a `jobsched` daemon process.
    Api {
        /// `sqlite` (`jobsched standalone`) or `mysql` (`jobsched scheduler` on a fresh database of
        /// `--mysql`).
        #[arg(long, default_value = "sqlite")]
        store: String,
        /// MySQL server, without a database.
        #[arg(
            long,
            env = "JOBSCHED_TEST_MYSQL",
            default_value = "mysql://jobsched:jobsched@127.0.0.1:3306"
        )]
        mysql: String,
        /// Jobs created through the bulk route.
        #[arg(long, default_value_t = 100_000)]
        bulk_jobs: usize,
        /// Jobs per bulk request (at most 10,000).
        #[arg(long, default_value_t = 10_000)]
        bulk_size: usize,
        /// Jobs created one request at a time.
        #[arg(long, default_value_t = 2_000)]
        single_jobs: usize,
        /// Concurrent clients of the one-at-a-time figure.
        #[arg(long, default_value_t = 8)]
        clients: usize,
    },
    /// Web UI pages answered with a large history: a `jobsched standalone` on an SQLite file of `jobs`
    /// jobs and `history` execution records.
    Ui {
        /// Jobs in the store.
        #[arg(long, default_value_t = 10_000)]
        jobs: usize,
        /// Execution records in the store.
        #[arg(long, default_value_t = 1_000_000)]
        history: usize,
        /// Requests per page.
        #[arg(long, default_value_t = 20)]
        requests: usize,
    },
}

/// The allocator of the `jobsched` binary (mimalloc), so the embedded modes measure what it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            Workload::W1 {
                setup,
                tasks,
                capacity,
                via,
            } => {
                let p = suite::Drain {
                    spec: setup.spec(capacity),
                    tasks,
                    shell: false,
                    via,
                };
                suite::drain(cli.runs, p).await
            }
            Workload::W4 {
                setup,
                tasks,
                capacity,
            } => {
                let p = suite::Drain {
                    spec: setup.spec(capacity),
                    tasks,
                    shell: true,
                    via: suite::Via::Execute,
                };
                suite::drain(cli.runs, p).await
            }
            Workload::W2 {
                setup,
                jobs,
                secs,
                capacity,
            } => {
                let p = suite::Precision {
                    spec: setup.spec(capacity),
                    jobs,
                    secs,
                };
                suite::precision(cli.runs, p).await
            }
            Workload::W3(a) => {
                // The per-run processes get the same arguments.
                let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "w3").collect();
                suite::scale(cli.runs, a.params(), strip_runs(args)).await
            }
            Workload::W3Once(a) => suite::scale_once(a.params()).await,
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
            Workload::Ui {
                jobs,
                history,
                requests,
            } => {
                let p = ui::UiBench {
                    jobs,
                    history,
                    requests,
                };
                ui::ui(cli.runs, p).await
            }
            Workload::Purge {
                backend,
                mysql,
                dir,
                jobs,
                history,
            } => {
                let target = match backend.as_str() {
                    "mysql" => store::Target::Mysql(mysql),
                    "sqlite" => store::Target::Sqlite(dir),
                    other => {
                        eprintln!("unknown --backend '{other}': expected mysql or sqlite");
                        std::process::exit(2);
                    }
                };
                purge::purge(
                    cli.runs,
                    purge::PurgeBench {
                        target,
                        jobs,
                        history,
                    },
                )
                .await
            }
            Workload::Api {
                store,
                mysql,
                bulk_jobs,
                bulk_size,
                single_jobs,
                clients,
            } => {
                let store = match store.as_str() {
                    "sqlite" => api::ApiStore::Sqlite,
                    "mysql" => api::ApiStore::Mysql(mysql),
                    other => {
                        eprintln!("unknown --store '{other}': expected sqlite or mysql");
                        std::process::exit(2);
                    }
                };
                let p = api::ApiBench {
                    store,
                    bulk_jobs,
                    bulk_size,
                    single_jobs,
                    clients,
                };
                api::api(cli.runs, p).await
            }
        }
    });
}

/// Arguments without `--runs N` / `--runs=N` (a W3 run process makes one run).
fn strip_runs(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a == "--runs" {
            skip = true;
        } else if !a.starts_with("--runs=") {
            out.push(a);
        }
    }
    out
}
