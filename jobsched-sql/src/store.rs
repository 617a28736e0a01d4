//! [`SqlStore`]: jobsched's [`Storage`] on any database sqlx reaches with jobsched's schema — MySQL and
//! SQLite — built by the backend crates from their configuration.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jobsched::storage::{
    ExecutionUpdate, Fence, InsertOutcome, JobChange, JobWrite, UpdateOutcome, Versioned,
};
use jobsched::{
    AuditEntry, ExecutionQuery, ExecutionRecord, ExecutorHeartbeat, ExecutorId, ExecutorRecord,
    Job, JobId, JobQuery, Page, Result, TaskId,
};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Database, Pool, Transaction};

use crate::Limits;
use crate::dialect::Dialect;
use crate::error::{DbError, retrying};

/// The ids a multi-row insert of `n` rows got, from the statement's result, when the database assigns
/// them consecutively; `None` makes the store read them back by `(task_id, attempt)`.
pub type InsertedIds<DB> =
    Arc<dyn Fn(&<DB as Database>::QueryResult, usize) -> Option<Vec<i64>> + Send + Sync>;

/// What a backend crate builds a [`SqlStore`] from.
pub struct SqlStoreParts<DB: Database> {
    /// Where writes (and reads inside write transactions) go.
    pub write: Pool<DB>,
    /// Where plain reads go (the write pool again where one pool serves both).
    pub read: Pool<DB>,
    /// Statement and output limits.
    pub limits: Limits,
    /// How the database spells the statements that differ.
    pub dialect: Dialect,
    /// Ids of a multi-row insert.
    pub inserted_ids: InsertedIds<DB>,
    /// Rows a statement changed.
    pub rows_affected: fn(&DB::QueryResult) -> u64,
    /// The schema migrations.
    pub migrator: &'static Migrator,
    /// What `Debug` shows (with secrets redacted).
    pub description: String,
}

pub(crate) struct Inner<DB: Database> {
    pub write: Pool<DB>,
    pub read: Pool<DB>,
    pub limits: Limits,
    pub dialect: Dialect,
    pub inserted_ids: InsertedIds<DB>,
    pub rows_affected: fn(&DB::QueryResult) -> u64,
    migrator: &'static Migrator,
    description: String,
    metrics: std::sync::OnceLock<jobsched::metrics::Metrics>,
}

impl<DB: Database> Inner<DB> {
    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, DB>, DbError> {
        Ok(match self.dialect.begin {
            Some(statement) => self.write.begin_with(statement).await?,
            None => self.write.begin().await?,
        })
    }

    pub fn is_duplicate_on(&self, e: &DbError, marker: &str) -> bool {
        e.is_duplicate_on(self.dialect.kind_of, marker)
    }
}

/// jobsched's [`Storage`](jobsched::storage::Storage) on a SQL database with jobsched's schema: every method is one transaction;
/// batches are written with multi-row statements; a fire is recorded once through the unique key
/// `(job_id, fire_time)`; a state change is decided (by [`plan_updates`](crate::plan_updates)) on rows
/// read in the transaction under the dialect's lock; fenced writes check the scope's token in the same
/// transaction. Transactions that lose a lock race run again; a lost connection fails the call with a
/// retryable [`Error::Unavailable`](jobsched::Error::Unavailable) and the pool reconnects by itself.
///
/// Cheap to clone: the pools are shared.
pub struct SqlStore<DB: Database> {
    inner: Arc<Inner<DB>>,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            inner: self.inner.clone(),
        }
    }
}

impl<DB: Database> fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.inner.dialect.backend)
            .field("target", &self.inner.description)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl<DB: Database> SqlStore<DB> {
    /// A store from its parts (the backend crates' `connect` calls this).
    pub fn new(parts: SqlStoreParts<DB>) -> Self {
        SqlStore {
            inner: Arc::new(Inner {
                write: parts.write,
                read: parts.read,
                limits: parts.limits,
                dialect: parts.dialect,
                inserted_ids: parts.inserted_ids,
                rows_affected: parts.rows_affected,
                migrator: parts.migrator,
                description: parts.description,
                metrics: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Records every call from now on into `metrics` (`jobsched_store_call_seconds` and
    /// `jobsched_store_errors` by operation). Only the first call takes effect.
    pub fn record_into(&self, metrics: jobsched::metrics::Metrics) {
        let _ = self.inner.metrics.set(metrics);
    }

    /// The pool writes go to (for tools and tests that need plain SQL on the same database).
    pub fn pool(&self) -> &Pool<DB> {
        &self.inner.write
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.inner.write.close().await;
        self.inner.read.close().await;
    }

    fn backend_name(&self) -> &'static str {
        self.inner.dialect.backend
    }

    /// The shared state the statements run on.
    pub(crate) fn inner(&self) -> &Inner<DB> {
        &self.inner
    }

    /// Runs `run` (one attempt of a call) again while it loses lock races; converts its error.
    pub(crate) async fn retry<T, F, Fut>(&self, operation: &'static str, run: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let t0 = std::time::Instant::now();
        let r = retrying(
            self.backend_name(),
            self.inner.dialect.kind_of,
            operation,
            run,
        )
        .await;
        if let Some(m) = self.inner.metrics.get() {
            m.store_call(operation, t0.elapsed(), r.is_ok());
        }
        r
    }
}

impl<DB: Database> SqlStore<DB>
where
    DB::Connection: Migrate,
{
    /// Applies the embedded migrations that have not run yet (idempotent; what a `migrate` command does).
    pub async fn migrate(&self) -> Result<()> {
        let backend = self.backend_name();
        self.inner
            .migrator
            .run(&self.inner.write)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => {
                    DbError::from(e).into_error(backend, self.inner.dialect.kind_of)
                }
                other => jobsched::Error::backend(backend, format!("migration failed: {other}")),
            })
    }
}

sql_impl! {
    [#[async_trait::async_trait] impl<DB> jobsched::storage::Storage for SqlStore<DB>]
    fn backend(&self) -> &'static str {
        self.backend_name()
    }

    async fn ping(&self) -> Result<()> {
        self.retry("ping", || async {
            sqlx::query("SELECT 1").execute(&self.inner.read).await?;
            Ok(())
        })
        .await
    }

    async fn write_jobs(&self, writes: &[JobWrite<'_>], audit: &[AuditEntry]) -> Result<Vec<Job>> {
        if writes.is_empty() && audit.is_empty() {
            return Ok(Vec::new());
        }
        let s = &self.inner;
        in_tx!(self, "write_jobs", |c| s.write_jobs(c, writes, audit))
    }

    async fn get_job(&self, id: &JobId) -> Result<Job> {
        self.retry("get_job", || self.inner.get_job(&self.inner.read, id))
            .await
    }

    async fn get_jobs(&self, ids: &[JobId]) -> Result<Vec<Job>> {
        self.retry("get_jobs", || self.inner.get_jobs(&self.inner.read, ids))
            .await
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        self.retry("list_jobs", || self.inner.list_jobs(&self.inner.read, query))
            .await
    }

    async fn job_changes(&self, after: u64, limit: usize) -> Result<Vec<JobChange>> {
        self.retry("job_changes", || {
            self.inner.job_changes(&self.inner.read, after, limit)
        })
        .await
    }

    async fn insert_executions(
        &self,
        records: &[ExecutionRecord],
        fence: Option<&Fence>,
    ) -> Result<Vec<InsertOutcome>> {
        self.retry("insert_executions", || {
            self.inner.insert_executions(records, fence)
        })
        .await
    }

    async fn update_executions(
        &self,
        updates: &[ExecutionUpdate],
        fence: Option<&Fence>,
    ) -> Result<Vec<UpdateOutcome>> {
        self.retry("update_executions", || {
            self.inner.update_executions(updates, fence)
        })
        .await
    }

    async fn get_execution(&self, task_id: &TaskId, attempt: u32) -> Result<ExecutionRecord> {
        self.retry("get_execution", || {
            self.inner.get_execution(&self.inner.read, task_id, attempt)
        })
        .await
    }

    async fn task_attempts(&self, task_id: &TaskId) -> Result<Vec<ExecutionRecord>> {
        self.retry("task_attempts", || {
            self.inner.task_attempts(&self.inner.read, task_id)
        })
        .await
    }

    async fn list_executions(&self, query: &ExecutionQuery) -> Result<Page<ExecutionRecord>> {
        self.retry("list_executions", || {
            self.inner.list_executions(&self.inner.read, query)
        })
        .await
    }

    async fn latest_executions(&self, jobs: &[JobId]) -> Result<Vec<ExecutionRecord>> {
        self.retry("latest_executions", || {
            self.inner.latest_executions(&self.inner.read, jobs)
        })
        .await
    }

    async fn outcome_hours(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<jobsched::OutcomeHour>> {
        self.retry("outcome_hours", || {
            self.inner.outcome_hours(&self.inner.read, from, to)
        })
        .await
    }

    async fn active_executions(&self, after_id: i64, limit: usize) -> Result<Vec<ExecutionRecord>> {
        self.retry("active_executions", || {
            self.inner.active_executions(&self.inner.read, after_id, limit)
        })
        .await
    }

    async fn claim_fence(&self, scope: &str, candidate: u64) -> Result<u64> {
        let s = &self.inner;
        in_tx!(self, "claim_fence", |c| s.claim_fence(c, scope, candidate))
    }

    async fn purge_executions(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        self.retry("purge_executions", || {
            self.inner.purge_executions(before, limit)
        })
        .await
    }

    async fn purge_job_executions(
        &self,
        job: &JobId,
        before: Option<DateTime<Utc>>,
        keep: u32,
        limit: usize,
    ) -> Result<u64> {
        self.retry("purge_job_executions", || {
            self.inner.purge_job_executions(job, before, keep, limit)
        })
        .await
    }

    async fn upsert_executor(&self, record: &ExecutorRecord) -> Result<ExecutorRecord> {
        let s = &self.inner;
        in_tx!(self, "upsert_executor", |c| s.upsert_executor(c, record))
    }

    async fn record_heartbeats(&self, beats: &[ExecutorHeartbeat]) -> Result<()> {
        if beats.is_empty() {
            return Ok(());
        }
        let s = &self.inner;
        in_tx!(
            self,
            "record_heartbeats",
            |c| s.record_heartbeats(c, beats)
        )
    }

    async fn get_executor(&self, id: &ExecutorId) -> Result<ExecutorRecord> {
        self.retry("get_executor", || {
            self.inner.get_executor(&self.inner.read, id)
        })
        .await
    }

    async fn list_executors(&self) -> Result<Vec<ExecutorRecord>> {
        self.retry("list_executors", || {
            self.inner.list_executors(&self.inner.read)
        })
        .await
    }

    async fn set_executor_enabled(
        &self,
        id: &ExecutorId,
        enabled: bool,
        audit: &[AuditEntry],
    ) -> Result<ExecutorRecord> {
        let s = &self.inner;
        in_tx!(self, "set_executor_enabled", |c| async {
            let rec = s.set_executor_enabled(&mut *c, id, enabled).await?;
            s.insert_audit(c, audit).await?;
            Ok::<_, DbError>(rec)
        })
    }

    async fn get_value(&self, key: &str) -> Result<Option<Versioned<String>>> {
        self.retry("get_value", || self.inner.get_value(&self.inner.read, key))
            .await
    }

    async fn put_value(
        &self,
        key: &str,
        value: &str,
        expected_version: Option<u64>,
        fence: Option<&Fence>,
        audit: &[AuditEntry],
    ) -> Result<u64> {
        let s = &self.inner;
        in_tx!(self, "put_value", |c| async {
            s.check_fence(&mut *c, fence).await?;
            let version = s.put_value(&mut *c, key, value, expected_version).await?;
            s.insert_audit(c, audit).await?;
            Ok::<_, DbError>(version)
        })
    }
}
