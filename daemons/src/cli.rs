//! The command line: daemon roles, `migrate`, `config print`, and the client commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{LogFormat, Overrides};

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
        #[arg(long)]
        attempt: Option<u32>,
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
        }
    }
}
