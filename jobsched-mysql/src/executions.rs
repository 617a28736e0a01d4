//! Writes to `job_logs`: recording fires and attempts (`insert_executions`) and conditional state changes
//! (`update_executions`), each batch in one transaction with multi-row statements.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use jobsched::storage::{ExecutionUpdate, Fence, InsertOutcome, UpdateOutcome};
use jobsched::{ExecutionRecord, TaskId};
use jobsched_sql::{
    DbError, EXEC_INSERT_COLUMNS, EXEC_MUTABLE_COLUMNS, ExecRow, MYSQL, assignments, cap_record,
    check_distinct_attempts, naive, plan_updates, push_exec_values, reads, taken, writes,
};
use sqlx::{MySql, MySqlConnection, QueryBuilder};

use crate::error::{BACKEND, is_duplicate_on};
use crate::store::{Ctx, IdMode};

/// Most keys in one `IN (…)` or `OR` list.
const KEYS_PER_QUERY: usize = 500;

fn rows_of(ctx: &Ctx, records: &[ExecutionRecord]) -> Vec<ExecRow> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            cap_record(&mut r, ctx.limits.max_output_bytes);
            ExecRow::from_record(&r)
        })
        .collect()
}

/// Inserts rows with multi-row `INSERT`s (chunked by rows and bytes); returns their ids in order.
async fn insert_rows(
    ctx: &Ctx,
    conn: &mut MySqlConnection,
    rows: Vec<ExecRow>,
) -> Result<Vec<i64>, DbError> {
    let ranges = jobsched_sql::chunks(
        &rows,
        ctx.limits.max_batch_rows,
        ctx.limits.max_statement_bytes,
        ExecRow::approx_bytes,
    );
    let keys: Vec<(String, i32)> = match ctx.ids {
        IdMode::Lookup => rows
            .iter()
            .map(|r| (r.task_id.clone(), r.attempt))
            .collect(),
        IdMode::Consecutive { .. } => Vec::new(),
    };
    let mut ids = Vec::with_capacity(rows.len());
    let mut rows = rows.into_iter();
    for range in ranges {
        let mut qb =
            QueryBuilder::<MySql>::new(format!("INSERT INTO job_logs ({EXEC_INSERT_COLUMNS}) "));
        qb.push_values(rows.by_ref().take(range.len()), |mut v, r| {
            push_exec_values(&mut v, r)
        });
        let done = qb.build().execute(&mut *conn).await?;
        if let IdMode::Consecutive { increment } = ctx.ids {
            let first = done.last_insert_id() as i64;
            ids.extend((0..range.len() as i64).map(|i| first + i * increment));
        }
    }
    if ctx.ids == IdMode::Lookup {
        let found = attempt_ids(conn, keys.iter().map(|(t, _)| t.as_str())).await?;
        for key in &keys {
            ids.push(*found.get(key).ok_or_else(|| {
                DbError::Domain(jobsched::Error::backend(
                    BACKEND,
                    format!("inserted attempt {}#{} is not readable", key.0, key.1),
                ))
            })?);
        }
    }
    Ok(ids)
}

/// Ids of every stored attempt of the given tasks.
async fn attempt_ids<'a>(
    conn: &mut MySqlConnection,
    tasks: impl Iterator<Item = &'a str>,
) -> Result<HashMap<(String, i32), i64>, DbError> {
    let tasks: Vec<&str> = tasks.collect();
    let mut out = HashMap::new();
    for chunk in tasks.chunks(KEYS_PER_QUERY) {
        let mut qb = QueryBuilder::<MySql>::new(
            "SELECT task_id, attempt, id FROM job_logs WHERE task_id IN (",
        );
        let mut list = qb.separated(", ");
        for t in chunk {
            list.push_bind(*t);
        }
        qb.push(")");
        let rows: Vec<(String, i32, i64)> = qb.build_query_as().fetch_all(&mut *conn).await?;
        out.extend(rows.into_iter().map(|(t, a, id)| ((t, a), id)));
    }
    Ok(out)
}

/// The `AlreadyExists` error naming the first attempt of `records` that is stored already.
async fn name_taken(ctx: &Ctx, records: &[ExecutionRecord]) -> DbError {
    let mut conn = match ctx.pool.acquire().await {
        Ok(c) => c,
        Err(e) => return e.into(),
    };
    let found = match attempt_ids(&mut conn, records.iter().map(|r| r.task_id.as_str())).await {
        Ok(f) => f,
        Err(e) => return e,
    };
    let first = records
        .iter()
        .find(|r| found.contains_key(&(r.task_id.to_string(), r.attempt as i32)))
        .unwrap_or(&records[0]);
    taken(&first.task_id, first.attempt).into()
}

/// The tasks that recorded the given fires, locked against a concurrent delete.
async fn recorded_fires(
    conn: &mut MySqlConnection,
    keys: &[(String, NaiveDateTime)],
) -> Result<HashMap<(String, NaiveDateTime), String>, DbError> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        let mut qb =
            QueryBuilder::<MySql>::new("SELECT job_id, fire_time, task_id FROM job_logs WHERE ");
        for (i, (job, at)) in chunk.iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            qb.push("(job_id = ")
                .push_bind(job.as_str())
                .push(" AND fire_time = ")
                .push_bind(*at)
                .push(")");
        }
        qb.push(" LOCK IN SHARE MODE");
        let rows: Vec<(String, NaiveDateTime, String)> =
            qb.build_query_as().fetch_all(&mut *conn).await?;
        out.extend(rows.into_iter().map(|(j, t, task)| ((j, t), task)));
    }
    Ok(out)
}

pub(crate) async fn insert(
    ctx: &Ctx,
    records: &[ExecutionRecord],
    fence: Option<&Fence>,
) -> Result<Vec<InsertOutcome>, DbError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    check_distinct_attempts(records.iter().map(|r| (&r.task_id, r.attempt)))?;
    // Fast path: a fire recorded twice is rare (another scheduler, or a takeover), so insert everything
    // and let the unique key `uk_fire` tell.
    let mut tx = ctx.pool.begin().await?;
    writes::check_fence::<MySql>(&mut tx, &MYSQL, fence).await?;
    match insert_rows(ctx, &mut tx, rows_of(ctx, records)).await {
        Ok(ids) => {
            tx.commit().await?;
            return Ok(ids
                .into_iter()
                .map(|id| InsertOutcome::Inserted { id })
                .collect());
        }
        Err(e) if is_duplicate_on(&e, "uk_fire") => tx.rollback().await?,
        Err(e) if is_duplicate_on(&e, "uk_task_attempt") => {
            drop(tx);
            return Err(name_taken(ctx, records).await);
        }
        Err(e) => return Err(e),
    }
    insert_skipping_recorded_fires(ctx, records, fence).await
}

/// The slow path: reads which fires of the batch are recorded already (with a shared lock) and inserts
/// the rest. A fire recorded concurrently in between fails the insert on `uk_fire`, and the transaction
/// runs again.
async fn insert_skipping_recorded_fires(
    ctx: &Ctx,
    records: &[ExecutionRecord],
    fence: Option<&Fence>,
) -> Result<Vec<InsertOutcome>, DbError> {
    let mut tx = ctx.pool.begin().await?;
    writes::check_fence::<MySql>(&mut tx, &MYSQL, fence).await?;
    let keys: Vec<(String, NaiveDateTime)> = records
        .iter()
        .filter_map(|r| r.fire_key())
        .map(|(j, at)| (j.to_string(), naive(at)))
        .collect();
    let mut fired = recorded_fires(&mut tx, &keys).await?;
    let mut outcomes: Vec<Option<InsertOutcome>> = vec![None; records.len()];
    let mut pending = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if let Some((job, at)) = r.fire_key() {
            let key = (job.to_string(), naive(at));
            if let Some(task) = fired.get(&key) {
                outcomes[i] = Some(InsertOutcome::AlreadyFired {
                    task_id: TaskId::from_trusted(task.clone()),
                });
                continue;
            }
            // A fire repeated within the batch: its first record wins.
            fired.insert(key, r.task_id.to_string());
        }
        pending.push(i);
    }
    let to_insert: Vec<ExecutionRecord> = pending.iter().map(|&i| records[i].clone()).collect();
    let ids = match insert_rows(ctx, &mut tx, rows_of(ctx, &to_insert)).await {
        Ok(ids) => ids,
        Err(e) if is_duplicate_on(&e, "uk_fire") => return Err(DbError::FireRace),
        Err(e) if is_duplicate_on(&e, "uk_task_attempt") => {
            drop(tx);
            return Err(name_taken(ctx, records).await);
        }
        Err(e) => return Err(e),
    };
    tx.commit().await?;
    for (&i, id) in pending.iter().zip(ids) {
        outcomes[i] = Some(InsertOutcome::Inserted { id });
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every record decided"))
        .collect())
}

/// Writes the final state of changed rows: whole rows through `ON DUPLICATE KEY UPDATE` on the primary
/// key, one statement per chunk, setting only the columns a state change may set.
async fn write_changed(
    ctx: &Ctx,
    conn: &mut MySqlConnection,
    changed: &[ExecutionRecord],
) -> Result<(), DbError> {
    let rows: Vec<ExecRow> = changed.iter().map(ExecRow::from_record).collect();
    let ranges = jobsched_sql::chunks(
        &rows,
        ctx.limits.max_batch_rows,
        ctx.limits.max_statement_bytes,
        ExecRow::approx_bytes,
    );
    let update = assignments(EXEC_MUTABLE_COLUMNS, false);
    let mut rows = rows.into_iter();
    for range in ranges {
        let mut qb = QueryBuilder::<MySql>::new(format!(
            "INSERT INTO job_logs (id, {EXEC_INSERT_COLUMNS}) "
        ));
        qb.push_values(rows.by_ref().take(range.len()), |mut v, r| {
            v.push_bind(r.id);
            push_exec_values(&mut v, r)
        });
        qb.push(format!(" ON DUPLICATE KEY UPDATE {update}"));
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn update(
    ctx: &Ctx,
    updates: &[ExecutionUpdate],
    fence: Option<&Fence>,
) -> Result<Vec<UpdateOutcome>, DbError> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = ctx.pool.begin().await?;
    writes::check_fence::<MySql>(&mut tx, &MYSQL, fence).await?;
    let mut tasks: Vec<&str> = updates.iter().map(|u| u.task_id.as_str()).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let stored =
        reads::attempts_of_tasks::<MySql>(&mut tx, BACKEND, &tasks, MYSQL.for_update).await?;
    let mut plan = plan_updates(updates, stored, ctx.limits.max_output_bytes)?;
    if !plan.changed.is_empty() {
        write_changed(ctx, &mut tx, &plan.changed).await?;
    }
    if !plan.inserts.is_empty() {
        let rows = plan.inserts.iter().map(ExecRow::from_record).collect();
        let ids = insert_rows(ctx, &mut tx, rows).await?;
        plan.set_next_ids(&ids);
    }
    tx.commit().await?;
    Ok(plan.outcomes)
}
