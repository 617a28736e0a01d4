//! The ZooKeeper session a coordinator holds: opened on first use and again after the previous one
//! ended, with the two signals the recipes need — `lost` (the session ended: its ephemeral nodes are gone)
//! and `connected` (the current connected period; it ends on any disconnection, when a leader or lock
//! holder can no longer be sure it still holds).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jobsched::{Error, Result};
use tokio_util::sync::CancellationToken;
use zookeeper_client::{Acls, Client, CreateMode, SessionState};

use crate::config::ZkConfig;
use crate::error::{BACKEND, zk};

/// One session.
pub(crate) struct Sess {
    /// Counts sessions of this coordinator: a handle made in an earlier session acts on nothing.
    pub generation: u64,
    pub client: Client,
    /// Fires when the session has ended (expired, closed, failed).
    pub lost: CancellationToken,
    connected: Arc<Mutex<CancellationToken>>,
    /// The ACL of every node this session creates: the session's own identity only when it
    /// authenticated, else open to anyone.
    pub acls: Acls<'static>,
}

impl Sess {
    /// A token that fires at the end of the current connected period (or of the session).
    pub fn connected_period(&self) -> CancellationToken {
        lock(&self.connected).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a coordinator shares with its handles and background tasks.
pub(crate) struct Inner {
    pub cfg: ZkConfig,
    current: tokio::sync::Mutex<Option<Arc<Sess>>>,
    gens: AtomicU64,
    closed: AtomicBool,
    /// Fires when the coordinator is closed: background watchers stop.
    pub closing: CancellationToken,
}

impl Drop for Inner {
    /// Background watchers stop before the session's client (a field) is dropped.
    fn drop(&mut self) {
        self.closing.cancel();
    }
}

impl Inner {
    pub fn new(cfg: ZkConfig) -> Self {
        Inner {
            cfg,
            current: tokio::sync::Mutex::new(None),
            gens: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            closing: CancellationToken::new(),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The live session, opening one if there is none (or the last one ended).
    pub async fn session(&self) -> Result<Arc<Sess>> {
        if self.is_closed() {
            return Err(Error::Closed {
                component: "zookeeper coordinator",
            });
        }
        let mut cur = self.current.lock().await;
        if let Some(s) = cur.as_ref() {
            if !s.lost.is_cancelled() {
                return Ok(s.clone());
            }
        }
        let s = Arc::new(self.open().await?);
        *cur = Some(s.clone());
        Ok(s)
    }

    /// The live session if it is generation `generation`.
    pub async fn session_if(&self, generation: u64) -> Option<Arc<Sess>> {
        let cur = self.current.lock().await;
        cur.as_ref()
            .filter(|s| s.generation == generation && !s.lost.is_cancelled())
            .cloned()
    }

    async fn open(&self) -> Result<Sess> {
        let cfg = &self.cfg;
        let connect = async {
            let mut connector = Client::connector()
                .with_session_timeout(cfg.session_timeout)
                .with_connection_timeout(cfg.connect_timeout);
            if let Some(d) = &cfg.digest {
                connector = connector.with_auth("digest", &d.auth());
            }
            connector.connect(&cfg.hosts).await
        };
        let acls = if cfg.digest.is_some() {
            Acls::creator_all()
        } else {
            Acls::anyone_all()
        };
        let client = tokio::time::timeout(cfg.connect_timeout * 2, connect)
            .await
            .map_err(|_| {
                Error::unavailable(
                    BACKEND,
                    format!(
                        "no ZooKeeper server at {} answered within {:?}",
                        cfg.hosts,
                        cfg.connect_timeout * 2
                    ),
                )
            })?
            .map_err(|e| {
                Error::unavailable(
                    BACKEND,
                    format!("cannot connect to ZooKeeper at {}: {e}", cfg.hosts),
                )
            })?;
        if cfg.root != "/" {
            match client
                .mkdir(&cfg.root, &CreateMode::Persistent.with_acls(acls))
                .await
            {
                Ok(()) => {}
                Err(e) => return Err(zk(e, "creating the root znode")),
            }
        }
        let client = client.chroot(cfg.root.clone()).map_err(|_| {
            Error::invalid(
                "zookeeper",
                format!("'{}' is not a valid root path", cfg.root),
            )
        })?;
        let generation = self.gens.fetch_add(1, Ordering::Relaxed) + 1;
        let lost = CancellationToken::new();
        let connected = Arc::new(Mutex::new(lost.child_token()));
        let mut states = client.state_watcher();
        let (lost2, connected2) = (lost.clone(), connected.clone());
        let session_id = client.session_id();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    state = states.changed() => match state {
                        SessionState::Disconnected => {
                            tracing::warn!(%session_id, "disconnected from ZooKeeper: leaderships and locks of this session are given up");
                            let mut c = lock(&connected2);
                            c.cancel();
                            *c = lost2.child_token();
                        }
                        SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                            tracing::info!(%session_id, "connected to ZooKeeper");
                        }
                        terminal => {
                            tracing::warn!(%session_id, state = ?terminal, "ZooKeeper session ended");
                            lost2.cancel();
                            break;
                        }
                    },
                    _ = lost2.cancelled() => break,
                }
            }
        });
        tracing::info!(%session_id, hosts = %cfg.hosts, root = %cfg.root, "ZooKeeper session open");
        Ok(Sess {
            generation,
            client,
            lost,
            connected,
            acls,
        })
    }

    /// Ends the session and refuses further calls. The session's ephemeral nodes go once every clone of
    /// its client is dropped: background tasks stop at `closing` and release theirs.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.closing.cancel();
        if let Some(s) = self.current.lock().await.take() {
            s.lost.cancel();
        }
    }
}
