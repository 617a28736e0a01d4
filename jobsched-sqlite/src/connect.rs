//! Opening the store: the database file in WAL mode, one writer connection and a read pool, migrations.

use std::sync::Arc;
use std::time::Duration;

use jobsched::{Error, Result};
use jobsched_sql::{Limits, SQLITE, SqlStore, SqlStoreParts};
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use crate::config::{Durability, SqliteConfig};

/// jobsched's [`Storage`](jobsched::storage::Storage) in an SQLite file: the embedded default (no
/// server), durable across restarts. Open one with [`SqliteConfig::connect`].
pub type SqliteStore = SqlStore<Sqlite>;

/// The embedded schema migrations (`jobsched-sqlite/migrations`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// SQLite takes at most 32,766 values per statement; statements stay far below its 1 GB text limit.
const MAX_STATEMENT_BYTES: usize = 64 << 20;

impl SqliteConfig {
    /// Opens (creating the file and its directory if missing) the database in WAL mode with foreign
    /// keys on, applies the migrations if `migrate`, and returns the store.
    pub async fn connect(self) -> Result<SqliteStore> {
        self.validate()?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::invalid(
                    "store.path",
                    format!("cannot create directory {}: {e}", dir.display()),
                )
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&self.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match self.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(self.busy_timeout_secs))
            .statement_cache_capacity(64);
        let open_error = |e: sqlx::Error| Error::Unavailable {
            backend: SQLITE.backend,
            message: format!("cannot open {}: {e}", self.path.display()),
            source: Some(Box::new(e)),
        };
        // One writer: SQLite serialises writes anyway, and one connection never waits on itself.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(self.busy_timeout_secs.max(1) * 3))
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let read = SqlitePoolOptions::new()
            .max_connections(self.read_connections)
            .acquire_timeout(Duration::from_secs(self.busy_timeout_secs.max(1) * 3))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        let limits = Limits {
            max_batch_rows: self.max_batch_rows,
            max_statement_bytes: MAX_STATEMENT_BYTES,
            max_output_bytes: self.max_output_bytes,
        };
        // In a write transaction nobody else inserts: the rows of one multi-row insert get consecutive
        // ids ending at the last inserted rowid.
        let inserted_ids: jobsched_sql::InsertedIds<Sqlite> =
            Arc::new(|done: &SqliteQueryResult, n: usize| {
                let last = done.last_insert_rowid();
                Some((last - n as i64 + 1..=last).collect())
            });
        let store = SqlStore::new(SqlStoreParts {
            write,
            read,
            limits,
            dialect: SQLITE,
            inserted_ids,
            rows_affected: SqliteQueryResult::rows_affected,
            migrator: &MIGRATOR,
            description: self.path.display().to_string(),
        });
        if self.migrate {
            store.migrate().await?;
        }
        tracing::info!(path = %self.path.display(), ?limits, durability = ?self.durability, "sqlite store open");
        Ok(store)
    }
}
