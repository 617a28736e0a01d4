//! Opening the store: the pool, the migrations, and the server settings the store adapts to.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use jobsched::{Error, Result};
use jobsched_sql::{DbError, Limits, MYSQL, SqlStore, SqlStoreParts};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlQueryResult};
use sqlx::{Executor, MySql, Row};

use crate::config::{MysqlConfig, redact_url};

/// jobsched's [`Storage`](jobsched::storage::Storage) on MySQL 8 or MariaDB 10.5+ (tested on MariaDB
/// 10.11). Open one with [`MysqlConfig::connect`].
pub type MysqlStore = SqlStore<MySql>;

/// The embedded schema migrations (`jobsched-mysql/migrations`), applied in order and recorded in
/// `_sqlx_migrations`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn error(e: impl Into<DbError>) -> Error {
    e.into().into_error(MYSQL.backend, MYSQL.kind_of)
}

impl MysqlConfig {
    /// Connects (failing with a retryable `Unavailable` naming the server if it does not answer within
    /// the acquire timeout), applies the migrations if `migrate`, and reads the server settings the store
    /// adapts to (`innodb_autoinc_lock_mode` for how inserted ids are learned, `max_allowed_packet` for
    /// statement sizes and the output cap).
    pub async fn connect(self) -> Result<MysqlStore> {
        self.validate()?;
        let url = self.url.replacen("mariadb://", "mysql://", 1);
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(|e| Error::invalid("store.url", format!("{}: {e}", redact_url(&url))))?
            // Every character a task may print (emoji included) travels and is stored as is.
            .charset("utf8mb4")
            .statement_cache_capacity(64);
        let pool = MySqlPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(Duration::from_secs(self.acquire_timeout_secs))
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
                backend: MYSQL.backend,
                message: format!("cannot connect to {}: {e}", redact_url(&url)),
                source: Some(Box::new(e)),
            })?;
        let (inserted_ids, limits) = server_settings(&pool, &self).await?;
        let store = SqlStore::new(SqlStoreParts {
            write: pool.clone(),
            read: pool,
            limits,
            dialect: MYSQL,
            inserted_ids,
            rows_affected: MySqlQueryResult::rows_affected,
            migrator: &MIGRATOR,
            description: redact_url(&url),
        });
        if self.migrate {
            store.migrate().await?;
        }
        ensure_utf8mb4(store.pool(), self.migrate).await?;
        tracing::info!(url = %redact_url(&url), ?limits, "mysql store open");
        Ok(store)
    }
}

/// The tables the store keeps (the design's three and its own).
const TABLES: &[&str] = &[
    "jobs",
    "job_logs",
    "executors",
    "jobsched_counters",
    "jobsched_settings",
    "jobsched_fences",
    "jobsched_users",
    "jobsched_tokens",
    "jobsched_ended_sessions",
    "jobsched_audit",
];

/// Makes sure every text column of the store's tables is `utf8mb4`: tables adopted from an existing
/// database (migration 0001 keeps seed tables that exist), or made in a database whose default is
/// `latin1` or `utf8mb3`, would refuse a task's `✓` (error 1366). With `migrate` they are converted
/// (`ALTER TABLE … CONVERT TO CHARACTER SET utf8mb4`, which rewrites the table); without it the store
/// refuses to open, naming them.
async fn ensure_utf8mb4(pool: &MySqlPool, migrate: bool) -> Result<()> {
    let list = TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let narrow: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT TABLE_NAME, MIN(CHARACTER_SET_NAME) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({list}) \
         AND CHARACTER_SET_NAME IS NOT NULL AND CHARACTER_SET_NAME <> 'utf8mb4' \
         GROUP BY TABLE_NAME ORDER BY TABLE_NAME"
    )))
    .fetch_all(pool)
    .await
    .map_err(error)?;
    if narrow.is_empty() {
        return Ok(());
    }
    let named = narrow
        .iter()
        .map(|(t, c)| format!("{t} ({c})"))
        .collect::<Vec<_>>()
        .join(", ");
    if !migrate {
        return Err(Error::invalid(
            "store",
            format!(
                "tables {named} are not utf8mb4, so task output with characters outside their set \
                 cannot be stored; convert them (ALTER TABLE <table> CONVERT TO CHARACTER SET utf8mb4) \
                 or open the store with migrations on"
            ),
        ));
    }
    tracing::warn!(tables = %named, "converting the store's tables to utf8mb4 (each table is rewritten)");
    for (t, _) in &narrow {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {t} CONVERT TO CHARACTER SET utf8mb4"
        )))
        .execute(pool)
        .await
        .map_err(error)?;
    }
    Ok(())
}

async fn server_settings(
    pool: &MySqlPool,
    config: &MysqlConfig,
) -> Result<(jobsched_sql::InsertedIds<MySql>, Limits)> {
    let row = sqlx::query(
        "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment, @@max_allowed_packet",
    )
    .fetch_one(pool)
    .await
    .map_err(error)?;
    let lock_mode: i64 = row.try_get(0).unwrap_or(2);
    let increment = row.try_get::<u64, _>(1).map_or(1, |v| v as i64);
    let packet = row.try_get::<u64, _>(2).map_or(4 << 20, |v| v as usize);
    // Lock modes 0 and 1 give a multi-row `INSERT … VALUES` consecutive ids (`increment` apart) from
    // `LAST_INSERT_ID()`; mode 2 (interleaved) does not, so the store reads them back.
    let inserted_ids: jobsched_sql::InsertedIds<MySql> =
        Arc::new(move |done: &MySqlQueryResult, n: usize| {
            (lock_mode <= 1).then(|| {
                let first = done.last_insert_id() as i64;
                (0..n as i64).map(|i| first + i * increment).collect()
            })
        });
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
    Ok((inserted_ids, limits))
}
