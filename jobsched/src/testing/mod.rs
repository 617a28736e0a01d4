//! The backend conformance suite (feature `testing`): plain async functions, one per behaviour, that every
//! implementation of [`Storage`], [`Dispatcher`] and [`Coordinator`] must pass.
//!
//! The in-process backends run them in this crate's `tests/conformance.rs` on every `cargo test`; each
//! backend crate's `tests/conformance.rs` runs them against its real server. A backend test creates an
//! isolated namespace (a fresh database, a topic prefix, a ZooKeeper chroot), wraps it in an `Open…` value,
//! and calls the function. Functions panic with a message naming the broken guarantee.
//! [`conformance_tests!`](crate::conformance_tests) writes the tests: one per behaviour, the same list for
//! every backend.
//!
//! [`Storage`]: crate::storage::Storage
//! [`Dispatcher`]: crate::dispatch::Dispatcher
//! [`Coordinator`]: crate::coord::Coordinator

pub mod accounts;
pub mod coord;
pub mod dispatch;
pub mod storage;
mod suites;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::coord::{Coordinator, LocalCoordinator};
use crate::dispatch::{ChannelDispatcher, Dispatcher};
use crate::model::{ExecutionRecord, Job, JobId, JobSpec, TaskId, Trigger};
use crate::storage::{MemoryStorage, Storage};

/// How long a conformance check waits for something that should happen (generous, for real servers on a
/// loaded machine; a correct backend answers in milliseconds).
pub const WAIT: Duration = Duration::from_secs(30);

/// Opens handles on the store under test. Every handle reaches the same data, through its own connections,
/// as separate processes would.
#[async_trait]
pub trait OpenStorage: Send + Sync {
    /// A new handle.
    async fn open(&self) -> Arc<dyn Storage>;
}

/// Opens handles on the dispatcher under test (same topics/queues, own connections).
#[async_trait]
pub trait OpenDispatcher: Send + Sync {
    /// A new handle.
    async fn open(&self) -> Arc<dyn Dispatcher>;
}

/// Opens clients of the coordination service under test: each is a separate session (another process).
#[async_trait]
pub trait OpenCoordinator: Send + Sync {
    /// A new client with its own session.
    async fn open(&self) -> Arc<dyn Coordinator>;
}

/// One in-memory store shared by every handle.
#[derive(Debug, Default)]
pub struct MemoryOpener(Arc<MemoryStorage>);

#[async_trait]
impl OpenStorage for MemoryOpener {
    async fn open(&self) -> Arc<dyn Storage> {
        self.0.clone()
    }
}

/// One channel dispatcher shared by every handle.
#[derive(Debug, Default)]
pub struct ChannelOpener(ChannelDispatcher);

#[async_trait]
impl OpenDispatcher for ChannelOpener {
    async fn open(&self) -> Arc<dyn Dispatcher> {
        Arc::new(self.0.clone())
    }
}

/// One local coordination hub; each `open` is a new session on it.
#[derive(Debug, Default)]
pub struct LocalOpener(LocalCoordinator);

#[async_trait]
impl OpenCoordinator for LocalOpener {
    async fn open(&self) -> Arc<dyn Coordinator> {
        Arc::new(self.0.connect())
    }
}

/// The behaviours (conformance functions) defined in a suite module's source: every
/// `pub async fn name(open: &dyn Open…)`. A backend's test file checks that it runs all of them.
fn behaviours_in(source: &'static str) -> Vec<&'static str> {
    source
        .lines()
        .filter_map(|l| l.strip_prefix("pub async fn "))
        .filter(|l| l.contains("(open: &dyn Open"))
        .filter_map(|l| l.split('(').next())
        .collect()
}

/// A fixed time for records made by the suite.
pub fn t0() -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse().expect("valid time")
}

/// A valid job with id `id`.
pub fn sample_job(id: &str) -> Job {
    JobSpec::cron(format!("job {id}"), "*/5 * * * * *", "echo hello")
        .with_job_id(JobId::new(id).expect("valid id"))
        .with_retry(2, 10)
        .with_owner("alice")
        .build(t0())
        .expect("valid job")
}

/// A queued first attempt of `job` fired for `at`.
pub fn sample_record(job: &Job, trigger: Trigger, at: DateTime<Utc>) -> ExecutionRecord {
    ExecutionRecord::first_attempt(job, TaskId::generate(), trigger, at, at)
}
