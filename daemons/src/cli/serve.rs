//! The flags of the daemon roles, in groups, so that each role shows (and takes) only what it uses:
//! `standalone` no Kafka or ZooKeeper, `executor` no store or sign-in settings. Each flag also comes from
//! its `JOBSCHED_…` variable or the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::config::{LogFormat, Overrides};

/// Where a role listens, who it is, and where it keeps its files (every role).
#[derive(Clone, Debug, Default, Args)]
pub struct ListenArgs {
    /// Address of the HTTP API (port 0: any free port; the chosen address is printed).
    #[arg(long, env = "JOBSCHED_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// This process's id: the executor's (`executor`, `standalone`) or the scheduler's (`scheduler`).
    #[arg(long, env = "JOBSCHED_ID")]
    pub id: Option<String>,
    /// Where `standalone` keeps its SQLite file, and where every role looks for its keyring.
    #[arg(long, env = "JOBSCHED_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key the API is served over TLS.
    #[arg(long, env = "JOBSCHED_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "JOBSCHED_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Allow a non-loopback listen address without TLS.
    #[arg(long, env = "JOBSCHED_ALLOW_INSECURE_LISTEN")]
    pub allow_insecure_listen: bool,
}

/// Logging (every role).
#[derive(Clone, Debug, Default, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "JOBSCHED_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (`info`, `debug`, `jobsched=debug,info`, …).
    #[arg(long, env = "JOBSCHED_LOG")]
    pub log: Option<String>,
}

/// The store (`standalone`, `scheduler`, `migrate`).
#[derive(Clone, Debug, Default, Args)]
pub struct StoreArgs {
    /// The store: `mysql://user:password@host:port/database` or `sqlite://path`.
    #[arg(long, env = "JOBSCHED_STORE")]
    pub store: Option<String>,
}

/// Kafka and ZooKeeper (`scheduler`, `executor`).
#[derive(Clone, Debug, Default, Args)]
pub struct ClusterArgs {
    /// Kafka brokers (`host:port,…`).
    #[arg(long, env = "JOBSCHED_KAFKA")]
    pub kafka: Option<String>,
    /// ZooKeeper hosts (`host:port,…[/root]`).
    #[arg(long, env = "JOBSCHED_ZOOKEEPER")]
    pub zookeeper: Option<String>,
    /// Prefix of the Kafka topics and consumer groups.
    #[arg(long, env = "JOBSCHED_KAFKA_PREFIX")]
    pub kafka_prefix: Option<String>,
    /// Partitions of the Kafka results topic when it is created.
    #[arg(long, env = "JOBSCHED_KAFKA_PARTITIONS")]
    pub kafka_partitions: Option<i32>,
    /// ZooKeeper session timeout, seconds.
    #[arg(long, env = "JOBSCHED_ZK_SESSION_TIMEOUT_SECS")]
    pub zk_session_timeout_secs: Option<u64>,
    /// The cluster key file Kafka records are signed with (`jobsched keygen --out FILE`); or give the key
    /// itself in JOBSCHED_CLUSTER_KEY.
    #[arg(long, env = "JOBSCHED_CLUSTER_KEY_FILE")]
    pub cluster_key_file: Option<PathBuf>,
    /// Oldest signed task or cancel an executor accepts, seconds.
    #[arg(long, env = "JOBSCHED_MESSAGE_MAX_AGE_SECS")]
    pub message_max_age_secs: Option<u64>,
    /// A file with ZooKeeper digest credentials, `user:password`.
    #[arg(long, env = "JOBSCHED_ZK_AUTH_FILE")]
    pub zk_auth_file: Option<PathBuf>,
}

/// How tasks run: the executor, or the built-in one of `standalone` and of a `scheduler` without Kafka.
#[derive(Clone, Debug, Default, Args)]
pub struct RunArgs {
    /// Tasks the executor runs at once.
    #[arg(long, env = "JOBSCHED_CAPACITY")]
    pub capacity: Option<u32>,
    /// The executor's group.
    #[arg(long, env = "JOBSCHED_GROUP")]
    pub group: Option<String>,
    /// Seconds running tasks get to finish on shutdown.
    #[arg(long, env = "JOBSCHED_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// The keyring file secret params are encrypted with.
    #[arg(long, env = "JOBSCHED_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Executor variables tasks also get: names or prefixes ending in * (comma-separated).
    #[arg(long, env = "JOBSCHED_TASK_ENV_ALLOW", value_delimiter = ',')]
    pub task_env_allow: Option<Vec<String>>,
    /// The OS user shell tasks run as (the executor must run as root).
    #[arg(long, env = "JOBSCHED_TASK_USER")]
    pub task_user: Option<String>,
}

/// The key tokens are signed with (`standalone`, `scheduler`: login tokens; `executor`: the tokens its
/// API accepts).
#[derive(Clone, Debug, Default, Args)]
pub struct KeyArgs {
    /// A file with the key tokens are signed with (default: generated, kept in the store).
    #[arg(long, env = "JOBSCHED_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// A file with the token Prometheus sends to /metrics (or the token itself in
    /// JOBSCHED_METRICS_TOKEN).
    #[arg(long, env = "JOBSCHED_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
}

/// Sign-in, browsers and limits of the HTTP API (`standalone`, `scheduler`).
#[derive(Clone, Debug, Default, Args)]
pub struct ApiArgs {
    /// Seconds a login token is valid.
    #[arg(long, env = "JOBSCHED_SESSION_TTL_SECS")]
    pub session_ttl_secs: Option<u64>,
    /// A file with the first administrator's password (also: JOBSCHED_ADMIN_PASSWORD).
    #[arg(long, env = "JOBSCHED_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// Host names the API answers to (comma-separated; `*`: any).
    #[arg(long, env = "JOBSCHED_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,
    /// Other origins allowed to make state-changing browser requests (comma-separated).
    #[arg(long, env = "JOBSCHED_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses).
    #[arg(long, env = "JOBSCHED_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<std::net::IpAddr>>,
    /// Requests a second per user (0: no limit).
    #[arg(long, env = "JOBSCHED_RATE_LIMIT_USER")]
    pub rate_limit_user: Option<u32>,
    /// Requests a second per client address (0: no limit).
    #[arg(long, env = "JOBSCHED_RATE_LIMIT_CLIENT")]
    pub rate_limit_client: Option<u32>,
    /// Failed logins a minute per user name and per address (0: no limit).
    #[arg(long, env = "JOBSCHED_LOGIN_FAILURES_PER_MINUTE")]
    pub login_failures_per_minute: Option<u32>,
    /// The URL users reach the API at behind a TLS proxy (`https://jobs.example.com`).
    #[arg(long, env = "JOBSCHED_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Milliseconds between evaluations of the alert rules (default 5000).
    #[arg(long, env = "JOBSCHED_ALERT_INTERVAL_MS")]
    pub alert_interval_ms: Option<u64>,
}

/// `jobsched standalone`.
#[derive(Clone, Debug, Default, Args)]
#[allow(missing_docs)] // Each field is a group of flags, documented by its type.
pub struct StandaloneArgs {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// `jobsched scheduler`.
#[derive(Clone, Debug, Default, Args)]
#[allow(missing_docs)] // Each field is a group of flags, documented by its type.
pub struct SchedulerArgs {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// `jobsched executor`.
#[derive(Clone, Debug, Default, Args)]
#[allow(missing_docs)] // Each field is a group of flags, documented by its type.
pub struct ExecutorArgs {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Every setting of every role (`jobsched config print`): the scheduler's flags are all of them.
pub type ServeArgs = SchedulerArgs;

/// A group of flags that sets some of the overrides.
pub trait Apply {
    /// Sets the overrides this group's flags give.
    fn apply(&self, o: &mut Overrides);
}

impl Apply for ListenArgs {
    fn apply(&self, o: &mut Overrides) {
        o.listen = self.listen;
        o.id.clone_from(&self.id);
        o.data_dir.clone_from(&self.data_dir);
        o.tls_cert.clone_from(&self.tls_cert);
        o.tls_key.clone_from(&self.tls_key);
        o.allow_insecure_listen = self.allow_insecure_listen.then_some(true);
    }
}

impl Apply for LogArgs {
    fn apply(&self, o: &mut Overrides) {
        o.log_format = self.log_format;
        o.log.clone_from(&self.log);
    }
}

impl Apply for StoreArgs {
    fn apply(&self, o: &mut Overrides) {
        o.store.clone_from(&self.store);
    }
}

impl Apply for ClusterArgs {
    fn apply(&self, o: &mut Overrides) {
        o.kafka.clone_from(&self.kafka);
        o.zookeeper.clone_from(&self.zookeeper);
        o.kafka_prefix.clone_from(&self.kafka_prefix);
        o.kafka_partitions = self.kafka_partitions;
        o.zk_session_timeout_secs = self.zk_session_timeout_secs;
        o.cluster_key_file.clone_from(&self.cluster_key_file);
        o.message_max_age_secs = self.message_max_age_secs;
        o.zk_auth_file.clone_from(&self.zk_auth_file);
    }
}

impl Apply for RunArgs {
    fn apply(&self, o: &mut Overrides) {
        o.capacity = self.capacity;
        o.group.clone_from(&self.group);
        o.shutdown_grace_secs = self.shutdown_grace_secs;
        o.secret_key_file.clone_from(&self.secret_key_file);
        o.task_env_allow.clone_from(&self.task_env_allow);
        o.task_user.clone_from(&self.task_user);
    }
}

impl Apply for KeyArgs {
    fn apply(&self, o: &mut Overrides) {
        o.jwt_secret_file.clone_from(&self.jwt_secret_file);
        o.metrics_token_file.clone_from(&self.metrics_token_file);
    }
}

impl Apply for ApiArgs {
    fn apply(&self, o: &mut Overrides) {
        o.session_ttl_secs = self.session_ttl_secs;
        o.admin_password_file.clone_from(&self.admin_password_file);
        o.allowed_hosts.clone_from(&self.allowed_hosts);
        o.allowed_origins.clone_from(&self.allowed_origins);
        o.trusted_proxies.clone_from(&self.trusted_proxies);
        o.rate_limit_user = self.rate_limit_user;
        o.rate_limit_client = self.rate_limit_client;
        o.login_failures_per_minute = self.login_failures_per_minute;
        o.public_url.clone_from(&self.public_url);
        o.alert_interval_ms = self.alert_interval_ms;
    }
}

impl Apply for StandaloneArgs {
    fn apply(&self, o: &mut Overrides) {
        self.listen.apply(o);
        self.store.apply(o);
        self.run.apply(o);
        self.key.apply(o);
        self.api.apply(o);
        self.log.apply(o);
    }
}

impl Apply for SchedulerArgs {
    fn apply(&self, o: &mut Overrides) {
        self.listen.apply(o);
        self.store.apply(o);
        self.cluster.apply(o);
        self.run.apply(o);
        self.key.apply(o);
        self.api.apply(o);
        self.log.apply(o);
    }
}

impl Apply for ExecutorArgs {
    fn apply(&self, o: &mut Overrides) {
        self.listen.apply(o);
        self.cluster.apply(o);
        self.run.apply(o);
        self.key.apply(o);
        self.log.apply(o);
    }
}
