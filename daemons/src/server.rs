//! The daemon roles: what each builds from the configuration, serving the API until shutdown, and the
//! orderly stop (the API stops accepting requests, running tasks get the grace period, the scheduler
//! writes what is in flight).
//!
//! | role | store | dispatch, coordination | executor |
//! |---|---|---|---|
//! | `standalone` | SQLite in the data directory (or `--store`) | in-process | built in |
//! | `scheduler` with `--kafka` and `--zookeeper` | `--store` | Kafka, ZooKeeper | none (separate processes) |
//! | `scheduler` without them | `--store` | in-process | built in (said at start-up) |
//! | `executor` | none | Kafka, ZooKeeper | itself |

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobsched::coord::Coordinator;
use jobsched::dispatch::Dispatcher;
use jobsched::storage::Storage;
use jobsched::{Backends, Executor, ExecutorBackends, ExecutorId, Scheduler, SchedulerConfig};
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::auth::origin::{ClientAddr, Hosts};
use crate::auth::{Auth, AuthSettings, bootstrap, limits::Limits};
use crate::config::Config;
use crate::error::DaemonError;
use crate::exclusive::StoreLock;
use crate::secrets::{KEYRING_FILE, Keyring};
use crate::{handlers, stores};

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

/// The variable that may hold the cluster key itself (instead of a file).
pub const CLUSTER_KEY_VAR: &str = "JOBSCHED_CLUSTER_KEY";

/// The variable that may hold the ZooKeeper digest credentials themselves (instead of a file).
pub const ZK_AUTH_VAR: &str = "JOBSCHED_ZK_AUTH";

/// A cluster secret's text: the variable `var` if set, else the file `file`; without either, `missing`
/// (the distributed roles refuse to start).
fn cluster_secret(
    var: &str,
    file: Option<&std::path::Path>,
    missing: &str,
) -> Result<String, DaemonError> {
    match (std::env::var(var), file) {
        (Ok(text), _) => Ok(text),
        (Err(_), Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| DaemonError::Config(format!("cannot read {}: {e}", path.display()))),
        (Err(_), None) => Err(DaemonError::Config(missing.to_owned())),
    }
}

/// The cluster key: `JOBSCHED_CLUSTER_KEY`, else the configured file.
fn cluster_key(config: &Config) -> Result<jobsched_kafka::ClusterKey, DaemonError> {
    let text = cluster_secret(
        CLUSTER_KEY_VAR,
        config.cluster_key_file.as_deref(),
        "--kafka needs the cluster key every task, cancel and result is signed with: \
         --cluster-key-file FILE (or JOBSCHED_CLUSTER_KEY_FILE, or the key itself in \
         JOBSCHED_CLUSTER_KEY); make one with `jobsched keygen --out FILE` and give every \
         scheduler and executor the same one",
    )?;
    jobsched_kafka::ClusterKey::parse(&text)
        .map_err(|e| DaemonError::Config(format!("the cluster key: {e}")))
}

/// The ZooKeeper digest credentials: `JOBSCHED_ZK_AUTH`, else the configured file (nodes open to anyone
/// would let anyone register a fake executor, delete election nodes or publish a configuration).
fn zk_digest(config: &Config) -> Result<jobsched_zk::ZkDigest, DaemonError> {
    let text = cluster_secret(
        ZK_AUTH_VAR,
        config.zk_auth_file.as_deref(),
        "--zookeeper needs digest credentials, user:password, that every node jobsched creates \
         is guarded by: --zk-auth-file FILE (or JOBSCHED_ZK_AUTH_FILE, or the credentials in \
         JOBSCHED_ZK_AUTH); every scheduler and executor of a cluster uses the same",
    )?;
    jobsched_zk::ZkDigest::parse(&text)
        .map_err(|e| DaemonError::Config(format!("ZooKeeper credentials: {e}")))
}

/// Kafka dispatch and ZooKeeper coordination, if configured (both or neither).
async fn distributed(
    config: &Config,
) -> Result<Option<(Arc<dyn Dispatcher>, Arc<dyn Coordinator>)>, DaemonError> {
    match (&config.kafka, &config.zookeeper) {
        (None, None) => Ok(None),
        (Some(brokers), Some(zk)) => {
            let key = cluster_key(config)?;
            let zk = jobsched_zk::ZkConfig::parse(zk)?
                .with_session_timeout(Duration::from_secs(config.zk_session_timeout_secs))
                .with_digest(zk_digest(config)?);
            let coordinator = jobsched_zk::ZkCoordinator::connect(zk).await?;
            let mut kafka = jobsched_kafka::KafkaConfig::new(brokers)
                .with_prefix(&config.kafka_prefix)
                .with_result_partitions(config.kafka_partitions)
                .with_cluster_key(key)
                .with_message_max_age(Duration::from_secs(config.message_max_age_secs));
            for (k, v) in &config.kafka_client {
                kafka = kafka.with_client_property(k, v);
            }
            let dispatcher = jobsched_kafka::KafkaDispatcher::connect(kafka).await?;
            Ok(Some((Arc::new(dispatcher), Arc::new(coordinator))))
        }
        _ => Err(DaemonError::Config(
            "--kafka and --zookeeper go together: executors in other processes take tasks over Kafka and \
             are found through ZooKeeper"
                .into(),
        )),
    }
}

/// The store a role uses.
async fn store(
    role: Role,
    config: &Config,
    metrics: &jobsched::metrics::Metrics,
) -> Result<Arc<dyn Storage>, DaemonError> {
    match (&config.store, role) {
        (Some(url), _) => Ok(stores::open_metered(url, Some(metrics)).await?),
        (None, Role::Standalone) => Ok(stores::open_sqlite(
            &stores::data_dir_file(&config.data_dir),
            Some(metrics),
        )
        .await?),
        (None, _) => Err(DaemonError::Config(format!(
            "jobsched {} needs a store: --store (or JOBSCHED_STORE) mysql://user:password@host:port/db",
            role.name()
        ))),
    }
}

/// The keyring of secret params: the configured file, else `secret.key` in the data directory — created
/// there by `standalone` (one process: it seals and opens). Other roles use it if it exists; a cluster's
/// processes share one file (`--secret-key-file`).
fn keyring(role: Role, config: &Config) -> Result<Option<Arc<Keyring>>, DaemonError> {
    let open = |path: &std::path::Path, create: bool| {
        let k = if create {
            Keyring::open_or_create(path)
        } else {
            Keyring::open(path)
        };
        k.map(|k| Some(Arc::new(k))).map_err(DaemonError::Config)
    };
    match &config.secret_key_file {
        Some(path) => open(path, false),
        None => {
            let path = config.data_dir.join(KEYRING_FILE);
            if role == Role::Standalone {
                stores::private_dir(&config.data_dir)?;
                open(&path, true)
            } else if path.exists() {
                open(&path, false)
            } else {
                Ok(None)
            }
        }
    }
}

/// Refuses a listen address other machines can reach without TLS, unless allowed.
fn check_listen(config: &Config) -> Result<(), DaemonError> {
    let tls = config.tls_cert.is_some() || config.tls_key.is_some();
    if config.tls_cert.is_some() != config.tls_key.is_some() {
        return Err(DaemonError::Config(
            "--tls-cert and --tls-key go together".into(),
        ));
    }
    if !tls && !config.listen.ip().is_loopback() {
        if !config.allow_insecure_listen {
            return Err(DaemonError::Config(format!(
                "refusing to listen on {} without TLS: passwords and tokens would cross the network in                  the clear. Give --tls-cert and --tls-key, listen on 127.0.0.1 behind a TLS proxy, or                  accept the risk with --allow-insecure-listen",
                config.listen
            )));
        }
        tracing::warn!(listen = %config.listen,
            "listening without TLS on an address other machines can reach: passwords and tokens cross              the network in the clear (--allow-insecure-listen)");
    }
    Ok(())
}

/// Serves `app` on `listener` (over TLS when configured) until `shutdown` completes.
async fn serve(
    config: &Config,
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let app = app.into_make_service_with_connect_info::<ClientAddr>();
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let tls =
                crate::tls::TlsListener::new(listener, crate::tls::server_config(cert, key)?)?;
            axum::serve(tls, app)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        _ => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
    }
    Ok(())
}

/// The origin (`scheme://host[:port]`) and host name of `--public-url`.
fn public_url(url: &str) -> Result<(String, String), DaemonError> {
    let bad = || {
        DaemonError::Config(format!(
            "--public-url '{url}' is not an http(s) URL like https://jobs.example.com"
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
        None => authority.split(':').next().unwrap_or("").to_owned(),
    };
    Ok((format!("{scheme}://{authority}"), host))
}

/// Authentication of a scheduler process: the signing key and the first administrator.
async fn authentication(
    storage: &Arc<dyn Storage>,
    config: &Config,
    host: &str,
) -> Result<Arc<Auth>, DaemonError> {
    let key = bootstrap::signing_key(storage, config).await?;
    bootstrap::first_admin(storage, config).await?;
    let mut allowed_origins = config.allowed_origins.clone();
    let mut hosts = config.allowed_hosts.clone();
    let mut secure_cookies = config.tls_cert.is_some();
    if let Some(url) = &config.public_url {
        let (origin, public_host) = public_url(url)?;
        secure_cookies |= origin.starts_with("https://");
        allowed_origins.push(origin);
        if hosts.is_empty() {
            hosts = Hosts::defaults(config.listen, host);
        }
        hosts.push(public_host);
    }
    let settings = AuthSettings {
        session_ttl: chrono::TimeDelta::seconds(
            config.session_ttl_secs.clamp(60, 30 * 86_400) as i64
        ),
        trusted_proxies: config.trusted_proxies.clone(),
        hosts: Hosts::new(&hosts, config.listen, host),
        allowed_origins,
        tls: config.tls_cert.is_some(),
        secure_cookies,
    };
    let limits = Limits::new(
        config.rate_limit_user,
        config.rate_limit_client,
        config.login_failures_per_minute,
    );
    Ok(Arc::new(Auth::new(storage.clone(), key, settings, limits)))
}

/// Housekeeping of the active scheduler's process, every ten minutes: audit entries past their
/// retention, ended sessions whose tokens expired, idle rate-limit state.
async fn maintain(scheduler: Scheduler, auth: Arc<Auth>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        auth.limits.forget_idle();
        if !scheduler.is_active() {
            continue;
        }
        let storage = scheduler.storage().clone();
        let now = chrono::Utc::now();
        if let Err(e) = storage.purge_ended_sessions(now).await {
            tracing::warn!(error = %e, "purging ended sessions failed; next time");
        }
        let days = scheduler
            .config()
            .await
            .map_or(0, |c| c.value.audit_retention_days);
        if days > 0 {
            let before = now - chrono::TimeDelta::days(i64::from(days));
            while let Ok(n) = storage.purge_audit(before, 10_000).await {
                if n < 10_000 {
                    break;
                }
            }
        }
    }
}

/// An executor of this process, registered under `id`.
async fn start_executor(
    config: &Config,
    backends: ExecutorBackends,
    id: &str,
    port: u16,
    keyring: Option<Arc<Keyring>>,
) -> Result<Executor, DaemonError> {
    let user = match &config.task_user {
        Some(name) => Some(handlers::task_user(name)?),
        None => None,
    };
    Ok(Executor::builder(ExecutorId::new(id)?, backends)
        .with_handlers(handlers::registry(&config.task_env_allow, user, keyring)?)
        .with_capacity(config.capacity)
        .with_group(config.group.clone())
        .with_address(host_name(), port)
        .with_shutdown_grace(Duration::from_secs(config.shutdown_grace_secs))
        .start()
        .await?)
}

/// Runs `role` with `config`, serving the API on `listener`, until `shutdown` completes; then stops in
/// order. Returns when everything has stopped.
pub async fn run(
    role: Role,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let addr: SocketAddr = listener.local_addr()?;
    let host = host_name();
    check_listen(&config)?;
    let keyring = keyring(role, &config)?;
    if role == Role::Standalone && (config.kafka.is_some() || config.zookeeper.is_some()) {
        return Err(DaemonError::Config(
            "jobsched standalone runs everything in one process: for Kafka and ZooKeeper run \
             `jobsched scheduler` and `jobsched executor`"
                .into(),
        ));
    }
    let telemetry = crate::metrics::Telemetry::new(
        &config.data_dir,
        crate::metrics::read_token(config.metrics_token_file.as_deref())?,
    );
    let metered = |d| jobsched::metrics::MeteredDispatcher::wrap(d, telemetry.metrics.clone());
    let remote = distributed(&config).await?.map(|(d, c)| (metered(d), c));
    if role == Role::Executor {
        let Some((dispatcher, coordinator)) = remote else {
            return Err(DaemonError::Config(
                "jobsched executor needs --kafka and --zookeeper (where its tasks come from and where it \
                 registers)"
                    .into(),
            ));
        };
        // Executors talk only to dispatch and coordination.
        let backends = ExecutorBackends {
            dispatcher,
            coordinator,
        };
        let id = config
            .id
            .clone()
            .unwrap_or_else(|| format!("executor-{host}-{}", addr.port()));
        let executor =
            Arc::new(start_executor(&config, backends.clone(), &id, addr.port(), keyring).await?);
        let key = match &config.jwt_secret_file {
            Some(path) => Some(bootstrap::read_key_file(path)?),
            None => None,
        };
        tracing::info!(%addr, executor = %id, "jobsched executor is serving");
        let app = api::executor_router(
            backends,
            executor.clone(),
            key,
            telemetry.clone(),
            config.capacity,
        );
        let served = serve(&config, listener, app, shutdown).await;
        tracing::info!(
            "stopping: running tasks get {}s to finish",
            config.shutdown_grace_secs
        );
        executor.shutdown().await;
        tracing::info!("stopped");
        return served;
    }

    // Without a coordinator to elect one, one scheduler per store: a second refuses to start.
    let lock = Arc::new(StoreLock::take(role, &config, remote.is_some()).await?);
    let lost = Arc::new(std::sync::Mutex::new(None::<String>));
    let shutdown = {
        let (lock, lost) = (lock.clone(), lost.clone());
        async move {
            let lock_lost = async {
                match lock.as_ref() {
                    Some(l) => l.lost().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown => {}
                why = lock_lost => {
                    tracing::error!(reason = %why, "the store's scheduler lock is lost: stopping");
                    *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                }
            }
        }
    };
    let storage = store(role, &config, &telemetry.metrics).await?;
    let auth = authentication(&storage, &config, &host).await?;
    let (backends, builtin) = match remote {
        Some((dispatcher, coordinator)) => (
            Backends {
                storage,
                dispatcher,
                coordinator,
            },
            false,
        ),
        None => {
            if role == Role::Scheduler {
                tracing::warn!(
                    capacity = config.capacity,
                    "no --kafka/--zookeeper: this scheduler runs tasks on its built-in executor only"
                );
            }
            let mut b = Backends::in_process(storage);
            b.dispatcher = metered(b.dispatcher);
            (b, true)
        }
    };
    let scheduler = Scheduler::builder(backends.clone())
        .with_config(
            SchedulerConfig::default().with_scheduler_id(match (&config.id, role) {
                (Some(id), Role::Scheduler) => id.clone(),
                _ => format!("{}-{host}-{}", role.name(), addr.port()),
            }),
        )
        .with_metrics(telemetry.metrics.clone())
        .start()
        .await?;
    let executor = if builtin {
        let id = config
            .id
            .clone()
            .unwrap_or_else(|| format!("{}-{host}", role.name()));
        Some((
            start_executor(
                &config,
                (&backends).into(),
                &id,
                addr.port(),
                keyring.clone(),
            )
            .await?,
            id,
        ))
    } else {
        None
    };
    // Every scheduler (active or standby) collects live output, so the UI and API of any of them show it.
    let output = Arc::new(jobsched::OutputBuffers::default());
    let feed = backends.dispatcher.output_feed().await?;
    let collector = tokio::spawn(output.clone().collect(feed));
    let state = AppState {
        scheduler: scheduler.clone(),
        roles: vec![role.name()],
        started: Instant::now(),
        executor_id: executor.as_ref().map(|(_, id)| id.clone()),
        auth: auth.clone(),
        keyring: keyring.clone(),
        data_dir: config.data_dir.clone(),
        ui: crate::ui::UiState::default(),
        output: output.clone(),
        telemetry,
    };
    let alert_keyring = keyring;
    let state = Arc::new(state);
    let warm = tokio::spawn(crate::ui::UiState::warm(state.clone()));
    let app = api::router(state, config.max_body_bytes, config.max_bulk_body_bytes);
    let housekeeping = tokio::spawn(maintain(scheduler.clone(), auth));
    let alerting = tokio::spawn(crate::alerts::run(Arc::new(crate::alerts::Alerting {
        scheduler: scheduler.clone(),
        keyring: alert_keyring,
        http: reqwest::Client::new(),
        interval: Duration::from_millis(config.alert_interval_ms.clamp(50, 3_600_000)),
    })));
    tracing::info!(%addr, role = role.name(), "jobsched is serving");
    let served = serve(&config, listener, app, shutdown).await;
    housekeeping.abort();
    alerting.abort();
    collector.abort();
    warm.abort();
    tracing::info!(
        "stopping: running tasks get {}s to finish",
        config.shutdown_grace_secs
    );
    if let Some((e, _)) = &executor {
        e.shutdown().await;
    }
    scheduler.shutdown().await;
    tracing::info!("stopped");
    drop(lock);
    if let Some(why) = lost.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(DaemonError::Config(format!(
            "stopped: the store's scheduler lock was lost ({why}); another scheduler may have taken it"
        )));
    }
    served
}
