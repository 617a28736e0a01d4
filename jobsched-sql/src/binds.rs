//! Row values as bound parameters of multi-row statements, in column order, for either database.

use chrono::NaiveDateTime;
use sqlx::query_builder::Separated;
use sqlx::{Database, Encode, Type};

use crate::rows::{ExecRow, ExecutorRow, JobRow};

/// A value type the database `DB` takes as a bound parameter (shorthand for the bounds below).
pub trait Bind<DB: Database>: for<'q> Encode<'q, DB> + Type<DB> {}
impl<DB: Database, T> Bind<DB> for T where T: for<'q> Encode<'q, DB> + Type<DB> {}

/// The `job_logs` columns an insert sets (every column but the generated `id`), in the order
/// [`push_exec_values`] binds them.
pub const EXEC_INSERT_COLUMNS: &str = "task_id, attempt, job_id, executor_id, executor_epoch, status, \
     trigger_kind, scheduled_time, due_time, create_time, start_time, end_time, output, error, exit_code, \
     command, type_name, params, timeout, retry_count, retry_interval, priority, fire_time";

/// The `job_logs` columns a state change may set.
pub const EXEC_MUTABLE_COLUMNS: [&str; 8] = [
    "status",
    "executor_id",
    "executor_epoch",
    "start_time",
    "end_time",
    "output",
    "error",
    "exit_code",
];

/// The `executors` columns an upsert sets, in the order [`push_executor_values`] binds them; `enabled`
/// last, so an update can leave it out.
pub const EXECUTOR_UPSERT_COLUMNS: [&str; 12] = [
    "executor_id",
    "host",
    "port",
    "status",
    "last_heartbeat_time",
    "register_time",
    "capacity",
    "running",
    "group_name",
    "labels",
    "handlers",
    "enabled",
];

/// `col = VALUES(col), …` (MySQL) or `col = excluded.col, …` (SQLite) for the columns of an upsert:
/// fixed text built from constant column names.
pub fn assignments<'a>(columns: impl IntoIterator<Item = &'a str>, sqlite: bool) -> String {
    columns
        .into_iter()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            if sqlite {
                format!("{c} = excluded.{c}")
            } else {
                format!("{c} = VALUES({c})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names in a comma-separated column list such as [`crate::JOB_COLUMNS`].
pub fn column_names(list: &'static str) -> impl Iterator<Item = &'static str> {
    list.split(',').map(str::trim)
}

/// Binds a `jobs` row in the order of [`crate::JOB_COLUMNS`].
pub fn push_job_values<DB>(v: &mut Separated<'_, DB, &'static str>, r: JobRow)
where
    DB: Database,
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    i64: Bind<DB>,
    i32: Bind<DB>,
    Option<i32>: Bind<DB>,
    i8: Bind<DB>,
    bool: Bind<DB>,
    NaiveDateTime: Bind<DB>,
    Option<NaiveDateTime>: Bind<DB>,
{
    v.push_bind(r.job_id)
        .push_bind(r.name)
        .push_bind(r.command)
        .push_bind(r.type_code)
        .push_bind(r.type_name)
        .push_bind(r.priority)
        .push_bind(r.schedule_type)
        .push_bind(r.cron_expression)
        .push_bind(r.interval)
        .push_bind(r.start_time)
        .push_bind(r.time_zone)
        .push_bind(r.timeout)
        .push_bind(r.retry_count)
        .push_bind(r.retry_interval)
        .push_bind(r.retry_backoff)
        .push_bind(r.retry_max_interval)
        .push_bind(r.enabled)
        .push_bind(r.owner)
        .push_bind(r.description)
        .push_bind(r.params)
        .push_bind(r.executor_group)
        .push_bind(r.executor_labels)
        .push_bind(r.routing_strategy)
        .push_bind(r.misfire_policy)
        .push_bind(r.misfire_max_fires)
        .push_bind(r.overlap_policy)
        .push_bind(r.retention_days)
        .push_bind(r.retention_runs)
        .push_bind(r.metrics)
        .push_bind(r.create_time)
        .push_bind(r.update_time)
        .push_bind(r.version)
        .push_bind(r.revision)
        .push_bind(r.deleted);
}

/// Binds a `job_logs` row in the order of [`EXEC_INSERT_COLUMNS`] (without `id`).
pub fn push_exec_values<DB>(v: &mut Separated<'_, DB, &'static str>, r: ExecRow)
where
    DB: Database,
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    i64: Bind<DB>,
    i32: Bind<DB>,
    Option<i32>: Bind<DB>,
    i8: Bind<DB>,
    NaiveDateTime: Bind<DB>,
    Option<NaiveDateTime>: Bind<DB>,
{
    v.push_bind(r.task_id)
        .push_bind(r.attempt)
        .push_bind(r.job_id)
        .push_bind(r.executor_id)
        .push_bind(r.executor_epoch)
        .push_bind(r.status)
        .push_bind(r.trigger_kind)
        .push_bind(r.scheduled_time)
        .push_bind(r.due_time)
        .push_bind(r.create_time)
        .push_bind(r.start_time)
        .push_bind(r.end_time)
        .push_bind(r.output)
        .push_bind(r.error)
        .push_bind(r.exit_code)
        .push_bind(r.command)
        .push_bind(r.type_name)
        .push_bind(r.params)
        .push_bind(r.timeout)
        .push_bind(r.retry_count)
        .push_bind(r.retry_interval)
        .push_bind(r.priority)
        .push_bind(r.fire_time);
}

/// Binds an `executors` row in the order of [`EXECUTOR_UPSERT_COLUMNS`].
pub fn push_executor_values<DB>(v: &mut Separated<'_, DB, &'static str>, r: ExecutorRow)
where
    DB: Database,
    String: Bind<DB>,
    i32: Bind<DB>,
    i8: Bind<DB>,
    bool: Bind<DB>,
    NaiveDateTime: Bind<DB>,
{
    v.push_bind(r.executor_id)
        .push_bind(r.host)
        .push_bind(r.port)
        .push_bind(r.status)
        .push_bind(r.last_heartbeat_time)
        .push_bind(r.register_time)
        .push_bind(r.capacity)
        .push_bind(r.running)
        .push_bind(r.group_name)
        .push_bind(r.labels)
        .push_bind(r.handlers)
        .push_bind(r.enabled);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_assignments_name_every_column() {
        assert_eq!(
            assignments(["a", " b"], false),
            "a = VALUES(a), b = VALUES(b)"
        );
        assert_eq!(assignments(["a"], true), "a = excluded.a");
        assert_eq!(
            column_names(EXEC_INSERT_COLUMNS).count(),
            column_names(crate::EXEC_COLUMNS).count() - 1,
            "every column but id"
        );
    }
}
