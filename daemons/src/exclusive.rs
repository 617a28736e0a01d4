//! One scheduler per store without a coordinator. With ZooKeeper, schedulers elect one active among
//! them; without it each process would run active on its own, so a scheduler (or `standalone`) holds an
//! exclusive lock on its store for as long as it runs, and a second one refuses to start:
//! - an SQLite store: an `flock` on `<database>.lock` beside the database file, which names the
//!   holder's pid (the kernel drops the lock when the process dies, however it dies);
//! - a MySQL store: the named server lock of [`jobsched_mysql::SchedulerLock`]; if its connection fails
//!   the scheduler stops (the server may have released the lock to another one).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::config::Config;
use crate::error::DaemonError;
use crate::server::Role;
use crate::stores;

/// A held store lock; released when dropped.
#[derive(Debug)]
pub enum StoreLock {
    /// The lock file of an SQLite store.
    File(#[allow(dead_code)] Flock<File>),
    /// The MySQL server's named lock.
    Mysql(jobsched_mysql::SchedulerLock),
}

impl StoreLock {
    /// Takes the lock of the store `config` names for `role`, unless a coordinator elects schedulers
    /// (`distributed`) or the role runs no scheduler.
    pub async fn take(
        role: Role,
        config: &Config,
        distributed: bool,
    ) -> Result<Option<StoreLock>, DaemonError> {
        if distributed || role == Role::Executor {
            return Ok(None);
        }
        match config.store.as_deref() {
            Some(url) if url.starts_with("mysql://") || url.starts_with("mariadb://") => Ok(Some(
                StoreLock::Mysql(jobsched_mysql::SchedulerLock::acquire(url).await?),
            )),
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(path) => Ok(Some(lock_file(Path::new(path))?)),
                None => Ok(None),
            },
            None => {
                stores::private_dir(&config.data_dir)?;
                Ok(Some(lock_file(&stores::data_dir_file(&config.data_dir))?))
            }
        }
    }

    /// Resolves with the reason once the lock is lost (never, for a file lock).
    pub async fn lost(&self) -> String {
        match self {
            StoreLock::File(_) => std::future::pending().await,
            StoreLock::Mysql(l) => l.lost().await,
        }
    }
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn lock_file(database: &Path) -> Result<StoreLock, DaemonError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = lock_path(database);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| {
            DaemonError::Config(format!("cannot open the lock file {}: {e}", path.display()))
        })?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            lock.set_len(0)?;
            lock.rewind()?;
            writeln!(lock, "{}", std::process::id())?;
            Ok(StoreLock::File(lock))
        }
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let who = if pid.is_empty() {
                "another process".to_owned()
            } else {
                format!("pid {pid}")
            };
            Err(DaemonError::Config(format!(
                "another jobsched ({who}) is using {}: stop it, or give this one another --data-dir (or --store)",
                database.display()
            )))
        }
    }
}
