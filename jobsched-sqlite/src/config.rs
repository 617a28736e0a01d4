//! The store's configuration: the database file, durability, the read pool, and the write limits.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How hard a commit waits for the disk (`PRAGMA synchronous`, in WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every commit is on disk before it returns (`FULL`): nothing acknowledged is lost, even to a
    /// power failure or an OS crash.
    #[default]
    Full,
    /// Commits survive the process being killed, but the last ones may roll back if the machine loses
    /// power or the OS crashes (`NORMAL`); several times faster on slow disks.
    Normal,
}

/// Configuration of a [`SqliteStore`](crate::SqliteStore).
///
/// ```
/// use jobsched_sqlite::SqliteConfig;
/// let config = SqliteConfig::in_dir("./jobsched-data").with_read_connections(8);
/// assert!(config.path.ends_with("jobsched.db"));
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file (created with its directory if missing).
    pub path: PathBuf,
    /// How hard a commit waits for the disk.
    #[serde(default)]
    pub durability: Durability,
    /// Connections for reads (writes use one connection: SQLite has one writer at a time).
    #[serde(default = "defaults::read_connections")]
    pub read_connections: u32,
    /// How long a write waits for another process's write lock before it fails with a retryable
    /// error.
    #[serde(default = "defaults::busy_timeout_secs")]
    pub busy_timeout_secs: u64,
    /// Most rows in one `INSERT` statement.
    #[serde(default = "defaults::max_batch_rows")]
    pub max_batch_rows: usize,
    /// Most bytes of a task's `output`, and of its `error`, that are stored (the tail is kept, after a
    /// marker line).
    #[serde(default = "defaults::max_output_bytes")]
    pub max_output_bytes: usize,
    /// Apply the embedded migrations when the store opens.
    #[serde(default = "defaults::migrate")]
    pub migrate: bool,
}

mod defaults {
    pub fn read_connections() -> u32 {
        4
    }
    pub fn busy_timeout_secs() -> u64 {
        10
    }
    pub fn max_batch_rows() -> usize {
        500
    }
    pub fn max_output_bytes() -> usize {
        super::MAX_OUTPUT_BYTES
    }
    pub fn migrate() -> bool {
        true
    }
}

/// The largest `max_output_bytes` (the same 16 MiB as the MySQL store, so records move between them).
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024 - 1;

/// The file name of the database in a data directory.
pub const FILE_NAME: &str = "jobsched.db";

impl SqliteConfig {
    /// The defaults for a database file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            durability: Durability::default(),
            read_connections: defaults::read_connections(),
            busy_timeout_secs: defaults::busy_timeout_secs(),
            max_batch_rows: defaults::max_batch_rows(),
            max_output_bytes: defaults::max_output_bytes(),
            migrate: defaults::migrate(),
        }
    }

    /// The database `jobsched.db` in a data directory.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        Self::new(dir.as_ref().join(FILE_NAME))
    }

    /// Sets the durability of commits.
    pub fn with_durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Sets the number of read connections.
    pub fn with_read_connections(mut self, n: u32) -> Self {
        self.read_connections = n;
        self
    }

    /// Sets how long a write waits for another process's lock.
    pub fn with_busy_timeout_secs(mut self, secs: u64) -> Self {
        self.busy_timeout_secs = secs;
        self
    }

    /// Sets the most rows per `INSERT` statement.
    pub fn with_max_batch_rows(mut self, n: usize) -> Self {
        self.max_batch_rows = n;
        self
    }

    /// Sets the most stored bytes of `output` and of `error`.
    pub fn with_max_output_bytes(mut self, n: usize) -> Self {
        self.max_output_bytes = n;
        self
    }

    /// Whether to apply the migrations when the store opens.
    pub fn with_migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Checks the values, naming the field that is wrong.
    pub fn validate(&self) -> jobsched::Result<()> {
        use jobsched::Error;
        if self.path.as_os_str().is_empty() {
            return Err(Error::invalid("store.path", "must name a file"));
        }
        if self.read_connections == 0 {
            return Err(Error::invalid(
                "store.read_connections",
                "must be at least 1",
            ));
        }
        // 24 values per row, SQLite takes at most 32,766 per statement.
        if !(1..=1000).contains(&self.max_batch_rows) {
            return Err(Error::invalid(
                "store.max_batch_rows",
                format!("must be between 1 and 1000, got {}", self.max_batch_rows),
            ));
        }
        jobsched_sql::Limits::check_output_bytes(
            "store.max_output_bytes",
            self.max_output_bytes,
            MAX_OUTPUT_BYTES,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_field() {
        let e = SqliteConfig::new("x.db")
            .with_max_batch_rows(5000)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("store.max_batch_rows"), "{e}");
        let e = SqliteConfig::new("").validate().unwrap_err();
        assert!(e.to_string().contains("store.path"), "{e}");
    }

    #[test]
    fn config_files_are_checked() {
        let c: SqliteConfig =
            serde_json::from_str(r#"{"path": "a.db", "durability": "normal"}"#).unwrap();
        assert_eq!(c.durability, Durability::Normal);
        assert!(serde_json::from_str::<SqliteConfig>(r#"{"path": "a.db", "sync": 1}"#).is_err());
    }
}
