//! # jobsched-sqlite
//!
//! jobsched's [`Storage`](jobsched::storage::Storage) embedded in an SQLite file (sqlx, bundled SQLite):
//! the default store of the all-in-one mode, so jobs and history survive restarts with no server to
//! install. The schema is the MySQL store's, logically (`jobs`, `job_logs`, `executors`, settings,
//! fences), in STRICT tables, with WAL journaling and foreign keys on.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> jobsched::Result<()> {
//! use jobsched::storage::Storage;
//! use jobsched_sqlite::SqliteConfig;
//!
//! let dir = std::env::temp_dir().join(format!("jobsched-doc-{}", std::process::id()));
//! let store = SqliteConfig::in_dir(&dir).connect().await?;
//! let job = jobsched::JobSpec::cron("nightly", "0 30 2 * * *", "backup.sh").build(chrono::Utc::now())?;
//! store.create_jobs(&[job.clone()]).await?;
//! store.close().await;
//!
//! // Reopened (as after a restart), the job is there.
//! let store = SqliteConfig::in_dir(&dir).connect().await?;
//! assert_eq!(store.get_job(&job.job_id).await?.name, "nightly");
//! # store.close().await;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```
//!
//! Guarantees, beyond those of the trait: writes go through one connection in `BEGIN IMMEDIATE`
//! transactions, so they never fail to upgrade a read lock, and other processes' writes are waited for
//! up to `busy_timeout_secs`; with [`Durability::Full`] (the default) a write that returned is on disk.
//! Readers never block the writer (WAL). Text of any length is stored verbatim (NUL bytes included);
//! `output` and `error` are capped at `max_output_bytes`, keeping the tail after a marker.

mod config;
mod connect;

pub use config::{Durability, FILE_NAME, MAX_OUTPUT_BYTES, SqliteConfig};
pub use connect::{MIGRATOR, SqliteStore};
