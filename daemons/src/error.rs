//! The daemon's error type: what stops a command, with the words to act on.

/// Why a `jobsched` command failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is incomplete or wrong.
    #[error("{0}")]
    Config(String),
    /// This build cannot do what was asked.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A backend or the scheduler refused.
    #[error(transparent)]
    Jobsched(#[from] jobsched::Error),
    /// Listening or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server answered a client command with an error, or could not be reached.
    #[error("{0}")]
    Client(String),
}

impl DaemonError {
    /// The process exit status for this error: 2 for usage and configuration, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Config(_) | DaemonError::Unsupported(_) => 2,
            _ => 1,
        }
    }
}
