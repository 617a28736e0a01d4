//! The scheduler lock: without a coordinator (ZooKeeper) to elect one, a scheduler on a MySQL store
//! holds a named server lock (`GET_LOCK`) on a connection of its own for as long as it runs, so a second
//! scheduler on the same database refuses to start instead of running active beside the first.

use std::str::FromStr;
use std::time::Duration;

use jobsched::{Error, Result};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{Connection, Row};
use tokio::sync::watch;

use crate::config::redact_url;

/// How often the holder checks that its lock is still its own.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// A held scheduler lock. Dropping it releases the lock (the connection closes).
#[derive(Debug)]
pub struct SchedulerLock {
    lost: watch::Receiver<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl SchedulerLock {
    /// Takes the scheduler lock of the database `url` names, or fails with `Conflict` naming the
    /// connection (and its client host) that holds it.
    pub async fn acquire(url: &str) -> Result<SchedulerLock> {
        let url = url.replacen("mariadb://", "mysql://", 1);
        let shown = redact_url(&url);
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(|e| Error::invalid("store.url", format!("{shown}: {e}")))?;
        let unavailable = |e: sqlx::Error| Error::Unavailable {
            backend: "mysql",
            message: format!("taking the scheduler lock on {shown}: {e}"),
            source: Some(Box::new(e)),
        };
        let mut conn = MySqlConnection::connect_with(&options)
            .await
            .map_err(unavailable)?;
        let got: Option<i64> =
            sqlx::query_scalar("SELECT GET_LOCK(CONCAT('jobsched.scheduler.', DATABASE()), 0)")
                .fetch_one(&mut conn)
                .await
                .map_err(unavailable)?;
        if got != Some(1) {
            let holder = sqlx::query(
                "SELECT p.ID, p.HOST FROM information_schema.PROCESSLIST p \
                 WHERE p.ID = IS_USED_LOCK(CONCAT('jobsched.scheduler.', DATABASE()))",
            )
            .fetch_optional(&mut conn)
            .await
            .ok()
            .flatten()
            .map(|r| {
                let id: u64 = r.try_get(0).unwrap_or(0);
                let host: String = r.try_get(1).unwrap_or_default();
                format!("connection {id} from {host}")
            })
            .unwrap_or_else(|| "another connection".to_owned());
            return Err(Error::conflict(format!(
                "another jobsched scheduler ({holder}) is running on {shown}: without ZooKeeper only one \
                 scheduler may use a store; stop it, or run every scheduler with --zookeeper (and --kafka) \
                 so that they elect one"
            )));
        }
        let (tx, lost) = watch::channel(None);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                let mine: std::result::Result<Option<i64>, _> = sqlx::query_scalar(
                    "SELECT IS_USED_LOCK(CONCAT('jobsched.scheduler.', DATABASE())) = CONNECTION_ID()",
                )
                .fetch_one(&mut conn)
                .await;
                match mine {
                    Ok(Some(1)) => {}
                    Ok(_) => {
                        let _ = tx.send(Some("the lock is held by another connection".into()));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Some(format!("its connection failed: {e}")));
                        return;
                    }
                }
            }
        });
        tracing::info!(store = %shown, "holding the store's scheduler lock");
        Ok(SchedulerLock { lost, task })
    }

    /// Resolves with the reason once the lock is no longer held (its connection failed: the server may
    /// have released it). A scheduler must stop then: another may have taken it.
    pub async fn lost(&self) -> String {
        let mut rx = self.lost.clone();
        match rx.wait_for(|v| v.is_some()).await {
            Ok(v) => v.clone().unwrap_or_default(),
            Err(_) => "the lock's watcher stopped".to_owned(),
        }
    }
}

impl Drop for SchedulerLock {
    fn drop(&mut self) {
        self.task.abort();
    }
}
