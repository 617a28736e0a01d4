//! The three modes a workload runs in, set up the way the product runs them:
//!
//! * `memory`: a scheduler and its executors embedded in this process on the in-memory backends;
//! * `sqlite`: the same on the SQLite store with the defaults of `jobsched standalone` (in-process dispatch
//!   and coordination, `synchronous = FULL`);
//! * `distributed`: this process is the scheduler (MariaDB store, Kafka dispatch, ZooKeeper coordination);
//!   the executors are `jobsched executor` processes (the binary next to this one), so every task and
//!   result crosses the broker and every membership the ensemble. Each run gets a fresh database, topic
//!   prefix and ZooKeeper root.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobsched::handler::{HandlerRegistry, NoopHandler};
use jobsched::storage::Storage;
use jobsched::{Backends, Executor, ExecutorId, Scheduler, SchedulerConfig};
use sqlx::Connection;

use crate::measure::proc_cpu_secs;

/// Where a workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Embedded, in-memory backends.
    Memory,
    /// Embedded on the SQLite store (what `jobsched standalone` runs).
    Sqlite,
    /// MariaDB + Kafka + ZooKeeper; executors as `jobsched executor` processes.
    Distributed,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Memory => "memory",
            Mode::Sqlite => "sqlite",
            Mode::Distributed => "distributed",
        }
    }

    /// One line on how the mode is set up, for the table.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Memory => "embedded in one process, in-memory backends",
            Mode::Sqlite => {
                "embedded in one process on the SQLite store (as `jobsched standalone`: WAL, synchronous = FULL)"
            }
            Mode::Distributed => {
                "scheduler in this process on MariaDB, Kafka (Tansu) and ZooKeeper; executors are `jobsched executor` processes"
            }
        }
    }
}

/// The servers of the distributed mode.
#[derive(Clone, Debug, clap::Args)]
pub struct Servers {
    /// MySQL server, without a database (each run gets a fresh one).
    #[arg(
        long,
        env = "JOBSCHED_TEST_MYSQL",
        default_value = "mysql://jobsched:jobsched@127.0.0.1:3306"
    )]
    pub mysql: String,
    /// Kafka brokers.
    #[arg(long, env = "JOBSCHED_TEST_KAFKA", default_value = "127.0.0.1:9092")]
    pub kafka: String,
    /// ZooKeeper hosts.
    #[arg(
        long,
        env = "JOBSCHED_TEST_ZOOKEEPER",
        default_value = "127.0.0.1:2181"
    )]
    pub zookeeper: String,
}

/// What to start.
#[derive(Clone, Debug)]
pub struct RigSpec {
    pub mode: Mode,
    pub executors: usize,
    pub capacity: u32,
    pub prefetch: u32,
    pub servers: Servers,
}

/// How to build (and rebuild) the scheduler's backends.
enum Store {
    Memory(Backends),
    Sqlite(PathBuf),
    Mysql {
        admin: String,
        db: String,
        kafka: Box<jobsched_kafka::KafkaConfig>,
        zk: jobsched_zk::ZkConfig,
    },
}

enum Exec {
    InProcess(Executor),
    Process(tokio::process::Child),
}

impl RigSpec {
    /// "2 executors × 8 slots" (and the prefetch when there is one), for table captions.
    pub fn executors_text(&self) -> String {
        let mut t = format!("{} executors × {} slots", self.executors, self.capacity);
        if self.prefetch > 0 {
            t.push_str(&format!(", prefetch {}", self.prefetch));
        }
        t
    }
}

/// A running set-up: a scheduler in this process and its executors.
pub struct Rig {
    pub scheduler: Scheduler,
    store: Store,
    execs: Vec<Exec>,
    /// Where `sqlite` keeps its file, removed at the end.
    dir: Option<PathBuf>,
}

fn scheduler_config() -> SchedulerConfig {
    SchedulerConfig::default().with_scheduler_id("bench")
}

fn handlers() -> HandlerRegistry {
    let mut h = HandlerRegistry::with_shell();
    h.register("noop", Arc::new(NoopHandler))
        .expect("valid name");
    h
}

async fn in_process_executor(backends: &Backends, i: usize, capacity: u32) -> Executor {
    Executor::builder(
        ExecutorId::new(format!("bench-{i}")).expect("valid id"),
        backends.clone(),
    )
    .with_capacity(capacity)
    .with_handlers(handlers())
    .start()
    .await
    .expect("executor starts")
}

/// The `jobsched` binary built next to this one (`cargo build -p jobsched-daemons` in the same profile).
pub(crate) fn jobsched_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let bin = exe.with_file_name("jobsched");
    assert!(
        bin.exists(),
        "{} is missing: build it in the same profile (cargo build [--release] -p jobsched-daemons)",
        bin.display()
    );
    bin
}

impl Rig {
    /// Starts the scheduler and `spec.executors` executors; returns once the scheduler is active and sees
    /// every executor online.
    pub async fn start(spec: &RigSpec) -> Rig {
        let tag = format!("{:08x}", fastrand::u32(..));
        let (store, dir) = match spec.mode {
            Mode::Memory => (Store::Memory(Backends::in_memory()), None),
            Mode::Sqlite => {
                let dir = std::env::temp_dir().join(format!("jobsched-bench-{tag}"));
                (Store::Sqlite(dir.clone()), Some(dir))
            }
            Mode::Distributed => {
                let db = format!("jobsched_bench_{tag}");
                let mut c = sqlx::MySqlConnection::connect(&spec.servers.mysql)
                    .await
                    .expect("the MySQL server (scripts/services.sh start)");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                    .execute(&mut c)
                    .await
                    .expect("create the bench database");
                let kafka = jobsched_kafka::KafkaConfig::new(&spec.servers.kafka)
                    .with_prefix(format!("bench{tag}"))
                    .with_cluster_key(jobsched_kafka::ClusterKey::generate());
                let zk = jobsched_zk::ZkConfig::parse(&format!(
                    "{}/bench-{tag}",
                    spec.servers.zookeeper
                ))
                .expect("ZooKeeper hosts")
                .with_digest(
                    jobsched_zk::ZkDigest::parse(&format!("bench:{:032x}", fastrand::u128(..)))
                        .expect("credentials"),
                );
                let store = Store::Mysql {
                    admin: spec.servers.mysql.clone(),
                    db,
                    kafka: Box::new(kafka),
                    zk,
                };
                (store, None)
            }
        };
        let backends = Self::backends(&store).await;
        let scheduler = Scheduler::builder(backends.clone())
            .with_config(scheduler_config())
            .start()
            .await
            .expect("valid scheduler settings");
        let mut execs = Vec::new();
        for i in 0..spec.executors {
            execs.push(match &store {
                Store::Mysql { kafka, zk, .. } => {
                    Exec::Process(spawn_executor(i, spec.capacity, kafka, zk, &spec.servers).await)
                }
                _ => Exec::InProcess(in_process_executor(&backends, i, spec.capacity).await),
            });
        }
        scheduler.wait_active().await;
        if spec.prefetch > 0 {
            let config = jobsched::SystemConfig {
                executor_prefetch: spec.prefetch,
                ..jobsched::SystemConfig::default()
            };
            scheduler
                .update_config(config, None)
                .await
                .expect("system configuration");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while scheduler
            .engine_stats()
            .await
            .is_none_or(|s| s.executors_online < spec.executors as u64)
        {
            assert!(Instant::now() < deadline, "executors did not come online");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Rig {
            scheduler,
            store,
            execs,
            dir,
        }
    }

    /// Fresh backends on the same data (a restarted scheduler process opens its store anew).
    async fn backends(store: &Store) -> Backends {
        match store {
            Store::Memory(b) => b.clone(),
            Store::Sqlite(dir) => {
                let s = jobsched_sqlite::SqliteConfig::in_dir(dir)
                    .connect()
                    .await
                    .expect("the SQLite store");
                Backends::in_process(Arc::new(s))
            }
            Store::Mysql {
                admin,
                db,
                kafka,
                zk,
            } => {
                let s = jobsched_mysql::MysqlConfig::new(format!("{admin}/{db}"))
                    .connect()
                    .await
                    .expect("the MySQL store");
                Backends {
                    storage: Arc::new(s),
                    dispatcher: Arc::new(
                        jobsched_kafka::KafkaDispatcher::connect((**kafka).clone())
                            .await
                            .expect("Kafka"),
                    ),
                    coordinator: Arc::new(
                        jobsched_zk::ZkCoordinator::connect(zk.clone())
                            .await
                            .expect("ZooKeeper"),
                    ),
                }
            }
        }
    }

    /// The scheduler's store.
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.scheduler.storage().clone()
    }

    /// Stops the scheduler and starts a new one on freshly opened backends over the same data; the time
    /// from the start until it is active (every job and active task loaded).
    pub async fn restart_scheduler(&mut self) -> Duration {
        self.scheduler.shutdown().await;
        let t0 = Instant::now();
        let backends = Self::backends(&self.store).await;
        self.scheduler = Scheduler::builder(backends)
            .with_config(scheduler_config())
            .start()
            .await
            .expect("valid scheduler settings");
        self.scheduler.wait_active().await;
        t0.elapsed()
    }

    /// CPU seconds used so far by executor processes (0 for in-process executors: they count in this
    /// process's figure).
    pub fn executor_cpu_secs(&self) -> f64 {
        self.execs
            .iter()
            .map(|e| match e {
                Exec::Process(c) => c.id().map_or(0.0, proc_cpu_secs),
                Exec::InProcess(_) => 0.0,
            })
            .sum()
    }

    /// CPU seconds used so far by the servers of the distributed mode (MariaDB, ZooKeeper, the Kafka
    /// broker), read from the pid files of `scripts/services.sh` (`JOBSCHED_SERVICES_STATE`, printed by
    /// `services.sh env`). `None` in the embedded modes or when a pid file is missing.
    pub fn server_cpu_secs(&self) -> Option<f64> {
        if !matches!(self.store, Store::Mysql { .. }) {
            return None;
        }
        let state = PathBuf::from(std::env::var_os("JOBSCHED_SERVICES_STATE")?);
        let mut total = 0.0;
        for f in ["mariadb/ssd.pid", "zookeeper/zk.pid", "kafka/tansu.pid"] {
            let pid = std::fs::read_to_string(state.join(f)).ok()?;
            total += proc_cpu_secs(pid.trim().parse().ok()?);
        }
        Some(total)
    }

    /// Stops everything and removes the run's data.
    pub async fn stop(self) {
        for e in self.execs {
            match e {
                Exec::InProcess(x) => x.shutdown().await,
                Exec::Process(mut c) => {
                    if let Some(pid) = c.id() {
                        let _ = std::process::Command::new("kill")
                            .args(["-TERM", &pid.to_string()])
                            .status();
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(30), c.wait()).await;
                    let _ = c.start_kill();
                }
            }
        }
        self.scheduler.shutdown().await;
        if let Store::Mysql { admin, db, .. } = &self.store
            && let Ok(mut c) = sqlx::MySqlConnection::connect(admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")))
                .execute(&mut c)
                .await;
        }
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts `jobsched executor` `bench-<i>`; returns once it serves.
async fn spawn_executor(
    i: usize,
    capacity: u32,
    kafka: &jobsched_kafka::KafkaConfig,
    zk: &jobsched_zk::ZkConfig,
    servers: &Servers,
) -> tokio::process::Child {
    let mut cmd = jobsched_testkit::clean_command(jobsched_binary());
    let zk_hosts = format!("{}{}", servers.zookeeper, zk.root);
    cmd.args([
        "executor",
        "--listen",
        "127.0.0.1:0",
        "--id",
        &format!("bench-{i}"),
        "--capacity",
        &capacity.to_string(),
        "--kafka",
        &servers.kafka,
        "--kafka-prefix",
        &kafka.prefix,
        "--zookeeper",
        &zk_hosts,
    ])
    .env("JOBSCHED_LOG", "warn")
    .env(
        "JOBSCHED_CLUSTER_KEY",
        kafka.cluster_key.as_ref().expect("a cluster key").encode(),
    )
    .env(
        "JOBSCHED_ZK_AUTH",
        zk.digest
            .as_ref()
            .expect("ZooKeeper credentials")
            .credentials(),
    );
    let (child, _) =
        jobsched_testkit::spawn_listening(cmd, &format!("jobsched executor bench-{i}")).await;
    child
}
