//! [`SqlStore`]: jobsched's [`Storage`] on any database sqlx reaches with jobsched's schema — MySQL and
//! SQLite — built by the backend crates from their configuration.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use jobsched::storage::{
    ExecutionUpdate, Fence, InsertOutcome, JobChange, Storage, UpdateOutcome, Versioned,
};
use jobsched::{
    ExecutionQuery, ExecutionRecord, ExecutorHeartbeat, ExecutorId, ExecutorRecord, Job, JobId,
    JobQuery, Page, Result, TaskId,
};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Database, Executor, FromRow, IntoArguments, Pool, Transaction};

use crate::binds::Bind;
use crate::dialect::Dialect;
use crate::error::{DbError, retrying};
use crate::rows::{ExecRow, ExecutorRow, JobRow};
use crate::{Limits, executions, reads, writes};

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

/// jobsched's [`Storage`] on a SQL database with jobsched's schema: every method is one transaction;
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
            }),
        }
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

    async fn retry<T, F, Fut>(&self, operation: &'static str, run: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        retrying(
            self.backend_name(),
            self.inner.dialect.kind_of,
            operation,
            run,
        )
        .await
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

/// Runs `$body` (a future using `$conn`, the transaction's connection) in a write transaction, committing
/// on success; the transaction runs again if it lost a lock race.
macro_rules! in_tx {
    ($store:expr, $op:literal, |$conn:ident| $body:expr) => {
        $store
            .retry($op, || async {
                let mut tx = $store.inner.begin().await?;
                let $conn: &mut DB::Connection = &mut tx;
                let out = $body.await?;
                tx.commit().await?;
                Ok(out)
            })
            .await
    };
}

#[async_trait]
impl<DB> Storage for SqlStore<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    i64: Bind<DB>,
    i32: Bind<DB>,
    Option<i32>: Bind<DB>,
    i8: Bind<DB>,
    bool: Bind<DB>,
    NaiveDateTime: Bind<DB>,
    Option<NaiveDateTime>: Bind<DB>,
    JobRow: for<'r> FromRow<'r, DB::Row>,
    ExecRow: for<'r> FromRow<'r, DB::Row>,
    ExecutorRow: for<'r> FromRow<'r, DB::Row>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
    (String, i64): for<'r> FromRow<'r, DB::Row>,
    (String, i32, i64): for<'r> FromRow<'r, DB::Row>,
    (String, NaiveDateTime, String): for<'r> FromRow<'r, DB::Row>,
{
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

    async fn create_jobs(&self, jobs: &[Job]) -> Result<Vec<Job>> {
        let s = &self.inner;
        in_tx!(self, "create_jobs", |c| writes::create_jobs::<DB>(
            c, &s.dialect, &s.limits, jobs
        ))
    }

    async fn get_job(&self, id: &JobId) -> Result<Job> {
        let b = self.backend_name();
        self.retry("get_job", || reads::get_job(&self.inner.read, b, id))
            .await
    }

    async fn update_job(&self, job: &Job) -> Result<Job> {
        let s = &self.inner;
        in_tx!(self, "update_job", |c| writes::update_job::<DB>(
            c, &s.dialect, &s.limits, job
        ))
    }

    async fn delete_job(&self, id: &JobId, expected_version: Option<u64>) -> Result<()> {
        let s = &self.inner;
        in_tx!(self, "delete_job", |c| writes::delete_job::<DB>(
            c,
            &s.dialect,
            id,
            expected_version
        ))
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        let b = self.backend_name();
        self.retry("list_jobs", || reads::list_jobs(&self.inner.read, b, query))
            .await
    }

    async fn job_changes(&self, after: u64, limit: usize) -> Result<Vec<JobChange>> {
        let b = self.backend_name();
        self.retry("job_changes", || {
            reads::job_changes(&self.inner.read, b, after, limit)
        })
        .await
    }

    async fn insert_executions(
        &self,
        records: &[ExecutionRecord],
        fence: Option<&Fence>,
    ) -> Result<Vec<InsertOutcome>> {
        self.retry("insert_executions", || {
            executions::insert(&self.inner, records, fence)
        })
        .await
    }

    async fn update_executions(
        &self,
        updates: &[ExecutionUpdate],
        fence: Option<&Fence>,
    ) -> Result<Vec<UpdateOutcome>> {
        self.retry("update_executions", || {
            executions::update(&self.inner, updates, fence)
        })
        .await
    }

    async fn get_execution(&self, task_id: &TaskId, attempt: u32) -> Result<ExecutionRecord> {
        let b = self.backend_name();
        self.retry("get_execution", || {
            reads::get_execution(&self.inner.read, b, task_id, attempt)
        })
        .await
    }

    async fn task_attempts(&self, task_id: &TaskId) -> Result<Vec<ExecutionRecord>> {
        let b = self.backend_name();
        self.retry("task_attempts", || {
            reads::task_attempts(&self.inner.read, b, task_id)
        })
        .await
    }

    async fn list_executions(&self, query: &ExecutionQuery) -> Result<Page<ExecutionRecord>> {
        let b = self.backend_name();
        self.retry("list_executions", || {
            reads::list_executions(&self.inner.read, b, query)
        })
        .await
    }

    async fn active_executions(&self, after_id: i64, limit: usize) -> Result<Vec<ExecutionRecord>> {
        let b = self.backend_name();
        self.retry("active_executions", || {
            reads::active_executions(&self.inner.read, b, after_id, limit)
        })
        .await
    }

    async fn purge_executions(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        self.retry("purge_executions", || {
            executions::purge(&self.inner, before, limit)
        })
        .await
    }

    async fn upsert_executor(&self, record: &ExecutorRecord) -> Result<ExecutorRecord> {
        let s = &self.inner;
        in_tx!(self, "upsert_executor", |c| writes::upsert_executor::<DB>(
            c, &s.dialect, record
        ))
    }

    async fn record_heartbeats(&self, beats: &[ExecutorHeartbeat]) -> Result<()> {
        if beats.is_empty() {
            return Ok(());
        }
        in_tx!(
            self,
            "record_heartbeats",
            |c| writes::record_heartbeats::<DB>(c, beats)
        )
    }

    async fn get_executor(&self, id: &ExecutorId) -> Result<ExecutorRecord> {
        let b = self.backend_name();
        self.retry("get_executor", || {
            reads::get_executor(&self.inner.read, b, id)
        })
        .await
    }

    async fn list_executors(&self) -> Result<Vec<ExecutorRecord>> {
        let b = self.backend_name();
        self.retry("list_executors", || {
            reads::list_executors(&self.inner.read, b)
        })
        .await
    }

    async fn set_executor_enabled(&self, id: &ExecutorId, enabled: bool) -> Result<ExecutorRecord> {
        let s = &self.inner;
        in_tx!(self, "set_executor_enabled", |c| {
            writes::set_executor_enabled::<DB>(c, &s.dialect, id, enabled)
        })
    }

    async fn get_value(&self, key: &str) -> Result<Option<Versioned<String>>> {
        self.retry("get_value", || reads::get_value(&self.inner.read, key))
            .await
    }

    async fn put_value(
        &self,
        key: &str,
        value: &str,
        expected_version: Option<u64>,
        fence: Option<&Fence>,
    ) -> Result<u64> {
        let s = &self.inner;
        in_tx!(self, "put_value", |c| async {
            writes::check_fence::<DB>(&mut *c, &s.dialect, fence).await?;
            writes::put_value::<DB>(c, &s.dialect, key, value, expected_version).await
        })
    }
}
