//! What a database error means to a store, the error type inside a store's transactions, its conversion
//! to jobsched's error kinds, and re-running transactions that lost a lock race. Each store supplies one
//! function that maps its server's codes to a [`DbErrorKind`]; this module does the rest.

use std::future::Future;
use std::time::Duration;

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

/// A store's mapping of its server's error codes to kinds.
pub type KindOf = fn(&dyn DatabaseError) -> DbErrorKind;

/// How often a transaction that lost a lock race (deadlock, lock wait timeout, a concurrent fire) is run
/// again before the call fails with a retryable error.
const MAX_TX_RETRIES: u32 = 20;

/// What can go wrong inside a store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database or the connection failed.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// A domain outcome to hand to the caller as it is (NotFound, Conflict, Fenced, AlreadyExists, …).
    #[error(transparent)]
    Domain(#[from] Error),
    /// Another process recorded one of the batch's fires between our check and our insert: run the
    /// transaction again (it will see that fire).
    #[error("a concurrent writer recorded one of the fires; retrying")]
    FireRace,
}

/// The kind of `err`: driver-level failures by their sqlx variant, database errors by `kind_of`.
pub fn classify(err: &sqlx::Error, kind_of: KindOf) -> DbErrorKind {
    match err {
        sqlx::Error::Database(db) => kind_of(db.as_ref()),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => DbErrorKind::Unavailable,
        _ => DbErrorKind::Other,
    }
}

/// Converts an sqlx error to a jobsched error: `Contention` and `Unavailable` become the retryable
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

impl DbError {
    /// The jobsched error a caller sees.
    pub fn into_error(self, backend: &'static str, kind_of: KindOf) -> Error {
        match self {
            DbError::Domain(e) => e,
            DbError::Sql(e) => {
                let k = classify(&e, kind_of);
                to_error(backend, e, k)
            }
            DbError::FireRace => Error::unavailable(
                backend,
                "fires kept being recorded concurrently; retry the call",
            ),
        }
    }

    /// True for a duplicate-key error whose message names `key` (a unique index).
    pub fn is_duplicate_on(&self, kind_of: KindOf, key: &str) -> bool {
        match self {
            DbError::Sql(sqlx::Error::Database(db)) => {
                kind_of(db.as_ref()) == DbErrorKind::Duplicate && db.message().contains(key)
            }
            _ => false,
        }
    }

    fn worth_rerunning(&self, kind_of: KindOf) -> bool {
        match self {
            DbError::Sql(e) => classify(e, kind_of) == DbErrorKind::Contention,
            DbError::FireRace => true,
            DbError::Domain(_) => false,
        }
    }
}

/// Runs a transaction, running it again (after a short, growing, jittered pause) when it lost a lock race;
/// converts the final error. Every transaction of a store must be safe to re-run: it re-reads what it
/// decides on.
pub async fn retrying<T, F, Fut>(
    backend: &'static str,
    kind_of: KindOf,
    operation: &'static str,
    mut run: F,
) -> jobsched::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut tries = 0;
    loop {
        match run().await {
            Ok(v) => return Ok(v),
            Err(e) if e.worth_rerunning(kind_of) && tries < MAX_TX_RETRIES => {
                tries += 1;
                tracing::debug!(backend, operation, tries, error = %e, "transaction lost a race; running it again");
                let pause = Duration::from_micros(fastrand::u64(200..1000) * u64::from(tries));
                tokio::time::sleep(pause).await;
            }
            Err(e) => {
                let e = e.into_error(backend, kind_of);
                if e.is_retryable() {
                    tracing::warn!(backend, operation, error = %e, "store call failed; the caller may retry");
                }
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &dyn DatabaseError) -> DbErrorKind {
        DbErrorKind::Other
    }

    #[test]
    fn lost_connections_are_retryable() {
        let e = DbError::Sql(sqlx::Error::PoolTimedOut).into_error("x", none);
        assert!(e.is_retryable(), "{e}");
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = DbError::Sql(sqlx::Error::Io(io)).into_error("x", none);
        assert!(e.is_retryable(), "{e}");
        let e = DbError::Domain(Error::not_found("job", "x")).into_error("x", none);
        assert!(matches!(e, Error::NotFound { .. }));
    }
}
