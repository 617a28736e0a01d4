//! Reads of `job_logs` (one attempt, a task's attempts, filtered pages, active attempts for takeover) and
//! the purge of old records.

use chrono::{DateTime, Utc};
use jobsched::{Error, ExecutionQuery, ExecutionRecord, Page, TaskId};
use jobsched_sql::{EXEC_COLUMNS, ExecRow, active_status_list, naive, terminal_status_list};
use sqlx::{AssertSqlSafe, MySql, QueryBuilder};

use crate::error::{BACKEND, DbError};
use crate::store::Ctx;

fn records(rows: Vec<ExecRow>) -> Result<Vec<ExecutionRecord>, DbError> {
    rows.into_iter()
        .map(|r| r.into_record(BACKEND).map_err(DbError::from))
        .collect()
}

pub(crate) async fn get(
    ctx: &Ctx,
    task: &TaskId,
    attempt: u32,
) -> Result<ExecutionRecord, DbError> {
    let row: Option<ExecRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {EXEC_COLUMNS} FROM job_logs WHERE task_id = ? AND attempt = ?"
    )))
    .bind(task.as_str())
    .bind(attempt as i32)
    .fetch_optional(&ctx.pool)
    .await?;
    match row {
        Some(r) => Ok(r.into_record(BACKEND)?),
        None => Err(Error::not_found("task attempt", format!("{task}#{attempt}")).into()),
    }
}

pub(crate) async fn attempts(ctx: &Ctx, task: &TaskId) -> Result<Vec<ExecutionRecord>, DbError> {
    let rows: Vec<ExecRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {EXEC_COLUMNS} FROM job_logs WHERE task_id = ? ORDER BY attempt"
    )))
    .bind(task.as_str())
    .fetch_all(&ctx.pool)
    .await?;
    if rows.is_empty() {
        return Err(Error::not_found("task", task.as_str()).into());
    }
    records(rows)
}

pub(crate) async fn list(ctx: &Ctx, q: &ExecutionQuery) -> Result<Page<ExecutionRecord>, DbError> {
    let mut count = QueryBuilder::<MySql>::new("SELECT COUNT(*) FROM job_logs");
    jobsched_sql::push_exec_where(&mut count, q);
    let total: i64 = count.build_query_scalar().fetch_one(&ctx.pool).await?;
    let mut qb = QueryBuilder::<MySql>::new(format!("SELECT {EXEC_COLUMNS} FROM job_logs"));
    jobsched_sql::push_exec_where(&mut qb, q);
    qb.push(" ORDER BY id DESC");
    jobsched_sql::push_page(&mut qb, q.page);
    let rows: Vec<ExecRow> = qb.build_query_as().fetch_all(&ctx.pool).await?;
    Ok(Page {
        items: records(rows)?,
        total: total.max(0) as u64,
        page: q.page.page,
        page_size: q.page.page_size,
    })
}

pub(crate) async fn active(
    ctx: &Ctx,
    after_id: i64,
    limit: usize,
) -> Result<Vec<ExecutionRecord>, DbError> {
    let rows: Vec<ExecRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {EXEC_COLUMNS} FROM job_logs WHERE status IN ({}) AND id > ? ORDER BY id LIMIT ?",
        active_status_list()
    )))
    .bind(after_id)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&ctx.pool)
    .await?;
    records(rows)
}

pub(crate) async fn purge(ctx: &Ctx, before: DateTime<Utc>, limit: usize) -> Result<u64, DbError> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM job_logs WHERE status IN ({}) AND end_time < ? ORDER BY end_time LIMIT ?",
        terminal_status_list()
    )))
    .bind(naive(before))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .execute(&ctx.pool)
    .await?;
    Ok(done.rows_affected())
}
