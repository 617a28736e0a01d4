//! What jobsched's SQL stores (`jobsched-mysql`, `jobsched-sqlite`) share: row types that decode from
//! either database, the conversions between rows and the model, the mapping of handler names to the design's
//! `type TINYINT`, the decisions of batch writes (made in Rust on locked rows, so both stores apply the
//! in-memory store's semantics exactly), the listing filters, output capping and error classification.
//!
//! Times are stored as UTC wall-clock values with millisecond precision (`DATETIME(3)` in MySQL, text in
//! SQLite); rows carry them as `NaiveDateTime`, read and written as UTC, so no session time zone applies.

#[macro_use]
mod bounds;
mod accounts;
mod binds;
mod dialect;
mod error;
mod executions;
pub mod fence;
mod filters;
mod plan;
pub mod reads;
mod rows;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod text;
pub mod writes;

use std::ops::Range;

pub use accounts::{AuditRow, TokenRow, UserRow};
pub use binds::{
    Bind, EXEC_INSERT_COLUMNS, EXEC_MUTABLE_COLUMNS, EXECUTOR_UPSERT_COLUMNS, assignments,
    column_names, push_exec_values, push_executor_values, push_job_values,
};
pub use dialect::{Dialect, MYSQL, SQLITE, StaleHolders, mysql_kind_of, sqlite_kind_of};
pub use error::{DbError, DbErrorKind, KindOf, classify, retrying, to_error};
pub use filters::{
    active_status_list, push_exec_where, push_job_where, push_page, terminal_status_list,
};
pub use plan::{UpdatePlan, cap_record, check_distinct_attempts, plan_updates, taken};
pub use rows::{
    EXEC_COLUMNS, EXECUTOR_COLUMNS, ExecRow, ExecutorRow, JOB_COLUMNS, JobRow, from_json_text,
    naive, to_json_text, type_code, utc,
};
pub use store::{InsertedIds, SqlStore, SqlStoreParts};
pub use text::cap_text;

/// Size limits of a SQL store's writes (part of each store's configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most rows in one `INSERT` statement; larger batches take several statements in one transaction.
    pub max_batch_rows: usize,
    /// Most bytes (roughly) in one statement, under the server's packet limit.
    pub max_statement_bytes: usize,
    /// Most bytes of a task's `output`, and of its `error`, that are stored; the rest is cut with a marker
    /// (the tail is kept).
    pub max_output_bytes: usize,
}

impl Limits {
    /// Checks a configured output cap: between 1 KiB and `max` bytes (`field` names it in the error).
    pub fn check_output_bytes(field: &str, value: usize, max: usize) -> jobsched::Result<()> {
        if (1024..=max).contains(&value) {
            Ok(())
        } else {
            Err(jobsched::Error::invalid(
                field,
                format!("must be between 1024 and {max}, got {value}"),
            ))
        }
    }
}

/// Splits `items` into consecutive ranges of at most `max_rows` items and (unless one item alone is
/// larger) at most `max_bytes` bytes by `size`.
///
/// ```
/// let sizes = [10, 10, 10, 50, 10];
/// let chunks = jobsched_sql::chunks(&sizes, 2, 30, |s| *s);
/// assert_eq!(chunks, vec![0..2, 2..3, 3..4, 4..5]);
/// ```
pub fn chunks<T>(
    items: &[T],
    max_rows: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, item) in items.iter().enumerate() {
        let s = size(item);
        if i > start && (i - start >= max_rows.max(1) || bytes + s > max_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += s;
    }
    if start < items.len() {
        out.push(start..items.len());
    }
    out
}
