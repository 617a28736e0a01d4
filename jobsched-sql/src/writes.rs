//! The writes both stores run with the same statements (up to their [`Dialect`](crate::Dialect)), inside a transaction
//! the store opened: jobs and their change feed, executors and settings (fencing tokens: [`crate::fence`]).
//!
//! Job writes first take their revisions from `jobsched_counters` (a row lock held until commit), so job
//! writes are serialised and their revisions become visible in order — what
//! [`Storage::job_changes`](jobsched::storage::Storage::job_changes) promises. A deleted job stays as a
//! tombstone row (`deleted = 1`) so the feed can report the deletion; creating the id again replaces it.

use std::collections::{HashMap, HashSet};

use jobsched::storage::JobWrite;
use jobsched::{AuditEntry, Error, ExecutorHeartbeat, ExecutorId, ExecutorRecord, Job, JobId};
use sqlx::{AssertSqlSafe, QueryBuilder};

use crate::binds::{EXECUTOR_UPSERT_COLUMNS, column_names, push_executor_values, push_job_values};
use crate::error::DbError;
use crate::rows::{ExecutorRow, JOB_COLUMNS, JobRow, naive};

/// Fails with `Conflict` unless `stored` is the `expected` version (if one is given).
fn check_version(
    id: &JobId,
    stored: u64,
    expected: Option<u64>,
    verb: &str,
) -> Result<(), DbError> {
    match expected {
        Some(v) if v != stored => Err(Error::conflict(format!(
            "job '{id}' is at version {stored}, the {verb} was made against version {v}"
        ))
        .into()),
        _ => Ok(()),
    }
}

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

    /// Applies a batch of job writes (see
    /// [`Storage::write_jobs`](jobsched::storage::Storage::write_jobs)) and its audit entries: every id is
    /// checked against the live versions, read under the revision lock, before anything is written.
    pub(crate) async fn write_jobs(
        &self,
        conn: &mut DB::Connection,
        writes: &[JobWrite<'_>],
        audit: &[AuditEntry],
    ) -> Result<Vec<Job>, DbError> {
        let mut seen = HashSet::new();
        for w in writes {
            if !seen.insert(w.job_id()) {
                return Err(match w {
                    JobWrite::Create(j) => already_exists(&j.job_id),
                    _ => Error::invalid(
                        "jobs",
                        format!("job '{}' appears more than once in one batch", w.job_id()),
                    )
                    .into(),
                });
            }
        }
        let first = if writes.is_empty() {
            0
        } else {
            self.take_revisions(conn, writes.len()).await?
        };
        let ids: Vec<&JobId> = writes.iter().map(JobWrite::job_id).collect();
        let live: HashMap<String, i64> = self.live_versions(conn, &ids).await?.into_iter().collect();
        let mut stored = Vec::new();
        let mut rows = Vec::new();
        let mut deleted = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            let revision = first + i as i64;
            let id = w.job_id();
            let current = live.get(id.as_str()).map(|v| *v as u64);
            match (w, current) {
                (JobWrite::Create(_), Some(_)) => return Err(already_exists(id)),
                (JobWrite::Create(_), None) => {}
                (_, None) => return Err(Error::not_found("job", id.as_str()).into()),
                (JobWrite::Update(j), Some(v)) => check_version(id, v, Some(j.version), "update")?,
                (JobWrite::Delete { expected_version, .. }, Some(v)) => {
                    check_version(id, v, *expected_version, "delete")?;
                }
            }
            match w {
                JobWrite::Create(j) | JobWrite::Update(j) => {
                    let mut job = (*j).clone();
                    job.version = current.map_or(1, |v| v + 1);
                    let mut row = JobRow::from_job(&job);
                    row.revision = revision;
                    rows.push(row);
                    stored.push(job);
                }
                JobWrite::Delete { job_id, .. } => deleted.push((job_id.to_string(), revision)),
            }
        }
        self.write_job_rows(conn, rows).await?;
        for (id, revision) in deleted {
            sqlx::query("UPDATE jobs SET deleted = 1, revision = ? WHERE job_id = ?")
                .bind(revision)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        self.insert_audit(conn, audit).await?;
        Ok(stored)
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
