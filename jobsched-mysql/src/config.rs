//! The store's configuration: the server URL, the pool, and the write limits.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Configuration of a [`MysqlStore`](crate::MysqlStore).
///
/// Deserialises from a table of the fields below (unknown fields are refused), e.g. a section of an
/// application's own configuration, or is built with the `with_…` methods. The daemons do not read it
/// from their TOML: they take only the store URL (the top-level `store` key of the `--config` file,
/// `--store` or `JOBSCHED_STORE`) and open it with [`MysqlConfig::new`], so the pool and the limits keep
/// their defaults there. `Debug` hides the password in the URL.
///
/// ```
/// use jobsched_mysql::MysqlConfig;
/// let config = MysqlConfig::new("mysql://jobsched:secret@127.0.0.1:3306/jobsched")
///     .with_max_connections(32)
///     .with_max_batch_rows(1000);
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// `mysql://user:password@host:port/database` (MariaDB or MySQL 8).
    pub url: String,
    /// Most connections in the pool.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: u32,
    /// Connections kept open when idle.
    #[serde(default)]
    pub min_connections: u32,
    /// How long a call waits for a connection (or for the server to accept one) before it fails with a
    /// retryable `Unavailable` error.
    #[serde(default = "defaults::acquire_timeout_secs")]
    pub acquire_timeout_secs: u64,
    /// Most rows in one `INSERT` statement; larger batches take several statements in one transaction.
    #[serde(default = "defaults::max_batch_rows")]
    pub max_batch_rows: usize,
    /// Most bytes of a task's `output`, and of its `error`, that are stored (the tail is kept, after a
    /// marker line). At most 16 MiB (a `MEDIUMTEXT`); lowered at start-up to fit the server's
    /// `max_allowed_packet`.
    #[serde(default = "defaults::max_output_bytes")]
    pub max_output_bytes: usize,
    /// Apply the embedded migrations when the store opens.
    #[serde(default = "defaults::migrate")]
    pub migrate: bool,
}

mod defaults {
    pub fn max_connections() -> u32 {
        16
    }
    pub fn acquire_timeout_secs() -> u64 {
        5
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

/// The largest `max_output_bytes`: a `MEDIUMTEXT` holds 16 MiB − 1 byte.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024 - 1;

impl MysqlConfig {
    /// The defaults for a server URL.
    pub fn new(url: impl Into<String>) -> Self {
        MysqlConfig {
            url: url.into(),
            max_connections: defaults::max_connections(),
            min_connections: 0,
            acquire_timeout_secs: defaults::acquire_timeout_secs(),
            max_batch_rows: defaults::max_batch_rows(),
            max_output_bytes: defaults::max_output_bytes(),
            migrate: defaults::migrate(),
        }
    }

    /// Sets the pool's size.
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets the connections kept open when idle.
    pub fn with_min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// Sets how long a call waits for a connection.
    pub fn with_acquire_timeout(mut self, d: Duration) -> Self {
        self.acquire_timeout_secs = d.as_secs().max(1);
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
        if !self.url.starts_with("mysql://") && !self.url.starts_with("mariadb://") {
            return Err(Error::invalid(
                "store.url",
                format!(
                    "'{}' is not a MySQL URL (mysql://user:password@host:port/database)",
                    redact_url(&self.url)
                ),
            ));
        }
        if self.max_connections == 0 || self.max_connections < self.min_connections {
            return Err(Error::invalid(
                "store.max_connections",
                format!(
                    "must be at least 1 and at least min_connections ({}), got {}",
                    self.min_connections, self.max_connections
                ),
            ));
        }
        if !(1..=10_000).contains(&self.max_batch_rows) {
            return Err(Error::invalid(
                "store.max_batch_rows",
                format!("must be between 1 and 10000, got {}", self.max_batch_rows),
            ));
        }
        jobsched_sql::Limits::check_output_bytes(
            "store.max_output_bytes",
            self.max_output_bytes,
            MAX_OUTPUT_BYTES,
        )
    }
}

/// The URL with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout_secs", &self.acquire_timeout_secs)
            .field("max_batch_rows", &self.max_batch_rows)
            .field("max_output_bytes", &self.max_output_bytes)
            .field("migrate", &self.migrate)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("mysql://u:p%40ss@h:3306/db"),
            "mysql://u:***@h:3306/db"
        );
        assert_eq!(redact_url("mysql://u@h/db"), "mysql://u@h/db");
        let c = MysqlConfig::new("mysql://u:hunter2@h/db");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = MysqlConfig::new("postgres://x").validate().unwrap_err();
        assert!(e.to_string().contains("store.url"), "{e}");
        let e = MysqlConfig::new("mysql://h/db")
            .with_max_batch_rows(0)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("store.max_batch_rows"), "{e}");
    }

    #[test]
    fn toml_style_fields_are_checked() {
        let c: MysqlConfig =
            serde_json::from_str(r#"{"url": "mysql://h/db", "max_connections": 4}"#).unwrap();
        assert_eq!((c.max_connections, c.max_batch_rows), (4, 500));
        assert!(serde_json::from_str::<MysqlConfig>(r#"{"url": "x", "pool": 4}"#).is_err());
    }
}
