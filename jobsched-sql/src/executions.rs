//! Writes to `job_logs`: recording fires and attempts (`insert_executions`) and conditional state changes
//! (`update_executions`), each batch in one transaction with multi-row statements, and the purge.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use jobsched::storage::{ExecutionUpdate, Fence, InsertOutcome, UpdateOutcome};
use jobsched::{ExecutionRecord, TaskId};
use sqlx::QueryBuilder;

use crate::binds::{EXEC_INSERT_COLUMNS, EXEC_MUTABLE_COLUMNS, push_exec_values};
use crate::error::DbError;
use crate::filters::terminal_status_list;
use crate::plan::{cap_record, check_distinct_attempts, plan_updates, taken};
use crate::rows::{ExecRow, naive};

/// Most keys in one `IN (…)` or `OR` list.
const KEYS_PER_QUERY: usize = 500;

fn rows_of(max_output_bytes: usize, records: &[ExecutionRecord]) -> Vec<ExecRow> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            cap_record(&mut r, max_output_bytes);
            ExecRow::from_record(&r)
        })
        .collect()
}

sql_methods! {
    /// Inserts rows with multi-row `INSERT`s (chunked by rows and bytes); returns their ids in order.
    pub(crate) async fn insert_rows(
        &self,
        conn: &mut DB::Connection,
        rows: Vec<ExecRow>,
    ) -> Result<Vec<i64>, DbError> {
        let ranges = crate::chunks(
            &rows,
            self.limits.max_batch_rows,
            self.limits.max_statement_bytes,
            ExecRow::approx_bytes,
        );
        let keys: Vec<(String, i32)> = rows
            .iter()
            .map(|r| (r.task_id.clone(), r.attempt))
            .collect();
        let mut ids = Vec::with_capacity(rows.len());
        let mut consecutive = true;
        let mut rows = rows.into_iter();
        for range in ranges {
            let mut qb =
                QueryBuilder::<DB>::new(format!("INSERT INTO job_logs ({EXEC_INSERT_COLUMNS}) "));
            qb.push_values(rows.by_ref().take(range.len()), |mut v, r| {
                push_exec_values(&mut v, r)
            });
            let done = qb.build().execute(&mut *conn).await?;
            match (self.inserted_ids)(&done, range.len()) {
                Some(chunk_ids) if consecutive => ids.extend(chunk_ids),
                _ => consecutive = false,
            }
        }
        if !consecutive {
            let tasks: Vec<&str> = keys.iter().map(|(t, _)| t.as_str()).collect();
            let found = self.attempt_ids(conn, &tasks).await?;
            ids.clear();
            for key in &keys {
                ids.push(*found.get(key).ok_or_else(|| {
                    DbError::Domain(jobsched::Error::backend(
                        self.dialect.backend,
                        format!("inserted attempt {}#{} is not readable", key.0, key.1),
                    ))
                })?);
            }
        }
        Ok(ids)
    }

    /// Ids of every stored attempt of the given tasks.
    pub(crate) async fn attempt_ids(
        &self,
        conn: &mut DB::Connection,
        tasks: &[&str],
    ) -> Result<HashMap<(String, i32), i64>, DbError> {
        let mut out = HashMap::new();
        for chunk in tasks.chunks(KEYS_PER_QUERY) {
            let mut qb = QueryBuilder::<DB>::new(
                "SELECT task_id, attempt, id FROM job_logs WHERE task_id IN (",
            );
            let mut list = qb.separated(", ");
            for t in chunk {
                list.push_bind((*t).to_owned());
            }
            qb.push(")");
            let rows: Vec<(String, i32, i64)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            out.extend(rows.into_iter().map(|(t, a, id)| ((t, a), id)));
        }
        Ok(out)
    }

    /// The `AlreadyExists` error naming the first attempt of `records` that is stored already.
    pub(crate) async fn name_taken(&self, records: &[ExecutionRecord]) -> DbError {
        let mut conn = match self.read.acquire().await {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        let tasks: Vec<&str> = records.iter().map(|r| r.task_id.as_str()).collect();
        let found = match self.attempt_ids(&mut conn, &tasks).await {
            Ok(f) => f,
            Err(e) => return e,
        };
        let first = records
            .iter()
            .find(|r| found.contains_key(&(r.task_id.to_string(), r.attempt as i32)))
            .unwrap_or(&records[0]);
        taken(&first.task_id, first.attempt).into()
    }

    /// The tasks that recorded the given fires (read with the dialect's shared lock).
    pub(crate) async fn recorded_fires(
        &self,
        conn: &mut DB::Connection,
        keys: &[(String, NaiveDateTime)],
    ) -> Result<HashMap<(String, NaiveDateTime), String>, DbError> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let mut qb =
                QueryBuilder::<DB>::new("SELECT job_id, fire_time, task_id FROM job_logs WHERE ");
            for (i, (job, at)) in chunk.iter().enumerate() {
                if i > 0 {
                    qb.push(" OR ");
                }
                qb.push("(job_id = ")
                    .push_bind(job.clone())
                    .push(" AND fire_time = ")
                    .push_bind(*at)
                    .push(")");
            }
            qb.push(self.dialect.for_share);
            let rows: Vec<(String, NaiveDateTime, String)> =
                qb.build_query_as().fetch_all(&mut *conn).await?;
            out.extend(rows.into_iter().map(|(j, t, task)| ((j, t), task)));
        }
        Ok(out)
    }

    /// See [`Storage::insert_executions`](jobsched::storage::Storage::insert_executions).
    pub(crate) async fn insert_executions(
        &self,
        records: &[ExecutionRecord],
        fence: Option<&Fence>,
    ) -> Result<Vec<InsertOutcome>, DbError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        check_distinct_attempts(records.iter().map(|r| (&r.task_id, r.attempt)))?;
        // Fast path: a fire recorded twice is rare (another scheduler, or a takeover), so insert everything
        // and let the unique key on (job_id, fire_time) tell. Unfenced rows that fit one statement need no
        // transaction: a single INSERT is atomic.
        let rows = rows_of(self.limits.max_output_bytes, records);
        let one_statement = fence.is_none()
            && crate::chunks(
                &rows,
                self.limits.max_batch_rows,
                self.limits.max_statement_bytes,
                ExecRow::approx_bytes,
            )
            .len()
                == 1;
        let outcome = if one_statement {
            let mut conn = self.write.acquire().await?;
            self.insert_rows(&mut conn, rows).await
        } else {
            let mut tx = self.begin().await?;
            self.check_fence(&mut tx, fence).await?;
            let ids = self.insert_rows(&mut tx, rows).await;
            if ids.is_ok() {
                tx.commit().await?;
            }
            ids
        };
        match outcome {
            Ok(ids) => {
                return Ok(ids
                    .into_iter()
                    .map(|id| InsertOutcome::Inserted { id })
                    .collect());
            }
            Err(e) if self.is_duplicate_on(&e, self.dialect.fire_key_marker) => {}
            Err(e) if self.is_duplicate_on(&e, self.dialect.attempt_key_marker) => {
                return Err(self.name_taken(records).await);
            }
            Err(e) => return Err(e),
        }
        self.insert_skipping_recorded_fires(records, fence).await
    }

    /// The slow path: reads which fires of the batch are recorded already (with a shared lock) and inserts
    /// the rest. A fire recorded concurrently in between fails the insert on the fire key, and the
    /// transaction runs again.
    pub(crate) async fn insert_skipping_recorded_fires(
        &self,
        records: &[ExecutionRecord],
        fence: Option<&Fence>,
    ) -> Result<Vec<InsertOutcome>, DbError> {
        let mut tx = self.begin().await?;
        self.check_fence(&mut tx, fence).await?;
        let keys: Vec<(String, NaiveDateTime)> = records
            .iter()
            .filter_map(|r| r.fire_key())
            .map(|(j, at)| (j.to_string(), naive(at)))
            .collect();
        let mut fired = self.recorded_fires(&mut tx, &keys).await?;
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
        let rows = rows_of(self.limits.max_output_bytes, &to_insert);
        let ids = match self.insert_rows(&mut tx, rows).await {
            Ok(ids) => ids,
            Err(e) if self.is_duplicate_on(&e, self.dialect.fire_key_marker) => {
                return Err(DbError::FireRace);
            }
            Err(e) if self.is_duplicate_on(&e, self.dialect.attempt_key_marker) => {
                drop(tx);
                return Err(self.name_taken(records).await);
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

    /// Writes the final state of changed rows: whole rows upserted on the primary key, one statement per
    /// chunk, setting only the columns a state change may set.
    pub(crate) async fn write_changed(
        &self,
        conn: &mut DB::Connection,
        changed: &[ExecutionRecord],
    ) -> Result<(), DbError> {
        let rows: Vec<ExecRow> = changed.iter().map(ExecRow::from_record).collect();
        let ranges = crate::chunks(
            &rows,
            self.limits.max_batch_rows,
            self.limits.max_statement_bytes,
            ExecRow::approx_bytes,
        );
        let upsert = self.dialect.upsert("id", EXEC_MUTABLE_COLUMNS);
        let mut rows = rows.into_iter();
        for range in ranges {
            let mut qb = QueryBuilder::<DB>::new(format!(
                "INSERT INTO job_logs (id, {EXEC_INSERT_COLUMNS}) "
            ));
            qb.push_values(rows.by_ref().take(range.len()), |mut v, r| {
                v.push_bind(r.id);
                push_exec_values(&mut v, r)
            });
            qb.push(&upsert);
            qb.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// See [`Storage::update_executions`](jobsched::storage::Storage::update_executions): the stored
    /// attempts of the batch's tasks are read (and locked) in the transaction, the batch is decided on them
    /// by [`plan_updates`], and the changed rows and new attempts are written.
    pub(crate) async fn update_executions(
        &self,
        updates: &[ExecutionUpdate],
        fence: Option<&Fence>,
    ) -> Result<Vec<UpdateOutcome>, DbError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        self.check_fence(&mut tx, fence).await?;
        let mut tasks: Vec<&str> = updates.iter().map(|u| u.task_id.as_str()).collect();
        tasks.sort_unstable();
        tasks.dedup();
        let stored = self.attempts_of_tasks(&mut tx, &tasks).await?;
        let mut plan = plan_updates(updates, stored, self.limits.max_output_bytes)?;
        if !plan.changed.is_empty() {
            self.write_changed(&mut tx, &plan.changed).await?;
        }
        if !plan.inserts.is_empty() {
            let rows = plan.inserts.iter().map(ExecRow::from_record).collect();
            let ids = self.insert_rows(&mut tx, rows).await?;
            plan.set_next_ids(&ids);
        }
        tx.commit().await?;
        Ok(plan.outcomes)
    }

    /// See [`Storage::purge_executions`](jobsched::storage::Storage::purge_executions): the victims
    /// are chosen by a plain read, then deleted by primary key, so the deletion locks those rows only —
    /// a locking range scan of the end-time index would also lock the gap where new, unended records
    /// go (their `end_time` is NULL) and deadlock with the inserts of fires. `+status` keeps SQLite's
    /// planner off the status index (which made it read and sort every ended row on each batch: 177 ms
    /// per 1,000 rows on a million); the `(end_time, status)` index then yields the oldest in order.
    pub(crate) async fn purge_executions(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, DbError> {
        let mut qb = QueryBuilder::<DB>::new(format!(
            "SELECT id FROM job_logs WHERE +status IN ({}) AND end_time < ",
            terminal_status_list()
        ));
        qb.push_bind(naive(before));
        qb.push(
            " AND job_id NOT IN (SELECT job_id FROM jobs WHERE retention_days > 0) \
             ORDER BY end_time LIMIT ",
        );
        qb.push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let mut conn = self.read.acquire().await?;
        let ids: Vec<(i64,)> = qb.build_query_as().fetch_all(&mut *conn).await?;
        drop(conn);
        self.delete_ended(ids.into_iter().map(|r| r.0).collect()).await
    }

    /// See [`Storage::purge_job_executions`](jobsched::storage::Storage::purge_job_executions): the
    /// records past the job's newest `keep` (a seek of the job's id index, newest first), then those
    /// that ended before `before`, at most `limit` in all, chosen by plain reads and deleted by primary
    /// key (as [`purge_executions`](Self::purge_executions)).
    pub(crate) async fn purge_job_executions(
        &self,
        job: &jobsched::JobId,
        before: Option<DateTime<Utc>>,
        keep: u32,
        limit: usize,
    ) -> Result<u64, DbError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut ids: Vec<i64> = Vec::new();
        let mut conn = self.read.acquire().await?;
        if keep > 0 {
            let mut qb = QueryBuilder::<DB>::new("SELECT id FROM job_logs WHERE job_id = ");
            qb.push_bind(job.as_str().to_owned());
            qb.push(format!(
                " AND status IN ({}) ORDER BY id DESC LIMIT ",
                terminal_status_list()
            ));
            qb.push_bind(limit);
            qb.push(" OFFSET ");
            qb.push_bind(i64::from(keep));
            let rows: Vec<(i64,)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            ids.extend(rows.into_iter().map(|r| r.0));
        }
        let left = limit - ids.len() as i64;
        if let Some(before) = before
            && left > 0
        {
            let mut qb = QueryBuilder::<DB>::new("SELECT id FROM job_logs WHERE job_id = ");
            qb.push_bind(job.as_str().to_owned());
            qb.push(format!(
                " AND status IN ({}) AND end_time < ",
                terminal_status_list()
            ));
            qb.push_bind(naive(before));
            qb.push(" ORDER BY id LIMIT ");
            // Some of these may be among those chosen above: ask for enough to fill the batch anyway.
            qb.push_bind(limit);
            let rows: Vec<(i64,)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            let chosen: std::collections::HashSet<i64> = ids.iter().copied().collect();
            ids.extend(
                rows.into_iter()
                    .map(|r| r.0)
                    .filter(|id| !chosen.contains(id))
                    .take(usize::try_from(left).unwrap_or(usize::MAX)),
            );
        }
        drop(conn);
        self.delete_ended(ids).await
    }

    /// Deletes the ended records among `ids` (one statement, by primary key); returns how many.
    async fn delete_ended(&self, ids: Vec<i64>) -> Result<u64, DbError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut total = 0;
        for chunk in ids.chunks(KEYS_PER_QUERY) {
            let mut qb = QueryBuilder::<DB>::new(format!(
                "DELETE FROM job_logs WHERE status IN ({}) AND id IN (",
                terminal_status_list()
            ));
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            qb.push(")");
            let mut conn = self.write.acquire().await?;
            let done = qb.build().execute(&mut *conn).await?;
            total += (self.rows_affected)(&done);
        }
        Ok(total)
    }
}
