//! The command line of sessions, accounts and the store's tools: `login`, `users`, `tokens`, `audit`,
//! `backup`, `restore`, `secrets`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::PageArgs;

/// `jobsched login`
#[derive(Clone, Debug, Args)]
pub struct LoginArgs {
    /// The user to log in as.
    #[arg(long, short = 'u', default_value = "admin")]
    pub user: String,
    /// Read the password from standard input (one line) instead of asking for it.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `jobsched users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Lists users.
    List {
        /// Paging.
        #[command(flatten)]
        page: PageArgs,
    },
    /// Shows a user.
    Get {
        /// The user's name.
        name: String,
    },
    /// Creates a user; asks for their password (or reads it with --password-stdin).
    Create {
        /// Their name.
        name: String,
        /// Their role: admin, user or read_only.
        #[arg(long, default_value = "user")]
        role: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Changes a user's role or disables / enables them.
    Update {
        /// The user's name.
        name: String,
        /// A new role.
        #[arg(long)]
        role: Option<String>,
        /// Disable (true) or enable (false) them.
        #[arg(long)]
        disabled: Option<bool>,
    },
    /// Sets a user's password (administrators; ends their sessions).
    ResetPassword {
        /// The user's name.
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Deletes a user (and their tokens); they must own no job.
    Delete {
        /// The user's name.
        name: String,
    },
    /// Changes your own password (ends your other sessions; keeps you logged in).
    Password {
        /// Read the current and the new password from standard input (two lines).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Who you are logged in as.
    Me,
}

/// `jobsched tokens …`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Lists your tokens (an administrator: everyone's, or one user's).
    List {
        /// Only this user's (administrators).
        #[arg(long)]
        user: Option<String>,
        /// Paging.
        #[command(flatten)]
        page: PageArgs,
    },
    /// Makes a token; prints its secret once.
    Create {
        /// What it is for.
        name: String,
        /// Its role (at most yours; default yours).
        #[arg(long)]
        role: Option<String>,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revokes a token.
    Revoke {
        /// The token's id.
        token_id: String,
    },
}

/// `jobsched audit`
#[derive(Clone, Debug, Args)]
pub struct AuditArgs {
    /// Only this user's actions.
    #[arg(long)]
    pub user: Option<String>,
    /// Only this action (`job.create`) or family (`job.`).
    #[arg(long)]
    pub action: Option<String>,
    /// Only this target (`job:nightly`).
    #[arg(long)]
    pub target: Option<String>,
    /// From this time (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub page: PageArgs,
}

/// `jobsched backup`
#[derive(Clone, Debug, Args)]
pub struct BackupArgs {
    /// The store: `mysql://…` or `sqlite://path`.
    #[arg(long, env = "JOBSCHED_STORE")]
    pub store: Option<String>,
    /// The file to write (refused if it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// Also the execution history and the audit log (MySQL; an SQLite backup always has everything).
    #[arg(long)]
    pub with_history: bool,
}

/// `jobsched restore`
#[derive(Clone, Debug, Args)]
pub struct RestoreArgs {
    /// The store to load into; it must hold no jobs, users or history.
    #[arg(long, env = "JOBSCHED_STORE")]
    pub store: Option<String>,
    /// The backup file.
    #[arg(long)]
    pub from: PathBuf,
}

/// `jobsched secrets …`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Creates a keyring with one new key (refused if the file exists), for a cluster's processes to
    /// share.
    Init {
        /// The keyring file to create.
        #[arg(long, env = "JOBSCHED_SECRET_KEY_FILE")]
        secret_key_file: PathBuf,
    },
    /// Adds a new key to the keyring (it encrypts from then on) and re-encrypts every job's secret params
    /// with it; older keys stay for what they encrypted before.
    Rotate {
        /// The store whose jobs to re-encrypt.
        #[arg(long, env = "JOBSCHED_STORE")]
        store: Option<String>,
        /// The keyring file (default: secret.key in the data directory).
        #[arg(long, env = "JOBSCHED_SECRET_KEY_FILE")]
        secret_key_file: Option<PathBuf>,
        /// The data directory (for the default keyring and store).
        #[arg(long, env = "JOBSCHED_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}
