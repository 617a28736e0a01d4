//! The `executors` table: registrations, liveness, and the operator's enabled flag.

use jobsched::{ExecutorHeartbeat, ExecutorId, ExecutorRecord};
use jobsched_sql::{
    DbError, EXECUTOR_UPSERT_COLUMNS, ExecutorRow, assignments, naive, push_executor_values,
};
use sqlx::{MySql, QueryBuilder};

use crate::error::BACKEND;
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
    jobsched_sql::reads::get_executor(&ctx.pool, BACKEND, &record.executor_id).await
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
    jobsched_sql::reads::get_executor(&ctx.pool, BACKEND, id).await
}
