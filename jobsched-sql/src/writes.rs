//! The writes both stores run with the same statements (up to their [`Dialect`]), inside a transaction
//! the store opened: jobs and their change feed, executors and settings (fencing tokens: [`crate::fence`]).
//!
//! Job writes first take their revisions from `jobsched_counters` (a row lock held until commit), so job
//! writes are serialised and their revisions become visible in order — what
//! [`Storage::job_changes`](jobsched::storage::Storage::job_changes) promises. A deleted job stays as a
//! tombstone row (`deleted = 1`) so the feed can report the deletion; creating the id again replaces it.

use std::collections::HashSet;

use jobsched::{Error, ExecutorHeartbeat, ExecutorId, ExecutorRecord, Job, JobId};
use sqlx::{AssertSqlSafe, QueryBuilder};

use crate::binds::{EXECUTOR_UPSERT_COLUMNS, column_names, push_executor_values, push_job_values};
use crate::error::DbError;
use crate::rows::{ExecutorRow, JOB_COLUMNS, JobRow, naive};

fn already_exists(id: &JobId) -> DbError {
    Error::AlreadyExists {
        kind: "job",
        id: id.to_string(),
    }
    .into()
}

sql_methods! {
    /// Takes `n` job revisions (&self, locking the counter until commit); returns the first.
    pub(crate) async fn take_revisions(
        &self,
        conn: &mut DB::Connection,
        n: usize,
    ) -> Result<i64, DbError> {
        let n = n as i64;
        sqlx::query("UPDATE jobsched_counters SET value = value + ? WHERE name = 'job_revision'")
            .bind(n)
            .execute(&mut *conn)
            .await?;
        let (last,): (i64,) =
            sqlx::query_as("SELECT value FROM jobsched_counters WHERE name = 'job_revision'")
                .fetch_one(&mut *conn)
                .await?;
        Ok(last - n + 1)
    }

    /// Writes whole job rows: inserts new ids, replaces existing rows (tombstones, or the row of an update
    /// whose version was checked under the revision lock).
    pub(crate) async fn write_job_rows(
        &self,
        conn: &mut DB::Connection,
        rows: Vec<JobRow>,
    ) -> Result<(), DbError> {
        let ranges = crate::chunks(
            &rows,
            self.limits.max_batch_rows,
            self.limits.max_statement_bytes,
            |r| 512 + r.command.len() + r.params.len() + r.description.len(),
        );
        let upsert = self
            .dialect
            .upsert("job_id", column_names(JOB_COLUMNS).skip(1));
        let mut rows = rows.into_iter();
        for range in ranges {
            let mut qb = QueryBuilder::<DB>::new(format!("INSERT INTO jobs ({JOB_COLUMNS}) "));
            qb.push_values(rows.by_ref().take(range.len()), |mut v, r| {
                push_job_values(&mut v, r)
            });
            qb.push(&upsert);
            qb.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The versions of the given ids that are live (not deleted), locked.
    pub(crate) async fn live_versions(
        &self,
        conn: &mut DB::Connection,
        ids: &[&JobId],
    ) -> Result<Vec<(String, i64)>, DbError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let mut qb = QueryBuilder::<DB>::new(
                "SELECT job_id, version FROM jobs WHERE deleted = 0 AND job_id IN (",
            );
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            qb.push(")").push(self.dialect.for_update);
            out.extend(
                qb.build_query_as::<(String, i64)>()
                    .fetch_all(&mut *conn)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Stores new jobs, all or none (`AlreadyExists` naming the first taken id); each gets version 1 and the
    /// next revision. Returns them as stored.
    pub(crate) async fn create_jobs(
        &self,
        conn: &mut DB::Connection,
        jobs: &[Job],
    ) -> Result<Vec<Job>, DbError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = HashSet::new();
        if let Some(dup) = jobs.iter().find(|j| !seen.insert(&j.job_id)) {
            return Err(already_exists(&dup.job_id));
        }
        let first = self.take_revisions(conn, jobs.len()).await?;
        let ids: Vec<&JobId> = jobs.iter().map(|j| &j.job_id).collect();
        let taken: HashSet<String> = self
            .live_versions(conn, &ids)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if let Some(j) = jobs
            .iter()
            .find(|j| taken.contains(j.job_id.as_str()))
        {
            return Err(already_exists(&j.job_id));
        }
        let mut stored = Vec::with_capacity(jobs.len());
        let mut rows = Vec::with_capacity(jobs.len());
        for (i, j) in jobs.iter().enumerate() {
            let mut job = j.clone();
            job.version = 1;
            let mut row = JobRow::from_job(&job);
            row.revision = first + i as i64;
            rows.push(row);
            stored.push(job);
        }
        self.write_job_rows(conn, rows).await?;
        Ok(stored)
    }

    /// The stored version of a live job, locked; `NotFound` if absent, `Conflict` (saying `verb`) if it is
    /// not `expected`.
    pub(crate) async fn checked_version(
        &self,
        conn: &mut DB::Connection,
        id: &JobId,
        expected: Option<u64>,
        verb: &str,
    ) -> Result<u64, DbError> {
        let stored = self.live_versions(conn, &[id]).await?;
        let Some((_, version)) = stored.first() else {
            return Err(Error::not_found("job", id.as_str()).into());
        };
        let version = *version as u64;
        match expected {
            Some(v) if v != version => Err(Error::conflict(format!(
                "job '{id}' is at version {version}, the {verb} was made against version {v}"
            ))
            .into()),
            _ => Ok(version),
        }
    }

    /// Replaces a job at its stored version (`Conflict` otherwise), with version + 1 and a new revision.
    pub(crate) async fn update_job(
        &self,
        conn: &mut DB::Connection,
        job: &Job,
    ) -> Result<Job, DbError> {
        let revision = self.take_revisions(conn, 1).await?;
        let version = self
            .checked_version(conn, &job.job_id, Some(job.version), "update")
            .await?;
        let mut new = job.clone();
        new.version = version + 1;
        let mut row = JobRow::from_job(&new);
        row.revision = revision;
        self.write_job_rows(conn, vec![row]).await?;
        Ok(new)
    }

    /// Deletes a job (leaving a tombstone with a new revision), at `expected` version if given.
    pub(crate) async fn delete_job(
        &self,
        conn: &mut DB::Connection,
        id: &JobId,
        expected: Option<u64>,
    ) -> Result<(), DbError> {
        let revision = self.take_revisions(conn, 1).await?;
        self.checked_version(conn, id, expected, "delete").await?;
        sqlx::query("UPDATE jobs SET deleted = 1, revision = ? WHERE job_id = ?")
            .bind(revision)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Inserts or updates an executor, keeping a stored `enabled` (an operator's choice survives
    /// re-registration).
    pub(crate) async fn upsert_executor(
        &self,
        conn: &mut DB::Connection,
        record: &ExecutorRecord,
    ) -> Result<ExecutorRecord, DbError> {
        let n = EXECUTOR_UPSERT_COLUMNS.len();
        let mut qb = QueryBuilder::<DB>::new(format!(
            "INSERT INTO executors ({}) ",
            EXECUTOR_UPSERT_COLUMNS.join(", ")
        ));
        qb.push_values([ExecutorRow::from_record(record)], |mut v, r| {
            push_executor_values(&mut v, r)
        });
        // Every column but the key (first) and `enabled` (last).
        qb.push(self.dialect.upsert(
            "executor_id",
            EXECUTOR_UPSERT_COLUMNS[1..n - 1].iter().copied(),
        ));
        qb.build().execute(&mut *conn).await?;
        self.get_executor(&mut *conn, &record.executor_id)
            .await
    }

    /// Records liveness of executors; unknown ones are ignored.
    pub(crate) async fn record_heartbeats(
        &self,
        conn: &mut DB::Connection,
        beats: &[ExecutorHeartbeat],
    ) -> Result<(), DbError> {
        for b in beats {
            sqlx::query(
                "UPDATE executors SET status = ?, last_heartbeat_time = ?, running = ? WHERE executor_id = ?",
            )
            .bind(b.status.code() as i8)
            .bind(naive(b.at))
            .bind(b.running as i32)
            .bind(b.executor_id.to_string())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Enables or disables an executor; returns it (`NotFound` if absent).
    pub(crate) async fn set_executor_enabled(
        &self,
        conn: &mut DB::Connection,
        id: &ExecutorId,
        enabled: bool,
    ) -> Result<ExecutorRecord, DbError> {
        sqlx::query("UPDATE executors SET enabled = ? WHERE executor_id = ?")
            .bind(enabled)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
        self.get_executor(&mut *conn, id).await
    }

    /// Writes a setting with compare-and-set on its version (see
    /// [`Storage::put_value`](jobsched::storage::Storage::put_value)); the caller checked the fence in the
    /// same transaction.
    pub(crate) async fn put_value(
        &self,
        conn: &mut DB::Connection,
        key: &str,
        value: &str,
        expected_version: Option<u64>,
    ) -> Result<u64, DbError> {
        let current: Option<(i64,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT version FROM jobsched_settings WHERE name = ?{}",
            self.dialect.for_update
        )))
        .bind(key.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        let current = current.map_or(0, |(v,)| v.max(0) as u64);
        if let Some(expected) = expected_version {
            if expected != current {
                return Err(Error::conflict(format!(
                    "setting '{key}' is at version {current}, the write expected version {expected}"
                ))
                .into());
            }
        }
        let version = current + 1;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO jobsched_settings (name, value, version) VALUES (?, ?, ?){}",
            self.dialect.upsert("name", ["value", "version"])
        )))
        .bind(key.to_owned())
        .bind(value.to_owned())
        .bind(version as i64)
        .execute(&mut *conn)
        .await?;
        Ok(version)
    }
}
