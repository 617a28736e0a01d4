//! The command line: daemon roles, `migrate`, `config print`, and the client commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Overrides;

mod accounts;
mod serve;

pub use serve::{
    ApiArgs, Apply, ClusterArgs, ExecutorArgs, KeyArgs, ListenArgs, LogArgs, RunArgs,
    SchedulerArgs, ServeArgs, StandaloneArgs, StoreArgs,
};

pub use accounts::{
    AuditArgs, BackupArgs, LoginArgs, RestoreArgs, SecretsCommand, TokensCommand, UsersCommand,
};

/// jobsched: a distributed job scheduler.
#[derive(Debug, Parser)]
#[command(name = "jobsched", version, about, propagate_version = true)]
pub struct Cli {
    /// A TOML file with any of the settings of the command (flags and environment variables win over
    /// it).
    #[arg(long, global = true, env = "JOBSCHED_CONFIG")]
    pub config: Option<PathBuf>,
    /// The client commands' settings, given before the command (`jobsched --server URL jobs list`); they
    /// may also follow it.
    #[command(flatten)]
    pub client: TopClientArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The client commands' settings given before the command.
#[derive(Clone, Debug, Default, Args)]
pub struct TopClientArgs {
    /// The jobsched server the client commands talk to.
    #[arg(long, env = "JOBSCHED_SERVER")]
    pub server: Option<String>,
    /// A CA certificate (PEM) the client commands trust for a TLS server.
    #[arg(long, env = "JOBSCHED_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Output of the client commands: tables for people, or JSON for scripts.
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<Output>,
}

/// The settings of a client command (also accepted after its subcommand).
#[derive(Clone, Debug, Default, Args)]
pub struct ClientArgs {
    /// The jobsched server to talk to.
    #[arg(long, global = true, env = "JOBSCHED_SERVER")]
    pub server: Option<String>,
    /// A CA certificate (PEM) to trust for a TLS server.
    #[arg(long, global = true, env = "JOBSCHED_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Output: tables for people, or JSON for scripts.
    #[arg(long, short = 'o', global = true, value_enum)]
    pub output: Option<Output>,
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
#[allow(missing_docs)] // The `client` and `args` fields are groups of flags, documented by their types.
pub enum Command {
    /// Everything in one process: an SQLite store in the data directory (or `--store`), in-process
    /// dispatch and coordination, a built-in executor, and the HTTP API.
    Standalone(StandaloneArgs),
    /// A scheduler with the HTTP API on a shared store.
    Scheduler(SchedulerArgs),
    /// An executor that takes tasks from the schedulers.
    Executor(ExecutorArgs),
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
        #[command(flatten)]
        client: ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Tasks: one run of a job, with its attempts.
    Tasks {
        #[command(flatten)]
        client: ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: TasksCommand,
    },
    /// Executors: state, enable and disable.
    Executors {
        #[command(flatten)]
        client: ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: ExecutorsCommand,
    },
    /// The system: status and the central configuration.
    System {
        #[command(flatten)]
        client: ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Alerts: the rules, channels and silences (as JSON), the alerts firing, the notifications sent.
    Alerts {
        #[command(flatten)]
        client: ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Logs in: asks for the password and keeps the token for the next commands (in a file only you
    /// can read, under ~/.config/jobsched).
    Login {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: LoginArgs,
    },
    /// Ends the session of the kept token and forgets it.
    Logout {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Users (administrators), and your own password.
    Users {
        #[command(flatten)]
        client: ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// API tokens for scripts and CI.
    Tokens {
        #[command(flatten)]
        client: ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// The audit log (administrators).
    Audit {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: AuditArgs,
    },
    /// Writes a backup of a store to a file (SQLite: a copy of the database taken online; MySQL: a
    /// consistent export of jobsched's tables).
    Backup(BackupArgs),
    /// Loads a backup into an empty store.
    Restore(RestoreArgs),
    /// Makes a cluster key, the key every Kafka record of a cluster is signed with: printed, or written to
    /// a new file readable by its owner only (give it to every scheduler and executor with
    /// `--cluster-key-file`).
    Keygen {
        /// Write the key to this new file (refused if it exists) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The keys secret job params are encrypted with.
    Secrets {
        /// What to do.
        #[command(subcommand)]
        command: SecretsCommand,
    },
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

/// `jobsched alerts …`
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Prints the configuration as JSON (secrets as `***`), with its version.
    Get,
    /// Replaces the configuration with a JSON file (`-`: standard input) of `rules`, `channels` and
    /// `silences`; a `version` in it (as `get` prints) makes the change fail if someone changed it since.
    Set {
        /// The file.
        file: std::path::PathBuf,
    },
    /// The alerts firing now.
    Firing,
    /// The newest notifications.
    History {
        /// Only this rule's.
        #[arg(long)]
        rule: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
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
    /// The settings given as flags or environment variables for this command.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        match &self.command {
            Command::Standalone(a) => a.apply(&mut o),
            Command::Scheduler(a) => a.apply(&mut o),
            Command::Executor(a) => a.apply(&mut o),
            Command::Config {
                command: ConfigCommand::Print(a),
            } => a.apply(&mut o),
            Command::Migrate(a) => a.apply(&mut o),
            _ => {}
        }
        let client = self.client_args();
        o.server = client.server;
        o.ca_cert = client.ca_cert;
        o
    }

    /// The client settings: those after the command win over those before it.
    pub fn client_args(&self) -> ClientArgs {
        let top = &self.client;
        let after = match &self.command {
            Command::Jobs { client, .. }
            | Command::Tasks { client, .. }
            | Command::Executors { client, .. }
            | Command::System { client, .. }
            | Command::Alerts { client, .. }
            | Command::Login { client, .. }
            | Command::Logout { client }
            | Command::Users { client, .. }
            | Command::Tokens { client, .. }
            | Command::Audit { client, .. } => client.clone(),
            _ => ClientArgs::default(),
        };
        ClientArgs {
            server: after.server.or_else(|| top.server.clone()),
            ca_cert: after.ca_cert.or_else(|| top.ca_cert.clone()),
            output: after.output.or(top.output),
        }
    }

    /// The client commands' output format (tables unless JSON was asked for).
    pub fn output(&self) -> Output {
        self.client_args().output.unwrap_or(Output::Table)
    }
}

#[cfg(test)]
mod tests;
