//! Coordination: membership (service discovery), leadership with fencing tokens, named locks and a
//! watched key-value store for central configuration.
//!
//! A coordinator holds one *session* with its service at a time. Registrations, leaderships and locks
//! belong to the session that made them and end with it: when the session expires (the process hung or
//! lost its connection for longer than the session timeout) or is closed, they are gone for everyone, and
//! their `lost` tokens fire in the owning process. Later calls open a new session.

mod local;
pub(crate) mod published;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use local::LocalCoordinator;

use crate::error::{Error, Result};
use crate::model::ExecutorInfo;
use crate::storage::Versioned;

/// The membership group executors register in.
pub const EXECUTORS: &str = "executors";
/// The membership group schedulers register in.
pub const SCHEDULERS: &str = "schedulers";
/// The election whose leader runs the scheduling engine.
pub const SCHEDULER_LEADER: &str = "scheduler-leader";
/// Key of the system configuration.
pub const CONFIG_KEY: &str = "config";
/// Key bumped after changes the active scheduler must pick up from storage (jobs, executors, queued tasks).
pub(crate) const NUDGE_KEY: &str = "nudge";

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Its id, unique within the group.
    pub id: String,
    /// Grows every time a member registers (a re-registered member has a larger epoch).
    pub epoch: u64,
    /// What it announced.
    pub data: serde_json::Value,
}

/// The members of a group, sorted by id.
pub type Members = Arc<Vec<Member>>;

/// A live registration. Dropping it without [`Registration::deregister`] leaves the member registered
/// until its session ends.
#[async_trait]
pub trait Registration: Send + Sync {
    /// The member's epoch.
    fn epoch(&self) -> u64;
    /// Fires when the registration is gone (its session ended): the member no longer appears to others.
    fn lost(&self) -> CancellationToken;
    /// Removes the member now. Idempotent.
    async fn deregister(self: Box<Self>) -> Result<()>;
}

/// Held leadership of an election.
#[async_trait]
pub trait Leadership: Send + Sync {
    /// Fencing token: larger than the token of every earlier leader of this election.
    fn token(&self) -> u64;
    /// Fires when leadership is lost (session ended); stop acting as leader at once.
    fn lost(&self) -> CancellationToken;
    /// Gives leadership up (the next candidate takes over).
    async fn resign(self: Box<Self>) -> Result<()>;
}

/// A held lock.
#[async_trait]
pub trait LockGuard: Send + Sync {
    /// Fencing token: larger than the token of every earlier holder of this lock.
    fn token(&self) -> u64;
    /// Fires when the lock is lost (session ended).
    fn lost(&self) -> CancellationToken;
    /// Releases the lock.
    async fn release(self: Box<Self>) -> Result<()>;
}

/// Membership, leadership, locks and watched settings shared by every jobsched process.
#[async_trait]
pub trait Coordinator: Send + Sync + fmt::Debug + 'static {
    /// A short name of the backend (`local`, `zookeeper`).
    fn backend(&self) -> &'static str;

    /// Checks that the service answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Registers `id` in `group` with `data`, for the life of the current session. Fails with
    /// `AlreadyExists` while another live session holds the same id in the group (e.g. the previous run of a
    /// restarted process whose session has not expired yet).
    async fn register(
        &self,
        group: &str,
        id: &str,
        data: serde_json::Value,
    ) -> Result<Box<dyn Registration>>;

    /// The members of `group`, kept current: the receiver sees every join and leave (possibly coalesced).
    async fn members(&self, group: &str) -> Result<watch::Receiver<Members>>;

    /// Waits until this session leads `election`, then returns the leadership. At most one session leads an
    /// election at a time, and each new leader's token is larger than every earlier one's. Cancel-safe:
    /// dropping the future withdraws the candidacy.
    async fn campaign(&self, election: &str, candidate: &str) -> Result<Box<dyn Leadership>>;

    /// The current leader's candidate name, if any.
    async fn leader(&self, election: &str) -> Result<Option<String>>;

    /// Takes the lock `name`, waiting at most `wait` (else `Timeout`). Mutual exclusion across sessions;
    /// tokens grow with every holder.
    async fn lock(&self, name: &str, wait: Duration) -> Result<Box<dyn LockGuard>>;

    /// A value and its version.
    async fn get(&self, key: &str) -> Result<Option<Versioned<Vec<u8>>>>;

    /// Writes a value. `expected_version`: `None` unconditionally, `Some(0)` only if absent, `Some(v)` only
    /// at version `v` (else `Conflict`). Returns the new version.
    async fn put(&self, key: &str, value: &[u8], expected_version: Option<u64>) -> Result<u64>;

    /// The value of `key`, kept current.
    async fn watch(&self, key: &str) -> Result<watch::Receiver<Option<Versioned<Vec<u8>>>>>;

    /// Ends the session (its registrations, leaderships and locks end) and refuses further calls.
    async fn close(&self) -> Result<()>;
}

/// Typed conveniences over [`Coordinator`].
#[async_trait]
pub trait CoordinatorExt: Coordinator {
    /// Registers an executor in [`EXECUTORS`].
    async fn register_executor(&self, info: &ExecutorInfo) -> Result<Box<dyn Registration>> {
        let data = serde_json::to_value(info).expect("executor info serialises");
        self.register(EXECUTORS, info.executor_id.as_str(), data)
            .await
    }

    /// Bumps the `nudge` key so the active scheduler re-reads storage.
    async fn nudge(&self) -> Result<()> {
        self.put(NUDGE_KEY, b"", None).await.map(|_| ())
    }
}

impl<C: Coordinator + ?Sized> CoordinatorExt for C {}

/// Decodes an executor's membership entry.
pub(crate) fn executor_info(member: &Member) -> Result<ExecutorInfo> {
    serde_json::from_value(member.data.clone()).map_err(|e| {
        Error::invalid(
            "executor registration",
            format!("member '{}' does not carry executor info: {e}", member.id),
        )
    })
}
