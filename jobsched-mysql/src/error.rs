//! The one place MySQL/MariaDB error numbers get a meaning; everything leaves the crate as a
//! [`jobsched::Error`] (through [`jobsched_sql::DbError`]).

use std::future::Future;

use jobsched_sql::{DbError, DbErrorKind};
use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;

pub(crate) const BACKEND: &str = "mysql";

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

/// True if `err` is a duplicate-key error on the unique key `key`.
pub(crate) fn is_duplicate_on(err: &DbError, key: &str) -> bool {
    err.is_duplicate_on(kind_of, key)
}

/// The jobsched error of a failure outside a transaction.
pub(crate) fn into_error(err: impl Into<DbError>) -> jobsched::Error {
    err.into().into_error(BACKEND, kind_of)
}

/// Runs a transaction of this store, re-running it when it lost a lock race.
pub(crate) async fn retrying<T, F, Fut>(operation: &'static str, run: F) -> jobsched::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    jobsched_sql::retrying(BACKEND, kind_of, operation, run).await
}
