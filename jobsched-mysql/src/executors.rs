//! The `executors` table: registrations, liveness, and the operator's enabled flag.

use jobsched::{Error, ExecutorHeartbeat, ExecutorId, ExecutorRecord};
use jobsched_sql::{
    EXECUTOR_COLUMNS, EXECUTOR_UPSERT_COLUMNS, ExecutorRow, assignments, naive,
    push_executor_values,
};
use sqlx::{AssertSqlSafe, MySql, QueryBuilder};

use crate::error::{BACKEND, DbError};
use crate::store::Ctx;

pub(crate) async fn upsert(ctx: &Ctx, record: &ExecutorRecord) -> Result<ExecutorRecord, DbError> {
    // Every column but `enabled` (the last): an operator's choice survives re-registration.
    let update = assignments(
        EXECUTOR_UPSERT_COLUMNS[1..EXECUTOR_UPSERT_COLUMNS.len() - 1]
            .iter()
            .copied(),
        false,
    );
    let mut qb = QueryBuilder::<MySql>::new(format!(
        "INSERT INTO executors ({}) ",
        EXECUTOR_UPSERT_COLUMNS.join(", ")
    ));
    qb.push_values([ExecutorRow::from_record(record)], |mut v, r| {
        push_executor_values(&mut v, r)
    });
    qb.push(format!(" ON DUPLICATE KEY UPDATE {update}"));
    qb.build().execute(&ctx.pool).await?;
    get(ctx, &record.executor_id).await
}

pub(crate) async fn heartbeats(ctx: &Ctx, beats: &[ExecutorHeartbeat]) -> Result<(), DbError> {
    if beats.is_empty() {
        return Ok(());
    }
    let mut tx = ctx.pool.begin().await?;
    for b in beats {
        sqlx::query(
            "UPDATE executors SET status = ?, last_heartbeat_time = ?, running = ? WHERE executor_id = ?",
        )
        .bind(b.status.code() as i8)
        .bind(naive(b.at))
        .bind(b.running as i32)
        .bind(b.executor_id.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn get(ctx: &Ctx, id: &ExecutorId) -> Result<ExecutorRecord, DbError> {
    let row: Option<ExecutorRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {EXECUTOR_COLUMNS} FROM executors WHERE executor_id = ?"
    )))
    .bind(id.as_str())
    .fetch_optional(&ctx.pool)
    .await?;
    match row {
        Some(r) => Ok(r.into_record(BACKEND)?),
        None => Err(Error::not_found("executor", id.as_str()).into()),
    }
}

pub(crate) async fn list(ctx: &Ctx) -> Result<Vec<ExecutorRecord>, DbError> {
    let rows: Vec<ExecutorRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {EXECUTOR_COLUMNS} FROM executors ORDER BY executor_id"
    )))
    .fetch_all(&ctx.pool)
    .await?;
    rows.into_iter()
        .map(|r| r.into_record(BACKEND).map_err(DbError::from))
        .collect()
}

pub(crate) async fn set_enabled(
    ctx: &Ctx,
    id: &ExecutorId,
    enabled: bool,
) -> Result<ExecutorRecord, DbError> {
    sqlx::query("UPDATE executors SET enabled = ? WHERE executor_id = ?")
        .bind(enabled)
        .bind(id.as_str())
        .execute(&ctx.pool)
        .await?;
    get(ctx, id).await
}
