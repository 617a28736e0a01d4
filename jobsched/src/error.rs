//! The one error type of the core crate and of every backend trait.
//!
//! Backends convert their client's errors into these meanings at their boundary, in one place, so callers
//! (the engine, the HTTP API) can react by kind: retry an [`Error::Unavailable`], answer 404 for
//! [`Error::NotFound`], 409 for [`Error::Conflict`], and so on.

use std::time::Duration;

/// Result alias used across jobsched.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Boxed source error of a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, as a meaning a caller can match on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named object does not exist.
    #[error("{kind} '{id}' not found")]
    NotFound {
        /// What kind of object was looked up (`job`, `task`, `executor`, ...).
        kind: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// An object with this id exists already.
    #[error("{kind} '{id}' already exists")]
    AlreadyExists {
        /// What kind of object was created.
        kind: &'static str,
        /// The id that is taken.
        id: String,
    },
    /// The write lost a race: the stored version is not the one the caller read (optimistic concurrency).
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicted, e.g. the expected and the stored version.
        message: String,
    },
    /// A write carried a fencing token older than one already seen: the writer lost its leadership or lock.
    #[error("fenced: token {token} for '{scope}' is older than the current token {current}")]
    Fenced {
        /// The fenced scope (an election or lock name).
        scope: String,
        /// The token the writer presented.
        token: u64,
        /// The newest token the store has seen for this scope.
        current: u64,
    },
    /// The input is invalid; `field` names the offending field and `reason` says why.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field (or message part) that is wrong.
        field: String,
        /// Why it is wrong, in words a user can act on.
        reason: String,
    },
    /// The backend cannot be reached or refused to serve right now; retrying later may succeed.
    #[error("{backend} unavailable: {message}")]
    Unavailable {
        /// Which backend (`memory`, `mysql`, `kafka`, `zookeeper`, ...).
        backend: &'static str,
        /// What failed.
        message: String,
        /// The client error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The operation did not finish in time; it may or may not have taken effect.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// The operation that timed out.
        operation: String,
        /// How long was waited.
        after: Duration,
    },
    /// The backend does not support this operation.
    #[error("{operation} is not supported by the {backend} backend")]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
        /// The backend that cannot do it.
        backend: &'static str,
    },
    /// The component was shut down (or its channel closed) and takes no more calls.
    #[error("{component} is shut down")]
    Closed {
        /// The component that is closed.
        component: &'static str,
    },
    /// A backend failed in a way that retrying will not fix (bad data, a protocol error, a bug).
    #[error("{backend} error: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// True when the same call may succeed if retried later (lost connection, overload, timeout).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Timeout { .. })
    }

    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// Shorthand for [`Error::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Unavailable`] without a source.
    pub fn unavailable(backend: &'static str, message: impl Into<String>) -> Self {
        Error::Unavailable {
            backend,
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Backend`].
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            backend,
            source: source.into(),
        }
    }

    /// A short stable code for this kind of error (used in API error bodies).
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::AlreadyExists { .. } => "already_exists",
            Error::Conflict { .. } => "conflict",
            Error::Fenced { .. } => "fenced",
            Error::Invalid { .. } => "invalid",
            Error::Unavailable { .. } => "unavailable",
            Error::Timeout { .. } => "timeout",
            Error::Unsupported { .. } => "unsupported",
            Error::Closed { .. } => "closed",
            Error::Backend { .. } => "backend",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        assert!(Error::unavailable("memory", "down").is_retryable());
        assert!(
            Error::Timeout {
                operation: "x".into(),
                after: Duration::from_secs(1)
            }
            .is_retryable()
        );
        assert!(!Error::invalid("cron_expression", "bad").is_retryable());
        assert!(!Error::not_found("job", "j1").is_retryable());
    }

    #[test]
    fn messages_name_what_is_wrong() {
        let e = Error::invalid("timeout", "must be at most 604800 seconds, got 999999999");
        assert_eq!(
            e.to_string(),
            "invalid timeout: must be at most 604800 seconds, got 999999999"
        );
        assert_eq!(
            Error::not_found("job", "j-1").to_string(),
            "job 'j-1' not found"
        );
    }
}
