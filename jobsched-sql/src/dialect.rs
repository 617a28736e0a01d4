//! The few places where MySQL and SQLite SQL differ, as fixed text.

use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;

use crate::binds::assignments;
use crate::error::{DbErrorKind, KindOf};

/// How one database spells what the shared statements need.
#[derive(Clone, Copy, Debug)]
pub struct Dialect {
    /// The backend's name, for messages.
    pub backend: &'static str,
    /// `ON CONFLICT (…) DO UPDATE SET c = excluded.c` (SQLite) rather than
    /// `ON DUPLICATE KEY UPDATE c = VALUES(c)` (MySQL).
    pub conflict_clause: bool,
    /// Appended to a read that decides a write (`FOR UPDATE`; nothing in SQLite, whose write transactions
    /// hold the database lock from their start).
    pub for_update: &'static str,
    /// Appended to a read that must see the latest committed row and keep it from changing until commit
    /// (`LOCK IN SHARE MODE`; nothing in SQLite).
    pub for_share: &'static str,
    /// The larger-of-two function (`GREATEST` / `MAX`).
    pub greatest: &'static str,
    /// The statement that starts a write transaction (SQLite: `BEGIN IMMEDIATE`, which takes the write
    /// lock at once, so a transaction never fails to upgrade a read lock).
    pub begin: Option<&'static str>,
    /// What a duplicate-key message on the fire key `(job_id, fire_time)` contains.
    pub fire_key_marker: &'static str,
    /// What a duplicate-key message on the attempt key `(task_id, attempt)` contains.
    pub attempt_key_marker: &'static str,
    /// The meaning of the server's error codes.
    pub kind_of: KindOf,
    /// The select list that reads a `jobs` row in the order of [`JOB_COLUMNS`](crate::JOB_COLUMNS).
    pub job_select: &'static str,
    /// How a fencing-token raise ends stale holders (`None`: write transactions are serial, nothing to
    /// end). See [`crate::fence`].
    pub stale_holders: Option<StaleHolders>,
}

/// The statements with which a newer fencing-token holder finds and ends the connections of stopped
/// writers whose open transactions hold the lock it waits for.
#[derive(Clone, Copy, Debug)]
pub struct StaleHolders {
    /// Reads this connection's id on the server (as a signed integer).
    pub connection_id: &'static str,
    /// Queries for the ids of the connections whose transactions hold a lock the connection `?` waits for
    /// and that have sent nothing for at least a second (a writer between two statements of a healthy
    /// transaction — even the new holder's own — is never idle that long); tried in order, the first one
    /// the server accepts answers.
    pub blockers: &'static [&'static str],
    /// Followed by a connection id: ends that connection (its transaction rolls back).
    pub kill: &'static str,
}

/// MySQL and MariaDB.
pub const MYSQL: Dialect = Dialect {
    backend: "mysql",
    conflict_clause: false,
    for_update: " FOR UPDATE",
    for_share: " LOCK IN SHARE MODE",
    greatest: "GREATEST",
    begin: None,
    fire_key_marker: "uk_fire",
    attempt_key_marker: "uk_task_attempt",
    kind_of: mysql_kind_of,
    job_select: crate::rows::JOB_COLUMNS,
    stale_holders: Some(StaleHolders {
        connection_id: "SELECT CAST(CONNECTION_ID() AS SIGNED)",
        blockers: &[
            // MariaDB and MySQL 5.7.
            "SELECT DISTINCT CAST(b.trx_mysql_thread_id AS SIGNED) \
             FROM information_schema.INNODB_TRX r \
             JOIN information_schema.INNODB_LOCK_WAITS w ON w.requesting_trx_id = r.trx_id \
             JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id \
             JOIN information_schema.PROCESSLIST p ON p.ID = b.trx_mysql_thread_id \
             WHERE r.trx_mysql_thread_id = ? AND p.COMMAND = 'Sleep' AND p.TIME >= 1",
            // MySQL 8, which moved the lock waits to performance_schema.
            "SELECT DISTINCT CAST(b.trx_mysql_thread_id AS SIGNED) \
             FROM information_schema.INNODB_TRX r \
             JOIN performance_schema.data_lock_waits w \
               ON w.REQUESTING_ENGINE_TRANSACTION_ID = r.trx_id \
             JOIN information_schema.INNODB_TRX b ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID \
             JOIN information_schema.PROCESSLIST p ON p.ID = b.trx_mysql_thread_id \
             WHERE r.trx_mysql_thread_id = ? AND p.COMMAND = 'Sleep' AND p.TIME >= 1",
        ],
        kill: "KILL CONNECTION",
    }),
};

/// SQLite.
pub const SQLITE: Dialect = Dialect {
    backend: "sqlite",
    conflict_clause: true,
    for_update: "",
    for_share: "",
    greatest: "MAX",
    begin: Some("BEGIN IMMEDIATE"),
    fire_key_marker: "job_logs.fire_time",
    attempt_key_marker: "job_logs.attempt",
    kind_of: sqlite_kind_of,
    job_select: SQLITE_JOB_SELECT,
    stale_holders: None,
};

/// [`JOB_COLUMNS`](crate::JOB_COLUMNS) with the times (stored as `YYYY-MM-DD HH:MM:SS.sss` text) read as
/// RFC 3339 (`T` for the space, `Z` appended; NULL stays NULL), which the driver parses on its first try
/// instead of after three other formats (a sixth of the decoding time of a job row).
const SQLITE_JOB_SELECT: &str = "job_id, name, command, type, type_name, priority, schedule_type, \
     cron_expression, `interval`, replace(start_time, ' ', 'T') || 'Z' AS start_time, time_zone, \
     timeout, retry_count, retry_interval, retry_backoff, retry_max_interval, enabled, owner, description, \
     params, executor_group, executor_labels, routing_strategy, misfire_policy, misfire_max_fires, \
     overlap_policy, retention_days, retention_runs, metrics, \
     replace(create_time, ' ', 'T') || 'Z' AS create_time, \
     replace(update_time, ' ', 'T') || 'Z' AS update_time, version, revision, deleted";

/// The kind of a MySQL/MariaDB error number.
pub fn mysql_kind_of(db: &dyn DatabaseError) -> DbErrorKind {
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

/// The kind of an SQLite extended result code.
pub fn sqlite_kind_of(db: &dyn DatabaseError) -> DbErrorKind {
    let code: i32 = db.code().and_then(|c| c.parse().ok()).unwrap_or(0);
    match code {
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
        2067 | 1555 => DbErrorKind::Duplicate,
        // SQLITE_CONSTRAINT_NOTNULL, _CHECK, _DATATYPE (a STRICT table), SQLITE_TOOBIG
        1299 | 275 | 3091 | 18 => DbErrorKind::InvalidValue,
        _ => match code & 0xff {
            // SQLITE_BUSY, SQLITE_LOCKED: another connection holds the lock beyond the busy timeout.
            5 | 6 => DbErrorKind::Contention,
            // SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN: the disk, not the data.
            10 | 13 | 14 => DbErrorKind::Unavailable,
            _ => DbErrorKind::Other,
        },
    }
}

impl Dialect {
    /// The upsert clause that, on a duplicate `key`, sets `columns` to the new row's values.
    pub fn upsert<'a>(&self, key: &str, columns: impl IntoIterator<Item = &'a str>) -> String {
        let set = assignments(columns, self.conflict_clause);
        if self.conflict_clause {
            format!(" ON CONFLICT ({key}) DO UPDATE SET {set}")
        } else {
            format!(" ON DUPLICATE KEY UPDATE {set}")
        }
    }

    /// `new` as an upsert assignment's value for column `c`.
    pub fn new_value(&self, c: &str) -> String {
        if self.conflict_clause {
            format!("excluded.{c}")
        } else {
            format!("VALUES({c})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_job_select_reads_every_column_in_order() {
        let expected: Vec<String> = crate::column_names(crate::JOB_COLUMNS)
            .map(|c| match c {
                "start_time" | "create_time" | "update_time" => {
                    format!("replace({c}, ' ', 'T') || 'Z' AS {c}")
                }
                _ => c.to_owned(),
            })
            .collect();
        assert_eq!(SQLITE_JOB_SELECT, expected.join(", "));
    }

    #[test]
    fn upserts_in_both_dialects() {
        assert_eq!(
            MYSQL.upsert("id", ["a", "b"]),
            " ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b)"
        );
        assert_eq!(
            SQLITE.upsert("id", ["a"]),
            " ON CONFLICT (id) DO UPDATE SET a = excluded.a"
        );
    }
}
