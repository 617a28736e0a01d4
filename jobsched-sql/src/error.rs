//! What a database error means to a store, and its conversion to jobsched's error kinds — one place per
//! store decides the kind from the driver's codes ([`DbErrorKind`]), this module does the rest.

use jobsched::Error;
use sqlx::error::DatabaseError;

/// What a database error means, as a store needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbErrorKind {
    /// A unique key already holds the value.
    Duplicate,
    /// The transaction lost a lock race (deadlock, lock wait timeout, busy database): running it again
    /// is expected to succeed.
    Contention,
    /// The server cannot be reached or refused service (lost connection, pool exhausted, server shutting
    /// down): retry later.
    Unavailable,
    /// A value does not fit its column or is not acceptable there (too long, bad encoding, missing).
    InvalidValue,
    /// Anything else (a bug or a broken schema: retrying will not help).
    Other,
}

/// The kind of `err`: driver-level failures by their sqlx variant, database errors by `database_kind`
/// (the store's mapping of its server's codes).
pub fn classify(
    err: &sqlx::Error,
    database_kind: impl Fn(&dyn DatabaseError) -> DbErrorKind,
) -> DbErrorKind {
    match err {
        sqlx::Error::Database(db) => database_kind(db.as_ref()),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => DbErrorKind::Unavailable,
        _ => DbErrorKind::Other,
    }
}

/// Converts `err` of kind `kind` to a jobsched error: `Contention` and `Unavailable` become the retryable
/// [`Error::Unavailable`], `InvalidValue` becomes [`Error::Invalid`] with the server's words (which name
/// the column), the rest [`Error::Backend`].
pub fn to_error(backend: &'static str, err: sqlx::Error, kind: DbErrorKind) -> Error {
    match kind {
        DbErrorKind::Contention | DbErrorKind::Unavailable => Error::Unavailable {
            backend,
            message: err.to_string(),
            source: Some(Box::new(err)),
        },
        DbErrorKind::InvalidValue => {
            let message = match &err {
                sqlx::Error::Database(db) => db.message().to_owned(),
                other => other.to_string(),
            };
            Error::invalid("value", format!("{backend} refused it: {message}"))
        }
        DbErrorKind::Duplicate | DbErrorKind::Other => Error::backend(backend, err),
    }
}
