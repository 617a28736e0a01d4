//! The engine's state: what every part of a scheduler shares, the requests the engine takes, and the
//! `Engine` itself (the tables it keeps and the calls it has in flight), with the few helpers every part
//! of it uses. What the engine does lives in the modules next to this one, one concern each; they import
//! from here and from the tables, never from each other.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::time::Instant;
use tracing::warn;

use super::deferred::{Deferred, RunningMarks};
use super::executor_view::ExecutorView;
use super::jobs::JobTable;
use super::task_table::TaskTable;
use super::writes::{Op, Writes};
use super::{CancelOutcome, Event, SchedulerConfig};
use crate::clock::{SharedClock, secs};
use crate::coord::{Coordinator, Members};
use crate::dispatch::{Dispatcher, Inbox};
use crate::error::{Error, Result};
use crate::fastmap::FastMap;
use crate::model::{JobId, Params, SystemConfig, TaskId, TaskResult};
use crate::storage::{Fence, Storage, Versioned};

/// What every part of a scheduler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub storage: Arc<dyn Storage>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub coordinator: Arc<dyn Coordinator>,
    pub clock: SharedClock,
    pub config: SchedulerConfig,
    pub events: broadcast::Sender<Event>,
    pub metrics: crate::metrics::Metrics,
    /// The fencing token of this process's leadership while it leads (0 otherwise).
    pub term: std::sync::atomic::AtomicU64,
}

/// Requests from [`Scheduler`](super::Scheduler) handles to the engine of this process.
#[derive(Debug)]
pub(crate) enum Command {
    /// Storage changed (jobs, executors): read it again.
    Sync,
    /// Run a job now as task `task_id`.
    Execute {
        job_id: JobId,
        task_id: TaskId,
        params: Option<Params>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Cancel a task.
    Cancel {
        task_id: TaskId,
        reply: oneshot::Sender<Result<CancelOutcome>>,
    },
    /// Cancel every active task of a job.
    CancelJob {
        job_id: JobId,
        reply: oneshot::Sender<Result<usize>>,
    },
    /// The next fires (of one owner's jobs, or all).
    Upcoming {
        limit: usize,
        owner: Option<String>,
        reply: oneshot::Sender<Result<Vec<super::UpcomingFire>>>,
    },
    /// Report what the engine holds.
    Stats {
        reply: oneshot::Sender<Result<super::EngineStats>>,
    },
}

/// Why the engine stopped.
#[derive(Debug)]
pub(crate) enum Exit {
    Shutdown,
    Lost(String),
}

/// Polling intervals of the housekeeping work.
#[derive(Debug)]
pub(crate) struct Ticks {
    pub heartbeat: Instant,
    pub watermark: Instant,
    pub poll: Instant,
    pub purge: Instant,
    pub polls_since_full_scan: u32,
}

pub(crate) struct Engine {
    pub sh: Arc<Shared>,
    pub fence: Fence,
    pub sys: SystemConfig,
    /// The storage version of `sys`.
    pub sys_version: u64,
    pub jobs: JobTable,
    /// The revision up to which job changes have been read.
    pub job_cursor: u64,
    pub tasks: TaskTable,
    pub execs: ExecutorView,
    pub results: Box<dyn Inbox<TaskResult>>,
    pub members: watch::Receiver<Members>,
    pub config_rx: watch::Receiver<Option<Versioned<Vec<u8>>>>,
    pub nudge_rx: watch::Receiver<Option<Versioned<Vec<u8>>>>,
    /// Writes in flight.
    pub writes: Writes,
    /// Work a failed call left undone, done again after the backoff.
    pub deferred: Deferred,
    /// `running` states to write once their delay passes.
    pub running_marks: RunningMarks,
    /// Next sweep for dispatched tasks that have not started (sent again after `redispatch_after_secs`).
    pub redispatch_sweep: Instant,
    /// When the last successful read of job changes started: the watermark stays below it, so a job created
    /// elsewhere and not read yet cannot have its first fire passed by the watermark.
    pub jobs_synced_at: Option<DateTime<Utc>>,
    /// Runs of jobs that follow their runs, recorded by fire writes still in flight.
    pub runs_in_flight: FastMap<JobId, usize>,
    /// The membership changed: read it again.
    pub members_dirty: bool,
    /// Storage may have changed (poll or nudge): read it again.
    pub sync_dirty: bool,
    /// The highest record id seen: the incremental scan for active attempts starts after it.
    pub active_cursor: i64,
    pub backoff: Duration,
    pub backoff_until: Option<Instant>,
    /// Set when a newer scheduler fenced this one off: the engine steps down.
    pub fenced: Option<String>,
    pub ticks: Ticks,
    /// The history purge running in the background, if one is.
    pub purge: Option<tokio::task::JoinHandle<()>>,
}

impl Engine {
    /// The scheduler clock's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.sh.clock.now()
    }

    /// Sends an event to the subscribers, if there are any.
    pub fn emit(&self, ev: Event) {
        if self.sh.events.receiver_count() > 0 {
            let _ = self.sh.events.send(ev);
        }
    }

    /// Notes a failed storage or broker call: fencing ends the engine, anything else backs off (100 ms
    /// doubling to 5 s). The caller defers the work it could not do (see `deferred`).
    pub fn backend_failed(&mut self, what: &str, e: Error) {
        if let Error::Fenced { .. } = e {
            warn!(error = %e, "{what}: fenced by a newer scheduler; stepping down");
            self.fenced = Some(e.to_string());
            return;
        }
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
        self.backoff_until = Some(Instant::now() + self.backoff);
        warn!(error = %e, retry_in_ms = self.backoff.as_millis() as u64, "{what} failed; will retry");
    }

    /// Notes a successful storage or broker call: the backoff ends.
    pub fn backend_ok(&mut self) {
        self.backoff = Duration::ZERO;
        self.backoff_until = None;
    }

    /// Not fenced off and not backing off: storage and broker calls may be made.
    pub fn healthy(&self) -> bool {
        self.fenced.is_none() && self.backoff_until.is_none_or(|t| Instant::now() >= t)
    }

    /// Starts a write through the pipeline; its outcome is applied when it completes.
    pub fn submit(&mut self, op: Op) {
        op.for_each_insert(|t| self.tasks.begin_insert(t));
        self.writes
            .submit(op, self.sh.storage.clone(), self.fence.clone());
    }
}

/// A number of seconds from the configuration as a time span (saturating).
pub(crate) fn span_secs(s: u32) -> TimeDelta {
    TimeDelta::from_std(secs(s)).unwrap_or(TimeDelta::MAX)
}
