//! Opening the store a configuration names.

use std::path::Path;
use std::sync::Arc;

use jobsched::storage::Storage;
use jobsched::{Error, Result};

/// Opens (and migrates) the store of `url`: `mysql://…` (or `mariadb://…`) or `sqlite://path`.
pub async fn open(url: &str) -> Result<Arc<dyn Storage>> {
    open_metered(url, None).await
}

/// [`open`], recording every call into `metrics` if given.
pub async fn open_metered(
    url: &str,
    metrics: Option<&jobsched::metrics::Metrics>,
) -> Result<Arc<dyn Storage>> {
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        let store = jobsched_mysql::MysqlConfig::new(url).connect().await?;
        if let Some(m) = metrics {
            store.record_into(m.clone());
        }
        Ok(Arc::new(store))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        open_sqlite(Path::new(path), metrics).await
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

/// Opens (and migrates) an SQLite store at `path`. A new database file is made readable by its owner
/// only (it keeps password hashes, token hashes and the signing key; SQLite gives its journal files the
/// database file's permissions), in a directory only its owner can enter when it makes one.
pub async fn open_sqlite(
    path: &Path,
    metrics: Option<&jobsched::metrics::Metrics>,
) -> Result<Arc<dyn Storage>> {
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |e: std::io::Error| {
            Error::invalid("store", format!("cannot create {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir).map_err(io)?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
    }
    let store = jobsched_sqlite::SqliteConfig::new(path).connect().await?;
    if let Some(m) = metrics {
        store.record_into(m.clone());
    }
    Ok(Arc::new(store))
}

/// The SQLite file of a data directory.
pub fn data_dir_file(dir: &Path) -> std::path::PathBuf {
    dir.join(jobsched_sqlite::FILE_NAME)
}

/// Makes `dir` (and its parents) if it does not exist, the last one enterable by its owner only.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
