//! In-process coordination. Several [`LocalCoordinator`]s made with [`LocalCoordinator::connect`] share one
//! hub and behave like separate processes talking to one coordination service: each has its own session.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::{Coordinator, Leadership, LockGuard, Member, Members, Registration};
use crate::error::{Error, Result};
use crate::storage::Versioned;

const BACKEND: &str = "local";

/// Session timeout used when none is given.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(10);

/// A session with an in-process coordination hub.
///
/// In-process sessions do not miss heartbeats by themselves (they live in the process they serve);
/// [`LocalCoordinator::suspend`] stops a session's heartbeats to stand for a hung or partitioned process,
/// and the session then expires after the session timeout, exactly as a ZooKeeper session would.
///
/// ```
/// # tokio_test_block_on(async {
/// use jobsched::coord::{Coordinator, LocalCoordinator};
/// let a = LocalCoordinator::new();
/// let b = a.connect(); // another "process"
/// let lead = a.campaign("leader", "a").await.unwrap();
/// assert_eq!(b.leader("leader").await.unwrap().as_deref(), Some("a"));
/// a.close().await.unwrap();
/// let lead_b = b.campaign("leader", "b").await.unwrap();
/// assert!(lead_b.token() > lead.token());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
pub struct LocalCoordinator {
    hub: Arc<Hub>,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    session: Option<u64>,
    closed: bool,
}

impl fmt::Debug for LocalCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = lock(&self.slot);
        f.debug_struct("LocalCoordinator")
            .field("session", &slot.session)
            .field("closed", &slot.closed)
            .finish()
    }
}

struct Hub {
    state: Mutex<HubState>,
    ttl: Duration,
}

#[derive(Default)]
struct HubState {
    next_session: u64,
    next_epoch: u64,
    next_waiter: u64,
    sessions: HashMap<u64, Session>,
    groups: HashMap<String, Group>,
    mutexes: HashMap<String, Mutx>,
    kv: HashMap<String, watch::Sender<Option<Versioned<Vec<u8>>>>>,
}

struct Session {
    lost: CancellationToken,
    suspended: bool,
}

struct Group {
    members: BTreeMap<String, (Member, u64)>,
    tx: watch::Sender<Members>,
}

impl Group {
    fn new() -> Self {
        Group {
            members: BTreeMap::new(),
            tx: watch::channel(Arc::new(Vec::new())).0,
        }
    }

    fn publish(&self) {
        let list: Vec<Member> = self.members.values().map(|(m, _)| m.clone()).collect();
        self.tx.send_replace(Arc::new(list));
    }
}

/// A mutex with a queue: backs both elections and locks.
#[derive(Default)]
struct Mutx {
    tokens: u64,
    holder: Option<Holder>,
    waiters: VecDeque<Waiter>,
}

struct Holder {
    session: u64,
    candidate: String,
    token: u64,
    lost: CancellationToken,
}

struct Waiter {
    id: u64,
    session: u64,
    candidate: String,
    tx: oneshot::Sender<(u64, CancellationToken)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HubState {
    fn session_alive(&self, id: u64) -> bool {
        self.sessions.contains_key(&id)
    }

    /// Hands the mutex to the next live waiter, if it is free.
    fn promote(&mut self, key: &str) {
        let Some(m) = self.mutexes.get_mut(key) else {
            return;
        };
        if m.holder.is_some() {
            return;
        }
        while let Some(w) = m.waiters.pop_front() {
            let Some(session) = self.sessions.get(&w.session) else {
                continue;
            };
            if w.tx.is_closed() {
                continue;
            }
            m.tokens += 1;
            let lost = session.lost.child_token();
            if w.tx.send((m.tokens, lost.clone())).is_ok() {
                m.holder = Some(Holder {
                    session: w.session,
                    candidate: w.candidate,
                    token: m.tokens,
                    lost,
                });
                return;
            }
        }
    }

    fn release(&mut self, key: &str, token: u64) {
        if let Some(m) = self.mutexes.get_mut(key) {
            if m.holder.as_ref().is_some_and(|h| h.token == token) {
                if let Some(h) = m.holder.take() {
                    h.lost.cancel();
                }
                self.promote(key);
            }
        }
    }

    fn expire(&mut self, session: u64) {
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        s.lost.cancel();
        for g in self.groups.values_mut() {
            let before = g.members.len();
            g.members.retain(|_, (_, owner)| *owner != session);
            if g.members.len() != before {
                g.publish();
            }
        }
        let keys: Vec<String> = self.mutexes.keys().cloned().collect();
        for k in keys {
            let m = self.mutexes.get_mut(&k).expect("key listed");
            m.waiters.retain(|w| w.session != session);
            if m.holder.as_ref().is_some_and(|h| h.session == session) {
                m.holder = None;
                self.promote(&k);
            }
        }
    }
}

impl Default for LocalCoordinator {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalCoordinator {
    /// A new hub and a session with it, with the default session timeout (10 s).
    pub fn new() -> Self {
        Self::with_session_ttl(DEFAULT_SESSION_TTL)
    }

    /// A new hub whose sessions expire `ttl` after their heartbeats stop.
    pub fn with_session_ttl(ttl: Duration) -> Self {
        LocalCoordinator {
            hub: Arc::new(Hub {
                state: Mutex::new(HubState::default()),
                ttl,
            }),
            slot: Mutex::new(Slot::default()),
        }
    }

    /// Another client of the same hub, with its own session (like another process).
    pub fn connect(&self) -> Self {
        LocalCoordinator {
            hub: self.hub.clone(),
            slot: Mutex::new(Slot::default()),
        }
    }

    /// The current session id, opening a session if there is none.
    fn session(&self) -> Result<u64> {
        let mut slot = lock(&self.slot);
        if slot.closed {
            return Err(Error::Closed {
                component: "coordinator session",
            });
        }
        let mut st = lock(&self.hub.state);
        if let Some(id) = slot.session {
            if st.session_alive(id) {
                return Ok(id);
            }
        }
        st.next_session += 1;
        let id = st.next_session;
        st.sessions.insert(
            id,
            Session {
                lost: CancellationToken::new(),
                suspended: false,
            },
        );
        slot.session = Some(id);
        Ok(id)
    }

    /// Stops this session's heartbeats: it expires after the session timeout unless [`resume`]d first.
    /// Stands for a process that hangs (SIGSTOP) or is cut off from the coordination service.
    ///
    /// [`resume`]: LocalCoordinator::resume
    pub fn suspend(&self) {
        let Some(id) = lock(&self.slot).session else {
            return;
        };
        if let Some(s) = lock(&self.hub.state).sessions.get_mut(&id) {
            s.suspended = true;
        }
        let hub = Arc::downgrade(&self.hub);
        let ttl = self.hub.ttl;
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some(hub) = hub.upgrade() {
                let mut st = lock(&hub.state);
                if st.sessions.get(&id).is_some_and(|s| s.suspended) {
                    st.expire(id);
                }
            }
        });
    }

    /// Resumes heartbeats of a suspended session (if it has not expired yet).
    pub fn resume(&self) {
        let Some(id) = lock(&self.slot).session else {
            return;
        };
        if let Some(s) = lock(&self.hub.state).sessions.get_mut(&id) {
            s.suspended = false;
        }
    }

    /// Expires the current session now (as the service would after a missed session timeout).
    pub fn expire(&self) {
        let Some(id) = lock(&self.slot).session else {
            return;
        };
        lock(&self.hub.state).expire(id);
    }

    async fn acquire(&self, key: String, candidate: &str, wait: Option<Duration>) -> Result<Hold> {
        let session = self.session()?;
        let (rx, waiter_id) = {
            let mut st = lock(&self.hub.state);
            st.next_waiter += 1;
            let waiter_id = st.next_waiter;
            let (tx, rx) = oneshot::channel();
            st.mutexes
                .entry(key.clone())
                .or_default()
                .waiters
                .push_back(Waiter {
                    id: waiter_id,
                    session,
                    candidate: candidate.to_owned(),
                    tx,
                });
            st.promote(&key);
            (rx, waiter_id)
        };
        // If this future is dropped while waiting, the guard withdraws the candidacy, or releases the
        // mutex if it was granted in the meantime.
        let mut guard = Withdraw {
            hub: self.hub.clone(),
            key: key.clone(),
            waiter_id,
            rx: Some(rx),
        };
        let rx = guard.rx.as_mut().expect("set above");
        let granted = match wait {
            None => rx.await.ok(),
            Some(d) => match tokio::time::timeout(d, rx).await {
                Ok(r) => r.ok(),
                Err(_) => {
                    return Err(Error::Timeout {
                        operation: format!("lock '{}'", key.trim_start_matches("lock/")),
                        after: d,
                    });
                }
            },
        };
        guard.rx = None;
        let (token, lost) = granted
            .ok_or_else(|| Error::unavailable(BACKEND, "the session ended while waiting"))?;
        Ok(Hold {
            hub: self.hub.clone(),
            key,
            token,
            lost,
        })
    }
}

struct Withdraw {
    hub: Arc<Hub>,
    key: String,
    waiter_id: u64,
    rx: Option<oneshot::Receiver<(u64, CancellationToken)>>,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        let mut st = lock(&self.hub.state);
        if let Some(m) = st.mutexes.get_mut(&self.key) {
            m.waiters.retain(|w| w.id != self.waiter_id);
        }
        if let Ok((token, _)) = rx.try_recv() {
            st.release(&self.key, token);
        }
    }
}

/// A held election or lock.
struct Hold {
    hub: Arc<Hub>,
    key: String,
    token: u64,
    lost: CancellationToken,
}

impl Hold {
    fn release_now(&self) {
        lock(&self.hub.state).release(&self.key, self.token);
    }
}

#[async_trait]
impl Leadership for Hold {
    fn token(&self) -> u64 {
        self.token
    }
    fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }
    async fn resign(self: Box<Self>) -> Result<()> {
        self.release_now();
        Ok(())
    }
}

#[async_trait]
impl LockGuard for Hold {
    fn token(&self) -> u64 {
        self.token
    }
    fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }
    async fn release(self: Box<Self>) -> Result<()> {
        self.release_now();
        Ok(())
    }
}

struct LocalRegistration {
    hub: Arc<Hub>,
    group: String,
    id: String,
    epoch: u64,
    lost: CancellationToken,
}

#[async_trait]
impl Registration for LocalRegistration {
    fn epoch(&self) -> u64 {
        self.epoch
    }
    fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }
    async fn deregister(self: Box<Self>) -> Result<()> {
        let mut st = lock(&self.hub.state);
        if let Some(g) = st.groups.get_mut(&self.group) {
            if g.members
                .get(&self.id)
                .is_some_and(|(m, _)| m.epoch == self.epoch)
            {
                g.members.remove(&self.id);
                g.publish();
            }
        }
        self.lost.cancel();
        Ok(())
    }
}

#[async_trait]
impl Coordinator for LocalCoordinator {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        self.session().map(|_| ())
    }

    async fn register(
        &self,
        group: &str,
        id: &str,
        data: serde_json::Value,
    ) -> Result<Box<dyn Registration>> {
        let session = self.session()?;
        let mut st = lock(&self.hub.state);
        st.next_epoch += 1;
        let epoch = st.next_epoch;
        let lost = st.sessions[&session].lost.child_token();
        let g = st.groups.entry(group.to_owned()).or_insert_with(Group::new);
        if let Some((_, owner)) = g.members.get(id) {
            if *owner != session {
                return Err(Error::AlreadyExists {
                    kind: "member",
                    id: format!("{group}/{id}"),
                });
            }
        }
        g.members.insert(
            id.to_owned(),
            (
                Member {
                    id: id.to_owned(),
                    epoch,
                    data,
                },
                session,
            ),
        );
        g.publish();
        Ok(Box::new(LocalRegistration {
            hub: self.hub.clone(),
            group: group.to_owned(),
            id: id.to_owned(),
            epoch,
            lost,
        }))
    }

    async fn members(&self, group: &str) -> Result<watch::Receiver<Members>> {
        self.session()?;
        let mut st = lock(&self.hub.state);
        Ok(st
            .groups
            .entry(group.to_owned())
            .or_insert_with(Group::new)
            .tx
            .subscribe())
    }

    async fn campaign(&self, election: &str, candidate: &str) -> Result<Box<dyn Leadership>> {
        let hold = self
            .acquire(format!("election/{election}"), candidate, None)
            .await?;
        Ok(Box::new(hold))
    }

    async fn leader(&self, election: &str) -> Result<Option<String>> {
        self.session()?;
        let st = lock(&self.hub.state);
        Ok(st
            .mutexes
            .get(&format!("election/{election}"))
            .and_then(|m| m.holder.as_ref())
            .map(|h| h.candidate.clone()))
    }

    async fn lock(&self, name: &str, wait: Duration) -> Result<Box<dyn LockGuard>> {
        let hold = self.acquire(format!("lock/{name}"), "", Some(wait)).await?;
        Ok(Box::new(hold))
    }

    async fn get(&self, key: &str) -> Result<Option<Versioned<Vec<u8>>>> {
        self.session()?;
        let st = lock(&self.hub.state);
        Ok(st.kv.get(key).and_then(|tx| tx.borrow().clone()))
    }

    async fn put(&self, key: &str, value: &[u8], expected_version: Option<u64>) -> Result<u64> {
        self.session()?;
        let mut st = lock(&self.hub.state);
        let tx = st
            .kv
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(None).0);
        let current = tx.borrow().as_ref().map(|v| v.version).unwrap_or(0);
        if let Some(e) = expected_version {
            if e != current {
                return Err(Error::conflict(format!(
                    "key '{key}' is at version {current}, the write expected version {e}"
                )));
            }
        }
        let version = current + 1;
        tx.send_replace(Some(Versioned {
            value: value.to_vec(),
            version,
        }));
        Ok(version)
    }

    async fn watch(&self, key: &str) -> Result<watch::Receiver<Option<Versioned<Vec<u8>>>>> {
        self.session()?;
        let mut st = lock(&self.hub.state);
        Ok(st
            .kv
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe())
    }

    async fn close(&self) -> Result<()> {
        let mut slot = lock(&self.slot);
        slot.closed = true;
        if let Some(id) = slot.session.take() {
            lock(&self.hub.state).expire(id);
        }
        Ok(())
    }
}
