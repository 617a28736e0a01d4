//! The daemon roles: what each builds from the configuration, serving the API until shutdown, and the
//! orderly stop (the API stops accepting requests, running tasks get the grace period, the scheduler
//! writes what is in flight).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobsched::{Backends, Executor, ExecutorId, Scheduler, SchedulerConfig};
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::error::DaemonError;
use crate::stores;

/// What a `jobsched` process runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything in one process.
    Standalone,
    /// A scheduler with the API, on a shared store.
    Scheduler,
    /// An executor.
    Executor,
}

impl Role {
    /// The role's name (also the default prefix of ids).
    pub fn name(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Scheduler => "scheduler",
            Role::Executor => "executor",
        }
    }
}

/// This machine's name, as an id may carry it.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if clean.is_empty() {
        "localhost".to_owned()
    } else {
        clean
    }
}

/// Refuses what this build cannot do yet, naming it, before anything starts.
fn check_supported(role: Role, config: &Config) -> Result<(), DaemonError> {
    if config.kafka.is_some() {
        return Err(DaemonError::Unsupported(
            "--kafka: Kafka dispatch (jobsched-kafka) is not in this build yet; run without it"
                .into(),
        ));
    }
    if config.zookeeper.is_some() {
        return Err(DaemonError::Unsupported(
            "--zookeeper: ZooKeeper coordination (jobsched-zk) is not in this build yet; run without it"
                .into(),
        ));
    }
    if role == Role::Executor {
        return Err(DaemonError::Unsupported(
            "jobsched executor takes its tasks over Kafka (--kafka), which this build does not have yet; \
             `jobsched standalone` and `jobsched scheduler` run a built-in executor"
                .into(),
        ));
    }
    Ok(())
}

/// Runs `role` with `config`, serving the API on `listener`, until `shutdown` completes; then stops in
/// order. Returns when everything has stopped.
pub async fn run(
    role: Role,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    check_supported(role, &config)?;
    let store = match (&config.store, role) {
        (Some(url), _) => stores::open(url).await?,
        (None, Role::Standalone) => {
            stores::open_sqlite(&stores::data_dir_file(&config.data_dir)).await?
        }
        (None, _) => {
            return Err(DaemonError::Config(format!(
                "jobsched {} needs a store: --store (or JOBSCHED_STORE) mysql://user:password@host:port/db",
                role.name()
            )));
        }
    };
    if role == Role::Scheduler {
        tracing::warn!(
            capacity = config.capacity,
            "no --kafka: this scheduler runs tasks on its built-in executor only; separate executor \
             processes need Kafka dispatch (jobsched-kafka)"
        );
    }
    let backends = Backends::in_process(store);
    let host = host_name();
    let scheduler = Scheduler::builder(backends.clone())
        .with_config(SchedulerConfig {
            scheduler_id: format!("{}-{host}-{}", role.name(), std::process::id()),
            ..SchedulerConfig::default()
        })
        .start();
    let addr: SocketAddr = listener.local_addr()?;
    let executor_id = config
        .id
        .clone()
        .unwrap_or_else(|| format!("{}-{host}", role.name()));
    let executor = Executor::builder(ExecutorId::new(&executor_id)?, backends.clone())
        .with_capacity(config.capacity)
        .with_group(config.group.clone())
        .with_address(host.clone(), addr.port())
        .with_shutdown_grace(Duration::from_secs(config.shutdown_grace_secs))
        .start()
        .await?;
    let state = AppState {
        scheduler: scheduler.clone(),
        roles: vec![role.name()],
        started: Instant::now(),
        executor_id: Some(executor_id.clone()),
    };
    let app = api::router(Arc::new(state), config.max_body_bytes);
    tracing::info!(%addr, role = role.name(), executor = %executor_id, "jobsched is serving");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    tracing::info!(
        "stopping: running tasks get {}s to finish",
        config.shutdown_grace_secs
    );
    executor.shutdown().await;
    scheduler.shutdown().await;
    tracing::info!("stopped");
    served.map_err(DaemonError::from)
}
