//! The reads both stores run with the same SQL (every placeholder is `?` in MySQL and SQLite), generic
//! over the database: one job, job pages and the change feed; one attempt, a task's attempts, history
//! pages and active attempts; executors; settings.

use std::sync::Arc;

use jobsched::storage::{JobChange, Versioned};
use jobsched::{
    Error, ExecutionQuery, ExecutionRecord, ExecutorId, ExecutorRecord, Job, JobId, JobQuery, Page,
    TaskId,
};
use sqlx::{AssertSqlSafe, Executor, QueryBuilder};

use crate::error::DbError;
use crate::filters::{
    active_status_list, push_exec_where, push_job_order, push_job_where, push_page,
};
use crate::rows::{EXEC_COLUMNS, EXECUTOR_COLUMNS, ExecRow, ExecutorRow, JobRow};

pub(crate) fn page_of<T>(items: Vec<T>, total: i64, req: jobsched::PageRequest) -> Page<T> {
    Page::counted(items, total.max(0) as u64, req)
}

/// A count of `table`'s rows that `filter` keeps, stopping one past [`jobsched::COUNT_CAP`]: a huge
/// history is never counted whole (the page says its total is capped).
pub(crate) fn capped_count<DB: sqlx::Database>(
    table: &str,
    filter: impl FnOnce(&mut QueryBuilder<DB>),
) -> QueryBuilder<DB> {
    let mut qb = QueryBuilder::<DB>::new(format!("SELECT COUNT(*) FROM (SELECT 1 FROM {table}"));
    filter(&mut qb);
    qb.push(format!(" LIMIT {}) AS counted", jobsched::COUNT_CAP + 1));
    qb
}

fn records(backend: &'static str, rows: Vec<ExecRow>) -> Result<Vec<ExecutionRecord>, DbError> {
    rows.into_iter()
        .map(|r| r.into_record(backend).map_err(DbError::from))
        .collect()
}

sql_methods! {
    /// One live job; `NotFound` if absent or deleted.
    pub(crate) async fn get_job<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        id: &JobId,
    ) -> Result<Job, DbError> {
        let row: Option<JobRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {} FROM jobs WHERE job_id = ? AND deleted = 0",
            self.dialect.job_select
        )))
        .bind(id.to_string())
        .fetch_optional(e)
        .await?;
        match row {
            Some(r) => Ok(r.into_job(self.dialect.backend)?),
            None => Err(Error::not_found("job", id.as_str()).into()),
        }
    }

    /// The live jobs among `ids` (in chunks of 500 ids per statement).
    pub(crate) async fn get_jobs<'e, E: Executor<'e, Database = DB> + Copy>(
        &self,
        e: E,
        ids: &[JobId],
    ) -> Result<Vec<Job>, DbError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut qb = QueryBuilder::<DB>::new(format!(
                "SELECT {} FROM jobs WHERE deleted = 0 AND job_id IN (",
                self.dialect.job_select
            ));
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            qb.push(")");
            let rows: Vec<JobRow> = qb.build_query_as().fetch_all(e).await?;
            for r in rows {
                out.push(r.into_job(self.dialect.backend)?);
            }
        }
        Ok(out)
    }

    /// A page of live jobs by `job_id`, with the total.
    pub(crate) async fn list_jobs<'e, E: Executor<'e, Database = DB> + Copy>(
        &self,
        e: E,
        q: &JobQuery,
    ) -> Result<Page<Job>, DbError> {
        let mut count = capped_count("jobs", |qb| push_job_where(qb, q));
        let (total,): (i64,) = count.build_query_as().fetch_one(e).await?;
        let mut qb = QueryBuilder::<DB>::new(format!("SELECT {} FROM jobs", self.dialect.job_select));
        push_job_where(&mut qb, q);
        push_job_order(&mut qb, q);
        push_page(&mut qb, q.page);
        let rows: Vec<JobRow> = qb.build_query_as().fetch_all(e).await?;
        let items = rows
            .into_iter()
            .map(|r| r.into_job(self.dialect.backend))
            .collect::<jobsched::Result<Vec<_>>>()?;
        Ok(page_of(items, total, q.page))
    }

    /// Job changes after revision `after`, oldest first (tombstones as `job: None`).
    pub(crate) async fn job_changes<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        after: u64,
        limit: usize,
    ) -> Result<Vec<JobChange>, DbError> {
        let rows: Vec<JobRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {} FROM jobs WHERE revision > ? ORDER BY revision LIMIT ?",
            self.dialect.job_select
        )))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(e)
        .await?;
        rows.into_iter()
            .map(|r| {
                let revision = r.revision.max(0) as u64;
                let job_id = JobId::from_trusted(r.job_id.clone());
                let job = if r.deleted {
                    None
                } else {
                    Some(Arc::new(r.into_job(self.dialect.backend)?))
                };
                Ok(JobChange {
                    revision,
                    job_id,
                    job,
                })
            })
            .collect()
    }

    /// One attempt; `NotFound` if absent.
    pub(crate) async fn get_execution<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        task: &TaskId,
        attempt: u32,
    ) -> Result<ExecutionRecord, DbError> {
        let row: Option<ExecRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {EXEC_COLUMNS} FROM job_logs WHERE task_id = ? AND attempt = ?"
        )))
        .bind(task.to_string())
        .bind(i64::from(attempt))
        .fetch_optional(e)
        .await?;
        match row {
            Some(r) => Ok(r.into_record(self.dialect.backend)?),
            None => Err(Error::not_found("task attempt", format!("{task}#{attempt}")).into()),
        }
    }

    /// Every attempt of a task, oldest first; `NotFound` if none.
    pub(crate) async fn task_attempts<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        task: &TaskId,
    ) -> Result<Vec<ExecutionRecord>, DbError> {
        let rows: Vec<ExecRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {EXEC_COLUMNS} FROM job_logs WHERE task_id = ? ORDER BY attempt"
        )))
        .bind(task.to_string())
        .fetch_all(e)
        .await?;
        if rows.is_empty() {
            return Err(Error::not_found("task", task.as_str()).into());
        }
        records(self.dialect.backend, rows)
    }

    /// A page of history, newest first, with the total.
    pub(crate) async fn list_executions<'e, E: Executor<'e, Database = DB> + Copy>(
        &self,
        e: E,
        q: &ExecutionQuery,
    ) -> Result<Page<ExecutionRecord>, DbError> {
        let mut count = capped_count("job_logs", |qb| push_exec_where(qb, q));
        let (total,): (i64,) = count.build_query_as().fetch_one(e).await?;
        let mut qb = QueryBuilder::<DB>::new(format!("SELECT {EXEC_COLUMNS} FROM job_logs"));
        push_exec_where(&mut qb, q);
        qb.push(" ORDER BY id DESC");
        push_page(&mut qb, q.page);
        let rows: Vec<ExecRow> = qb.build_query_as().fetch_all(e).await?;
        Ok(page_of(records(self.dialect.backend, rows)?, total, q.page))
    }

    /// The newest record of each of `jobs` (an index lookup per job: `(job_id, id)`).
    pub(crate) async fn latest_executions<'e, E: Executor<'e, Database = DB> + Copy>(
        &self,
        e: E,
        jobs: &[JobId],
    ) -> Result<Vec<ExecutionRecord>, DbError> {
        let mut out = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(500) {
            let mut qb = QueryBuilder::<DB>::new(format!(
                "SELECT {EXEC_COLUMNS} FROM job_logs WHERE id IN (SELECT MAX(id) FROM job_logs WHERE job_id IN ("
            ));
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            qb.push(") GROUP BY job_id)");
            let rows: Vec<ExecRow> = qb.build_query_as().fetch_all(e).await?;
            out.extend(records(self.dialect.backend, rows)?);
        }
        Ok(out)
    }

    /// Attempts that ended in `[from, to)`, counted by status and UTC hour (both stores write times as
    /// `YYYY-MM-DD HH:MM:SS…`, so the hour is the first 13 characters).
    pub(crate) async fn outcome_hours<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<jobsched::OutcomeHour>, DbError> {
        let rows: Vec<(String, i8, i64)> = sqlx::query_as(
            "SELECT SUBSTR(end_time, 1, 13) AS hour, status, COUNT(*) FROM job_logs \
             WHERE end_time >= ? AND end_time < ? GROUP BY SUBSTR(end_time, 1, 13), status \
             ORDER BY hour, status",
        )
        .bind(crate::rows::naive(from))
        .bind(crate::rows::naive(to))
        .fetch_all(e)
        .await?;
        rows.into_iter()
            .map(|(hour, status, count)| {
                let at = chrono::NaiveDateTime::parse_from_str(&format!("{hour}:00:00"), "%Y-%m-%d %H:%M:%S")
                    .map_err(|err| {
                        jobsched::Error::backend(
                            self.dialect.backend,
                            format!("stored end_time '{hour}' does not start with an hour: {err}"),
                        )
                    })?;
                let status = crate::rows::parse(
                    self.dialect.backend,
                    "status",
                    jobsched::TaskStatus::from_code(status as u8),
                )?;
                Ok(jobsched::OutcomeHour {
                    hour: crate::rows::utc(at),
                    status,
                    count: count.max(0) as u64,
                })
            })
            .collect::<jobsched::Result<Vec<_>>>()
            .map_err(DbError::from)
    }

    /// Active attempts with `id > after_id`, by id.
    pub(crate) async fn active_executions<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, DbError> {
        let rows: Vec<ExecRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {EXEC_COLUMNS} FROM job_logs WHERE status IN ({}) AND id > ? ORDER BY id LIMIT ?",
            active_status_list()
        )))
        .bind(after_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(e)
        .await?;
        records(self.dialect.backend, rows)
    }

    /// One executor; `NotFound` if absent.
    pub(crate) async fn get_executor<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        id: &ExecutorId,
    ) -> Result<ExecutorRecord, DbError> {
        let row: Option<ExecutorRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {EXECUTOR_COLUMNS} FROM executors WHERE executor_id = ?"
        )))
        .bind(id.to_string())
        .fetch_optional(e)
        .await?;
        match row {
            Some(r) => Ok(r.into_record(self.dialect.backend)?),
            None => Err(Error::not_found("executor", id.as_str()).into()),
        }
    }

    /// Every executor, by id.
    pub(crate) async fn list_executors<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
    ) -> Result<Vec<ExecutorRecord>, DbError> {
        let rows: Vec<ExecutorRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {EXECUTOR_COLUMNS} FROM executors ORDER BY executor_id"
        )))
        .fetch_all(e)
        .await?;
        rows.into_iter()
            .map(|r| r.into_record(self.dialect.backend).map_err(DbError::from))
            .collect()
    }

    /// A setting with its version.
    pub(crate) async fn get_value<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        key: &str,
    ) -> Result<Option<Versioned<String>>, DbError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT value, version FROM jobsched_settings WHERE name = ?")
                .bind(key.to_owned())
                .fetch_optional(e)
                .await?;
        Ok(row.map(|(value, version)| Versioned {
            value,
            version: version.max(0) as u64,
        }))
    }

    /// Every stored attempt of the given tasks, read inside the caller's transaction with `lock` appended
    /// (the dialect's `for_update`), in chunks of 500 tasks.
    pub(crate) async fn attempts_of_tasks(
        &self,
        conn: &mut DB::Connection,
        tasks: &[&str],
    ) -> Result<Vec<ExecutionRecord>, DbError> {
        let mut out = Vec::new();
        for chunk in tasks.chunks(500) {
            let mut qb = QueryBuilder::<DB>::new(format!(
                "SELECT {EXEC_COLUMNS} FROM job_logs WHERE task_id IN ("
            ));
            let mut list = qb.separated(", ");
            for t in chunk {
                list.push_bind((*t).to_owned());
            }
            qb.push(")").push(self.dialect.for_update);
            let rows: Vec<ExecRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
            out.extend(records(self.dialect.backend, rows)?);
        }
        Ok(out)
    }
}
