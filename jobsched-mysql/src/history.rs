//! The purge of old `job_logs` records (the reads are shared: `jobsched_sql::reads`).

use chrono::{DateTime, Utc};
use jobsched_sql::{DbError, naive, terminal_status_list};
use sqlx::AssertSqlSafe;

use crate::store::Ctx;

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
