//! The command line: daemon roles, `migrate`, `config print`, and the client commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{LogFormat, Overrides};

mod accounts;

pub use accounts::{
    AuditArgs, BackupArgs, LoginArgs, RestoreArgs, SecretsCommand, TokensCommand, UsersCommand,
};

/// jobsched: a distributed job scheduler.
#[derive(Debug, Parser)]
#[command(name = "jobsched", version, about, propagate_version = true)]
pub struct Cli {
    /// A TOML file with any of the settings below (flags and environment variables win over it).
    #[arg(long, global = true, env = "JOBSCHED_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, env = "JOBSCHED_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (`info`, `debug`, `jobsched=debug,info`, …).
    #[arg(long, global = true, env = "JOBSCHED_LOG")]
    pub log: Option<String>,
    /// The jobsched server the client commands talk to.
    #[arg(long, global = true, env = "JOBSCHED_SERVER")]
    pub server: Option<String>,
    /// A CA certificate (PEM) the client commands trust for a TLS server.
    #[arg(long, global = true, env = "JOBSCHED_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Output of the client commands: tables for people, or JSON for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of the client commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable tables.
    Table,
    /// The server's JSON.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process: an SQLite store in the data directory (or `--store`), in-process
    /// dispatch and coordination, a built-in executor, and the HTTP API.
    Standalone(ServeArgs),
    /// A scheduler with the HTTP API on a shared store.
    Scheduler(ServeArgs),
    /// An executor that takes tasks from the schedulers.
    Executor(ServeArgs),
    /// Applies the store's schema migrations (idempotent).
    Migrate(StoreArgs),
    /// The effective configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Jobs: definitions, runs, history.
    Jobs {
        /// What to do.
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Tasks: one run of a job, with its attempts.
    Tasks {
        /// What to do.
        #[command(subcommand)]
        command: TasksCommand,
    },
    /// Executors: state, enable and disable.
    Executors {
        /// What to do.
        #[command(subcommand)]
        command: ExecutorsCommand,
    },
    /// The system: status and the central configuration.
    System {
        /// What to do.
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Logs in: asks for the password and keeps the token for the next commands (in a file only you
    /// can read, under ~/.config/jobsched).
    Login(LoginArgs),
    /// Ends the session of the kept token and forgets it.
    Logout,
    /// Users (administrators), and your own password.
    Users {
        /// What to do.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// API tokens for scripts and CI.
    Tokens {
        /// What to do.
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// The audit log (administrators).
    Audit(AuditArgs),
    /// Writes a backup of a store to a file (SQLite: a copy of the database taken online; MySQL: a
    /// consistent export of jobsched's tables).
    Backup(BackupArgs),
    /// Loads a backup into an empty store.
    Restore(RestoreArgs),
    /// The keys secret job params are encrypted with.
    Secrets {
        /// What to do.
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

/// Settings of the daemon roles (each also from its `JOBSCHED_…` variable or the config file).
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// Address of the HTTP API (port 0: any free port; the chosen address is printed).
    #[arg(long, env = "JOBSCHED_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where `standalone` keeps its SQLite file.
    #[arg(long, env = "JOBSCHED_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store: `mysql://user:password@host:port/database` or `sqlite://path`.
    #[arg(long, env = "JOBSCHED_STORE")]
    pub store: Option<String>,
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
    /// This process's id: the executor's (`executor`, `standalone`) or the scheduler's (`scheduler`).
    #[arg(long, env = "JOBSCHED_ID")]
    pub id: Option<String>,
    /// Tasks the executor runs at once.
    #[arg(long, env = "JOBSCHED_CAPACITY")]
    pub capacity: Option<u32>,
    /// The executor's group.
    #[arg(long, env = "JOBSCHED_GROUP")]
    pub group: Option<String>,
    /// Seconds running tasks get to finish on shutdown.
    #[arg(long, env = "JOBSCHED_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Seconds a login token is valid.
    #[arg(long, env = "JOBSCHED_SESSION_TTL_SECS")]
    pub session_ttl_secs: Option<u64>,
    /// A file with the key login tokens are signed with (default: generated, kept in the store).
    #[arg(long, env = "JOBSCHED_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// A file with the first administrator's password (also: JOBSCHED_ADMIN_PASSWORD).
    #[arg(long, env = "JOBSCHED_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key the API is served over TLS.
    #[arg(long, env = "JOBSCHED_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "JOBSCHED_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Allow a non-loopback listen address without TLS.
    #[arg(long, env = "JOBSCHED_ALLOW_INSECURE_LISTEN")]
    pub allow_insecure_listen: bool,
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
    /// The keyring file secret params are encrypted with.
    #[arg(long, env = "JOBSCHED_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Executor variables tasks also get: names or prefixes ending in * (comma-separated).
    #[arg(long, env = "JOBSCHED_TASK_ENV_ALLOW", value_delimiter = ',')]
    pub task_env_allow: Option<Vec<String>>,
    /// The OS user shell tasks run as (the executor must run as root).
    #[arg(long, env = "JOBSCHED_TASK_USER")]
    pub task_user: Option<String>,
    /// The URL users reach the API at behind a TLS proxy (`https://jobs.example.com`).
    #[arg(long, env = "JOBSCHED_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// The store to migrate.
#[derive(Clone, Debug, Args)]
pub struct StoreArgs {
    /// `mysql://user:password@host:port/database` or `sqlite://path`.
    #[arg(long, env = "JOBSCHED_STORE")]
    pub store: Option<String>,
}

/// `jobsched config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Prints the effective configuration (TOML) with secrets redacted.
    Print(ServeArgs),
}

/// `jobsched jobs …`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Lists jobs (by id).
    List {
        /// Only jobs whose name contains this.
        #[arg(long)]
        name: Option<String>,
        /// Only enabled (true) or disabled (false) jobs.
        #[arg(long)]
        enabled: Option<bool>,
        /// Only jobs of this owner.
        #[arg(long)]
        owner: Option<String>,
        /// Paging.
        #[command(flatten)]
        page: PageArgs,
    },
    /// Shows a job.
    Get {
        /// The job's id.
        job_id: String,
    },
    /// Creates a job.
    Create(JobArgs),
    /// Changes the given fields of a job.
    Update {
        /// The job's id.
        job_id: String,
        /// The fields to change.
        #[command(flatten)]
        job: JobArgs,
    },
    /// Deletes a job (its history is kept).
    Delete {
        /// The job's id.
        job_id: String,
    },
    /// Writes every job you may see as JSON (for `jobs import`); secret values show as "***".
    Export {
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Creates or replaces the jobs of a JSON file (as `jobs export` writes it: `{"jobs": [...]}` or a
    /// list), up to 10,000 per request, each request all or none.
    Import {
        /// The file.
        file: PathBuf,
    },
    /// Runs a job now; prints the new task's id.
    Run {
        /// The job's id.
        job_id: String,
        /// A parameter for this run, `name=value` (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Cancels the job's running and queued tasks.
    Cancel {
        /// The job's id.
        job_id: String,
    },
    /// The job's runs, newest first.
    History {
        /// The job's id.
        job_id: String,
        /// Only these statuses (names or codes, comma-separated).
        #[arg(long)]
        status: Option<String>,
        /// Only runs fired at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Only runs fired before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Paging.
        #[command(flatten)]
        page: PageArgs,
    },
    /// Prints the output and error of the job's latest run.
    Logs {
        /// The job's id.
        job_id: String,
        /// The latest run in one of these statuses (names or codes, comma-separated).
        #[arg(long)]
        status: Option<String>,
    },
    /// The job's next fire times.
    NextFires {
        /// The job's id.
        job_id: String,
        /// How many.
        #[arg(long, default_value_t = 5)]
        count: u32,
    },
}

/// Paging of a list.
#[derive(Clone, Debug, Args)]
pub struct PageArgs {
    /// Page number, from 1.
    #[arg(long, default_value_t = 1)]
    pub page: u32,
    /// Items per page (1–1000).
    #[arg(long, default_value_t = 50)]
    pub page_size: u32,
}

/// The fields of a job; for `update`, only those given change.
#[derive(Clone, Debug, Default, Args)]
pub struct JobArgs {
    /// The job's id (default: generated).
    #[arg(long)]
    pub id: Option<String>,
    /// Its name.
    #[arg(long)]
    pub name: Option<String>,
    /// The command (for `--type shell`, run by `sh -c`).
    #[arg(long)]
    pub command: Option<String>,
    /// The handler that runs it.
    #[arg(long = "type")]
    pub job_type: Option<String>,
    /// Cron expression (6 fields with seconds, or 5).
    #[arg(long)]
    pub cron: Option<String>,
    /// Fire every SECONDS (fixed rate).
    #[arg(long, value_name = "SECONDS")]
    pub every: Option<u32>,
    /// Fire once at this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub once: Option<String>,
    /// Never fire by schedule: run only on request.
    #[arg(long)]
    pub manual: bool,
    /// Time zone of the cron expression (IANA name).
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Higher starts first when executors are busy.
    #[arg(long)]
    pub priority: Option<i32>,
    /// Seconds a run may take before it is killed.
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Retries of a failed run.
    #[arg(long)]
    pub retry_count: Option<u32>,
    /// Seconds before a retry.
    #[arg(long)]
    pub retry_interval: Option<u32>,
    /// The owner.
    #[arg(long)]
    pub owner: Option<String>,
    /// Free text.
    #[arg(long)]
    pub description: Option<String>,
    /// Enable (true) or disable (false) scheduled fires.
    #[arg(long)]
    pub enabled: Option<bool>,
    /// A parameter, `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A secret parameter, `name=value` (repeatable): encrypted at rest, shown as "***", handed only to
    /// the task's environment.
    #[arg(long = "secret-param", value_name = "NAME=VALUE")]
    pub secret_params: Vec<String>,
    /// Any job fields as JSON (the API's job body); the flags above win over it.
    #[arg(long, value_name = "JSON")]
    pub spec: Option<String>,
}

/// `jobsched tasks …`
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Shows a task and its attempts.
    Get {
        /// The task's id.
        task_id: String,
    },
    /// Cancels a task (a running one is killed).
    Cancel {
        /// The task's id.
        task_id: String,
    },
    /// Prints a task's output and error.
    Logs {
        /// The task's id.
        task_id: String,
        /// Which attempt (default: the latest).
        #[arg(long, conflicts_with = "follow")]
        attempt: Option<u32>,
        /// Print the output as the task writes it, until it ends.
        #[arg(long, short)]
        follow: bool,
    },
}

/// `jobsched executors …`
#[derive(Debug, Subcommand)]
pub enum ExecutorsCommand {
    /// Lists executors.
    List,
    /// Shows an executor.
    Get {
        /// The executor's id.
        executor_id: String,
    },
    /// Lets an executor take new tasks again.
    Enable {
        /// The executor's id.
        executor_id: String,
    },
    /// Stops giving an executor new tasks (running ones finish).
    Disable {
        /// The executor's id.
        executor_id: String,
    },
}

/// `jobsched system …`
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Version, uptime, roles, counts and the recent success rate.
    Status,
    /// The central system configuration.
    Config {
        /// What to do.
        #[command(subcommand)]
        command: SystemConfigCommand,
    },
}

/// `jobsched system config …`
#[derive(Debug, Subcommand)]
pub enum SystemConfigCommand {
    /// Prints it.
    Get,
    /// Changes settings: `name=value` pairs (numbers as numbers).
    Set {
        /// `name=value` pairs, e.g. `max_output_bytes=131072`.
        #[arg(required = true, value_name = "NAME=VALUE")]
        settings: Vec<String>,
    },
}

impl Cli {
    /// The settings given as flags or environment variables.
    pub fn overrides(&self, serve: Option<&ServeArgs>) -> Overrides {
        let s = serve.cloned().unwrap_or_default();
        Overrides {
            listen: s.listen,
            store: s.store,
            data_dir: s.data_dir,
            kafka: s.kafka,
            zookeeper: s.zookeeper,
            kafka_prefix: s.kafka_prefix,
            kafka_partitions: s.kafka_partitions,
            zk_session_timeout_secs: s.zk_session_timeout_secs,
            id: s.id,
            capacity: s.capacity,
            group: s.group,
            shutdown_grace_secs: s.shutdown_grace_secs,
            log_format: self.log_format,
            log: self.log.clone(),
            server: self.server.clone(),
            session_ttl_secs: s.session_ttl_secs,
            jwt_secret_file: s.jwt_secret_file,
            admin_password_file: s.admin_password_file,
            tls_cert: s.tls_cert,
            tls_key: s.tls_key,
            allow_insecure_listen: s.allow_insecure_listen.then_some(true),
            allowed_hosts: s.allowed_hosts,
            allowed_origins: s.allowed_origins,
            trusted_proxies: s.trusted_proxies,
            rate_limit_user: s.rate_limit_user,
            rate_limit_client: s.rate_limit_client,
            login_failures_per_minute: s.login_failures_per_minute,
            secret_key_file: s.secret_key_file,
            task_env_allow: s.task_env_allow,
            ca_cert: self.ca_cert.clone(),
            task_user: s.task_user,
            public_url: s.public_url,
        }
    }
}
