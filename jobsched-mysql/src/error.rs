//! The crate's error type inside a transaction, and the one place MySQL/MariaDB error numbers get a
//! meaning. Everything leaves the crate as a [`jobsched::Error`].

use std::future::Future;
use std::time::Duration;

use jobsched_sql::DbErrorKind;
use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;

pub(crate) const BACKEND: &str = "mysql";

/// How often a transaction that lost a lock race (deadlock, lock wait timeout, a concurrent fire) is run
/// again before the call fails with a retryable error.
const MAX_TX_RETRIES: u32 = 20;

/// What can go wrong inside the store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// The database or the connection failed.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// A domain outcome to hand to the caller as it is (NotFound, Conflict, Fenced, AlreadyExists, …).
    #[error(transparent)]
    Domain(#[from] jobsched::Error),
    /// Another process recorded one of the batch's fires between our check and our insert: run the
    /// transaction again (it will see that fire).
    #[error("a concurrent writer recorded one of the fires; retrying")]
    FireRace,
}

/// The kind of a MySQL/MariaDB error number.
pub(crate) fn kind_of(db: &dyn DatabaseError) -> DbErrorKind {
    let Some(number) = db
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(|e| e.number())
    else {
        return DbErrorKind::Other;
    };
    match number {
        1062 => DbErrorKind::Duplicate,
        // ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK
        1205 | 1213 => DbErrorKind::Contention,
        // Too many connections, server shutdown, aborted connection, network read/write errors and
        // timeouts, read-only server (a failover in progress), connection killed, idle disconnect.
        1040 | 1053 | 1152 | 1153 | 1158..=1161 | 1290 | 1836 | 1927 | 4031 => {
            DbErrorKind::Unavailable
        }
        // Data too long, column cannot be null, out of range, incorrect string value (bad encoding),
        // truncated incorrect value.
        1406 | 1048 | 1264 | 1366 | 1292 => DbErrorKind::InvalidValue,
        _ => DbErrorKind::Other,
    }
}

/// The kind of an sqlx error from this server.
pub(crate) fn kind(err: &sqlx::Error) -> DbErrorKind {
    jobsched_sql::classify(err, kind_of)
}

/// True if `err` is a duplicate-key error on the unique key `key`.
pub(crate) fn is_duplicate_on(err: &DbError, key: &str) -> bool {
    match err {
        DbError::Sql(sqlx::Error::Database(db)) => {
            kind_of(db.as_ref()) == DbErrorKind::Duplicate && db.message().contains(key)
        }
        _ => false,
    }
}

impl DbError {
    /// The jobsched error a caller sees.
    pub(crate) fn into_error(self) -> jobsched::Error {
        match self {
            DbError::Domain(e) => e,
            DbError::Sql(e) => {
                let k = kind(&e);
                jobsched_sql::to_error(BACKEND, e, k)
            }
            DbError::FireRace => jobsched::Error::unavailable(
                BACKEND,
                "fires kept being recorded concurrently; retry the call",
            ),
        }
    }

    fn worth_rerunning(&self) -> bool {
        match self {
            DbError::Sql(e) => kind(e) == DbErrorKind::Contention,
            DbError::FireRace => true,
            DbError::Domain(_) => false,
        }
    }
}

/// Runs a transaction, running it again (after a short, growing, jittered pause) when it lost a lock race;
/// converts the final error. Every transaction of the store is safe to re-run: it re-reads what it
/// decides on.
pub(crate) async fn retrying<T, F, Fut>(operation: &'static str, mut run: F) -> jobsched::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut tries = 0;
    loop {
        match run().await {
            Ok(v) => return Ok(v),
            Err(e) if e.worth_rerunning() && tries < MAX_TX_RETRIES => {
                tries += 1;
                tracing::debug!(operation, tries, error = %e, "transaction lost a race; running it again");
                let pause = Duration::from_micros(fastrand::u64(200..1000) * u64::from(tries));
                tokio::time::sleep(pause).await;
            }
            Err(e) => {
                let e = e.into_error();
                if e.is_retryable() {
                    tracing::warn!(operation, error = %e, "mysql call failed; the caller may retry");
                }
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_retryable() {
        let e = DbError::Sql(sqlx::Error::PoolTimedOut).into_error();
        assert!(e.is_retryable(), "{e}");
        let e = DbError::Sql(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )))
        .into_error();
        assert!(e.is_retryable(), "{e}");
        let e = DbError::Domain(jobsched::Error::not_found("job", "x")).into_error();
        assert!(matches!(e, jobsched::Error::NotFound { .. }));
    }
}
