//! The store: its pool, start-up (migrations, server settings) and the [`Storage`] implementation, which
//! delegates to one module per table.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobsched::storage::{
    ExecutionUpdate, Fence, InsertOutcome, JobChange, Storage, UpdateOutcome, Versioned,
};
use jobsched::{
    Error, ExecutionQuery, ExecutionRecord, ExecutorHeartbeat, ExecutorId, ExecutorRecord, Job,
    JobId, JobQuery, Page, Result, TaskId,
};
use jobsched_sql::{Limits, MYSQL, writes};
use sqlx::MySql;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, Row};

use crate::config::{MysqlConfig, redact_url};
use crate::error::{BACKEND, into_error, retrying};
use crate::{executions, history};
use jobsched_sql::reads;

/// Runs `$body` (a future using the connection `$conn`) in a transaction, committing on success; the
/// whole transaction runs again if it lost a lock race.
macro_rules! in_tx {
    ($store:expr, $op:literal, |$conn:ident| $body:expr) => {
        retrying($op, || async {
            let mut tx = $store.ctx.pool.begin().await?;
            let $conn: &mut sqlx::MySqlConnection = &mut tx;
            let out = $body.await?;
            tx.commit().await?;
            Ok(out)
        })
        .await
    };
}

/// The embedded schema migrations (`jobsched-mysql/migrations`), applied in order and recorded in
/// `_sqlx_migrations`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How the ids of a multi-row insert are learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdMode {
    /// `innodb_autoinc_lock_mode` 0 or 1: a multi-row `INSERT … VALUES` gets consecutive ids
    /// (`auto_increment_increment` apart) starting at `LAST_INSERT_ID()`.
    Consecutive { increment: i64 },
    /// Mode 2 (interleaved): ids are read back by `(task_id, attempt)`.
    Lookup,
}

/// What every operation needs: the pool and the write limits.
pub(crate) struct Ctx {
    pub pool: MySqlPool,
    pub limits: Limits,
    pub ids: IdMode,
}

/// jobsched's [`Storage`] on MySQL 8 or MariaDB 10.5+ (tested on MariaDB 10.11).
///
/// Cheap to clone (the pool is shared). Every method is one transaction; batches are written with
/// multi-row statements; a fire is recorded once through the unique key `uk_fire (job_id, fire_time)`; a
/// state change is decided on rows locked with `SELECT … FOR UPDATE`. A lost connection fails the call
/// with a retryable [`Error::Unavailable`] and the pool reconnects by itself.
#[derive(Clone)]
pub struct MysqlStore {
    ctx: Arc<Ctx>,
    config: Arc<MysqlConfig>,
}

impl fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlStore")
            .field("config", &self.config)
            .field("limits", &self.ctx.limits)
            .finish()
    }
}

impl MysqlStore {
    /// Connects (failing with `Unavailable` if the server does not answer within the acquire timeout),
    /// applies the migrations if `config.migrate`, and reads the server settings the store adapts to.
    pub async fn connect(config: MysqlConfig) -> Result<Self> {
        config.validate()?;
        let url = config.url.replacen("mariadb://", "mysql://", 1);
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(|e| Error::invalid("store.url", format!("{}: {e}", redact_url(&url))))?
            .statement_cache_capacity(64);
        let pool = MySqlPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Refuse values that do not fit instead of truncating them, whatever the server's
                    // default mode.
                    conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| Error::Unavailable {
                backend: BACKEND,
                message: format!("cannot connect to {}: {e}", redact_url(&url)),
                source: Some(Box::new(e)),
            })?;
        if config.migrate {
            migrate_pool(&pool).await?;
        }
        let row = sqlx::query(
            "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment, @@max_allowed_packet",
        )
        .fetch_one(&pool)
        .await
        .map_err(into_error)?;
        let lock_mode: i64 = row.try_get(0).unwrap_or(2);
        let increment: i64 = row.try_get::<u64, _>(1).map_or(1, |v| v as i64);
        let packet: i64 = row.try_get::<u64, _>(2).map_or(4 << 20, |v| v as i64);
        let ids = if lock_mode <= 1 {
            IdMode::Consecutive { increment }
        } else {
            IdMode::Lookup
        };
        let packet = usize::try_from(packet).unwrap_or(usize::MAX);
        // A row carries output and error: each gets at most a quarter of a packet.
        let max_output_bytes = config.max_output_bytes.min(packet / 4 - 1024);
        if max_output_bytes < config.max_output_bytes {
            tracing::warn!(
                configured = config.max_output_bytes,
                used = max_output_bytes,
                max_allowed_packet = packet,
                "store.max_output_bytes lowered to fit the server's max_allowed_packet"
            );
        }
        let limits = Limits {
            max_batch_rows: config.max_batch_rows,
            max_statement_bytes: packet / 2,
            max_output_bytes,
        };
        tracing::info!(url = %redact_url(&url), ?ids, ?limits, "mysql store open");
        Ok(MysqlStore {
            ctx: Arc::new(Ctx { pool, limits, ids }),
            config: Arc::new(config),
        })
    }

    /// Applies the embedded migrations that have not run yet (what the `migrate` command does).
    pub async fn migrate(&self) -> Result<()> {
        migrate_pool(&self.ctx.pool).await
    }

    /// The pool (for tools and tests that need plain SQL on the same database).
    pub fn pool(&self) -> &MySqlPool {
        &self.ctx.pool
    }

    /// The limits in force (after adapting to the server).
    pub fn limits(&self) -> Limits {
        self.ctx.limits
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.ctx.pool.close().await;
    }
}

async fn migrate_pool(pool: &MySqlPool) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => into_error(e),
        other => Error::backend(BACKEND, format!("migration failed: {other}")),
    })
}

#[async_trait]
impl Storage for MysqlStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        retrying("ping", || async {
            sqlx::query("SELECT 1").execute(&self.ctx.pool).await?;
            Ok(())
        })
        .await
    }

    async fn create_jobs(&self, jobs: &[Job]) -> Result<Vec<Job>> {
        in_tx!(self, "create_jobs", |c| writes::create_jobs::<MySql>(
            c,
            &MYSQL,
            &self.ctx.limits,
            jobs
        ))
    }

    async fn get_job(&self, id: &JobId) -> Result<Job> {
        retrying("get_job", || reads::get_job(&self.ctx.pool, BACKEND, id)).await
    }

    async fn update_job(&self, job: &Job) -> Result<Job> {
        in_tx!(self, "update_job", |c| writes::update_job::<MySql>(
            c,
            &MYSQL,
            &self.ctx.limits,
            job
        ))
    }

    async fn delete_job(&self, id: &JobId, expected_version: Option<u64>) -> Result<()> {
        in_tx!(self, "delete_job", |c| writes::delete_job::<MySql>(
            c,
            &MYSQL,
            id,
            expected_version
        ))
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        retrying("list_jobs", || {
            reads::list_jobs(&self.ctx.pool, BACKEND, query)
        })
        .await
    }

    async fn job_changes(&self, after: u64, limit: usize) -> Result<Vec<JobChange>> {
        retrying("job_changes", || {
            reads::job_changes(&self.ctx.pool, BACKEND, after, limit)
        })
        .await
    }

    async fn insert_executions(
        &self,
        records: &[ExecutionRecord],
        fence: Option<&Fence>,
    ) -> Result<Vec<InsertOutcome>> {
        retrying("insert_executions", || {
            executions::insert(&self.ctx, records, fence)
        })
        .await
    }

    async fn update_executions(
        &self,
        updates: &[ExecutionUpdate],
        fence: Option<&Fence>,
    ) -> Result<Vec<UpdateOutcome>> {
        retrying("update_executions", || {
            executions::update(&self.ctx, updates, fence)
        })
        .await
    }

    async fn get_execution(&self, task_id: &TaskId, attempt: u32) -> Result<ExecutionRecord> {
        retrying("get_execution", || {
            reads::get_execution(&self.ctx.pool, BACKEND, task_id, attempt)
        })
        .await
    }

    async fn task_attempts(&self, task_id: &TaskId) -> Result<Vec<ExecutionRecord>> {
        retrying("task_attempts", || {
            reads::task_attempts(&self.ctx.pool, BACKEND, task_id)
        })
        .await
    }

    async fn list_executions(&self, query: &ExecutionQuery) -> Result<Page<ExecutionRecord>> {
        retrying("list_executions", || {
            reads::list_executions(&self.ctx.pool, BACKEND, query)
        })
        .await
    }

    async fn active_executions(&self, after_id: i64, limit: usize) -> Result<Vec<ExecutionRecord>> {
        retrying("active_executions", || {
            reads::active_executions(&self.ctx.pool, BACKEND, after_id, limit)
        })
        .await
    }

    async fn purge_executions(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        retrying("purge_executions", || {
            history::purge(&self.ctx, before, limit)
        })
        .await
    }

    async fn upsert_executor(&self, record: &ExecutorRecord) -> Result<ExecutorRecord> {
        in_tx!(
            self,
            "upsert_executor",
            |c| writes::upsert_executor::<MySql>(c, &MYSQL, record)
        )
    }

    async fn record_heartbeats(&self, beats: &[ExecutorHeartbeat]) -> Result<()> {
        in_tx!(self, "record_heartbeats", |c| writes::record_heartbeats::<
            MySql,
        >(c, beats))
    }

    async fn get_executor(&self, id: &ExecutorId) -> Result<ExecutorRecord> {
        retrying("get_executor", || {
            reads::get_executor(&self.ctx.pool, BACKEND, id)
        })
        .await
    }

    async fn list_executors(&self) -> Result<Vec<ExecutorRecord>> {
        retrying("list_executors", || {
            reads::list_executors(&self.ctx.pool, BACKEND)
        })
        .await
    }

    async fn set_executor_enabled(&self, id: &ExecutorId, enabled: bool) -> Result<ExecutorRecord> {
        in_tx!(self, "set_executor_enabled", |c| {
            writes::set_executor_enabled::<MySql>(c, &MYSQL, id, enabled)
        })
    }

    async fn get_value(&self, key: &str) -> Result<Option<Versioned<String>>> {
        retrying("get_value", || reads::get_value(&self.ctx.pool, key)).await
    }

    async fn put_value(
        &self,
        key: &str,
        value: &str,
        expected_version: Option<u64>,
        fence: Option<&Fence>,
    ) -> Result<u64> {
        in_tx!(self, "put_value", |c| async {
            writes::check_fence::<MySql>(&mut *c, &MYSQL, fence).await?;
            writes::put_value::<MySql>(c, &MYSQL, key, value, expected_version).await
        })
    }
}
