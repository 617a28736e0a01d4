//! [`ZkCoordinator`]: the [`Coordinator`] trait on ZooKeeper.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jobsched::Result;
use jobsched::coord::{Coordinator, Leadership, LockGuard, Members, Registration};
use jobsched::storage::Versioned;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::ZkConfig;
use crate::error::{BACKEND, zk};
use crate::paths::{election_dir, lock_dir};
use crate::session::Inner;
use crate::{kv, members, queue};

type KvReceiver = watch::Receiver<Option<Versioned<Vec<u8>>>>;

/// jobsched's [`Coordinator`] on a ZooKeeper ensemble (tested on ZooKeeper 3.8).
///
/// Holds one session at a time, opened on first use and again after the previous one ended; every
/// registration, leadership and lock belongs to the session that made it. Cheap to clone (shared).
///
/// | what | how |
/// |---|---|
/// | membership | ephemeral `/groups/<group>/<id>`; epoch = creation zxid; watched by one child watch per group |
/// | leadership, locks | ephemeral sequential `/elections|locks/<name>/c-<seq>`; lowest holds; token = seq + 1 |
/// | settings | persistent `/kv/<key>`, compare-and-set on the data version, one data watch per key |
///
/// A leader or lock holder gives up as soon as it is disconnected from the ensemble (`lost` fires): it
/// cannot tell whether its session will outlive the disconnection. Registrations end only with the
/// session (expiry after the session timeout, or `close`).
#[derive(Clone)]
pub struct ZkCoordinator {
    inner: Arc<Inner>,
    groups: Arc<Mutex<HashMap<String, watch::Receiver<Members>>>>,
    keys: Arc<Mutex<HashMap<String, KvReceiver>>>,
}

impl fmt::Debug for ZkCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkCoordinator")
            .field("hosts", &self.inner.cfg.hosts)
            .field("root", &self.inner.cfg.root)
            .field("session_timeout", &self.inner.cfg.session_timeout)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ZkCoordinator {
    /// A coordinator for `config`; connects on first use.
    pub fn new(config: ZkConfig) -> Self {
        if config.digest.is_none() {
            tracing::warn!(hosts = %config.hosts, root = %config.root,
                "no ZooKeeper digest credentials: the nodes jobsched creates are open to anyone who \
                 can reach ZooKeeper");
        }
        ZkCoordinator {
            inner: Arc::new(Inner::new(config)),
            groups: Arc::default(),
            keys: Arc::default(),
        }
    }

    /// Connects now (failing with `Unavailable` naming the servers if none answers): for start-up checks.
    pub async fn connect(config: ZkConfig) -> Result<Self> {
        let c = Self::new(config);
        c.inner.session().await?;
        Ok(c)
    }
}

#[async_trait]
impl Coordinator for ZkCoordinator {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        let sess = self.inner.session().await?;
        sess.client
            .check_stat("/")
            .await
            .map(|_| ())
            .map_err(|e| zk(e, "ping"))
    }

    async fn register(
        &self,
        group: &str,
        id: &str,
        data: serde_json::Value,
    ) -> Result<Box<dyn Registration>> {
        members::register(&self.inner, group, id, data).await
    }

    async fn members(&self, group: &str) -> Result<watch::Receiver<Members>> {
        if self.inner.is_closed() {
            return Err(jobsched::Error::Closed {
                component: "zookeeper coordinator",
            });
        }
        if let Some(rx) = lock(&self.groups).get(group) {
            return Ok(rx.clone());
        }
        // The first receiver starts current (a caller may read it at once); the follower keeps it so.
        let initial = members::current(&self.inner, group).await?;
        let mut groups = lock(&self.groups);
        if let Some(rx) = groups.get(group) {
            return Ok(rx.clone());
        }
        let (tx, rx) = watch::channel(Arc::new(initial));
        tokio::spawn(members::follow_group(
            Arc::downgrade(&self.inner),
            group.to_owned(),
            tx,
        ));
        groups.insert(group.to_owned(), rx.clone());
        Ok(rx)
    }

    async fn campaign(&self, election: &str, candidate: &str) -> Result<Box<dyn Leadership>> {
        let held = queue::acquire(
            &self.inner,
            &election_dir(election),
            candidate,
            None,
            &format!("election {election}"),
        )
        .await?;
        Ok(Box::new(held))
    }

    async fn leader(&self, election: &str) -> Result<Option<String>> {
        queue::head(&self.inner, &election_dir(election)).await
    }

    async fn lock(&self, name: &str, wait: Duration) -> Result<Box<dyn LockGuard>> {
        let deadline = Instant::now() + wait;
        let held = queue::acquire(
            &self.inner,
            &lock_dir(name),
            "lock",
            Some(deadline),
            &format!("lock {name}"),
        )
        .await?;
        Ok(Box::new(queue::HeldLock(held)))
    }

    async fn get(&self, key: &str) -> Result<Option<Versioned<Vec<u8>>>> {
        kv::get(&self.inner, key).await
    }

    async fn put(&self, key: &str, value: &[u8], expected_version: Option<u64>) -> Result<u64> {
        kv::put(&self.inner, key, value, expected_version).await
    }

    async fn watch(&self, key: &str) -> Result<KvReceiver> {
        if self.inner.is_closed() {
            return Err(jobsched::Error::Closed {
                component: "zookeeper coordinator",
            });
        }
        if let Some(rx) = lock(&self.keys).get(key) {
            return Ok(rx.clone());
        }
        let initial = kv::get(&self.inner, key).await?;
        let mut keys = lock(&self.keys);
        if let Some(rx) = keys.get(key) {
            return Ok(rx.clone());
        }
        let (tx, rx) = watch::channel(initial);
        tokio::spawn(kv::follow_key(
            Arc::downgrade(&self.inner),
            key.to_owned(),
            tx,
        ));
        keys.insert(key.to_owned(), rx.clone());
        Ok(rx)
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await;
        lock(&self.groups).clear();
        lock(&self.keys).clear();
        Ok(())
    }
}
