//! Opening the store a configuration names.

use std::path::Path;
use std::sync::Arc;

use jobsched::storage::Storage;
use jobsched::{Error, Result};

/// Opens (and migrates) the store of `url`: `mysql://…` (or `mariadb://…`) or `sqlite://path`.
pub async fn open(url: &str) -> Result<Arc<dyn Storage>> {
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        Ok(Arc::new(
            jobsched_mysql::MysqlConfig::new(url).connect().await?,
        ))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        open_sqlite(Path::new(path)).await
    } else {
        Err(Error::invalid(
            "store",
            format!(
                "'{}' is not a store URL: give mysql://user:password@host:port/database or sqlite://path",
                jobsched_mysql::redact_url(url)
            ),
        ))
    }
}

/// Opens (and migrates) an SQLite store at `path`.
pub async fn open_sqlite(path: &Path) -> Result<Arc<dyn Storage>> {
    Ok(Arc::new(
        jobsched_sqlite::SqliteConfig::new(path).connect().await?,
    ))
}

/// The SQLite file of a data directory.
pub fn data_dir_file(dir: &Path) -> std::path::PathBuf {
    dir.join(jobsched_sqlite::FILE_NAME)
}
