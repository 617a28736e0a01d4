//! The scheduling engine and the [`Scheduler`] handle applications and the HTTP API use.
//!
//! One engine runs per cluster at a time: every scheduler process campaigns for [`SCHEDULER_LEADER`]
//! and the winner runs the engine with the election's fencing token; the others are hot standbys that
//! serve the API (they write to storage and nudge the leader). The engine keeps jobs, timers and the ready
//! queue in memory and makes every state change as a fenced, conditional write to storage, so a new leader
//! rebuilds the same state from storage.
//!
//! [`SCHEDULER_LEADER`]: crate::coord::SCHEDULER_LEADER

// Layers, each importing only from those above it:
// 1. tables and plans, free of I/O: `tasks`, `timers`, `task_table`, `jobs`, `executor_view`, `fire_plan`,
//    `deferred`, `records`, and `writes` (the storage operations in flight);
// 2. `actor`: the engine's state and the helpers every part uses;
// 3. what the engine does, one concern each (`impl Engine`): `takeover`, `fire`, `assign`, `results`,
//    `membership`, `deadlines`, `lifecycle`, `commands`, `housekeeping`;
// 4. `run`: the loop that receives events and calls them; `supervisor` (leadership) and `handle`
//    (the `Scheduler` API) on top.
mod actor;
mod assign;
mod audited;
mod commands;
mod deadlines;
mod deferred;
mod executor_view;
mod fire;
mod fire_plan;
mod handle;
mod housekeeping;
mod jobs;
mod lifecycle;
mod membership;
mod purge;
mod records;
mod results;
mod run;
mod supervisor;
mod takeover;
mod task_table;
mod tasks;
mod timers;
mod waiting;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use audited::Audited;
pub use handle::{Scheduler, SchedulerBuilder};

use crate::model::{ExecutionRecord, ExecutorId, JobId, TaskId, TaskStatus, Trigger};

/// Settings of one scheduler process (the cluster-wide ones are in [`SystemConfig`](crate::SystemConfig)).
///
/// Start from the defaults and change what you need (the fields are public; new ones may be added):
///
/// ```
/// use std::time::Duration;
/// use jobsched::SchedulerConfig;
///
/// let config = SchedulerConfig::default()
///     .with_scheduler_id("scheduler-a")
///     .with_poll_interval(Duration::from_secs(1));
/// assert_eq!(config.scheduler_id, "scheduler-a");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SchedulerConfig {
    /// This scheduler's name in the leader election and in logs.
    pub scheduler_id: String,
    /// Most records written to storage in one call.
    pub batch_size: usize,
    /// Bulk storage writes (fires, dispatches, results) in flight at once. The engine goes on working while
    /// they run; more overlap hides more storage latency, up to what the store can take concurrently.
    pub storage_concurrency: usize,
    /// How often the active scheduler re-reads storage for changes made by other processes (a nudge
    /// through the coordinator makes it look at once; this is the fallback).
    pub poll_interval: Duration,
    /// How often executor liveness is written to storage.
    pub heartbeat_interval: Duration,
    /// How often the fire watermark (the time up to which every fire is recorded) is written.
    pub watermark_interval: Duration,
    /// A task's `running` state is written this long after it starts, unless it has ended by then (short
    /// tasks then cost one write for their whole run instead of two).
    pub running_write_delay: Duration,
    /// How often ended records older than the retention are purged.
    pub purge_interval: Duration,
    /// Events buffered per subscriber before a slow one misses some.
    pub event_capacity: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            scheduler_id: format!("scheduler-{}", std::process::id()),
            batch_size: 512,
            storage_concurrency: 4,
            poll_interval: Duration::from_secs(2),
            heartbeat_interval: Duration::from_secs(5),
            watermark_interval: Duration::from_secs(1),
            running_write_delay: Duration::from_millis(250),
            purge_interval: Duration::from_secs(600),
            event_capacity: 4096,
        }
    }
}

impl SchedulerConfig {
    /// Fails with `Invalid` naming the first setting that cannot work.
    pub fn validate(&self) -> crate::Result<()> {
        let positive = [
            ("batch_size", self.batch_size),
            ("storage_concurrency", self.storage_concurrency),
            ("event_capacity", self.event_capacity),
        ];
        for (name, n) in positive {
            if n == 0 {
                return Err(crate::Error::invalid(name, "must be at least 1"));
            }
        }
        let intervals = [
            ("poll_interval", self.poll_interval),
            ("heartbeat_interval", self.heartbeat_interval),
            ("watermark_interval", self.watermark_interval),
            ("purge_interval", self.purge_interval),
        ];
        for (name, d) in intervals {
            if d.is_zero() {
                return Err(crate::Error::invalid(name, "must be longer than zero"));
            }
        }
        if self.scheduler_id.trim().is_empty() {
            return Err(crate::Error::invalid("scheduler_id", "must not be empty"));
        }
        Ok(())
    }

    /// This scheduler's name in the leader election and in logs.
    pub fn with_scheduler_id(mut self, id: impl Into<String>) -> Self {
        self.scheduler_id = id.into();
        self
    }

    /// Most records written to storage in one call.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Bulk storage writes in flight at once.
    pub fn with_storage_concurrency(mut self, n: usize) -> Self {
        self.storage_concurrency = n;
        self
    }

    /// How often storage is re-read for changes made by other processes.
    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// How often executor liveness is written.
    pub fn with_heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat_interval = d;
        self
    }

    /// How often the fire watermark is written.
    pub fn with_watermark_interval(mut self, d: Duration) -> Self {
        self.watermark_interval = d;
        self
    }

    /// How long after it starts a task's `running` state is written (unless it ended by then).
    pub fn with_running_write_delay(mut self, d: Duration) -> Self {
        self.running_write_delay = d;
        self
    }

    /// How often old history is purged.
    pub fn with_purge_interval(mut self, d: Duration) -> Self {
        self.purge_interval = d;
        self
    }

    /// Events buffered per subscriber.
    pub fn with_event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n;
        self
    }
}

/// Something that happened in the engine, for subscribers ([`Scheduler::subscribe`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// This process became the active scheduler (`true`) or stopped being it.
    Leadership {
        /// Active now?
        active: bool,
        /// The fencing token of the leadership.
        token: u64,
    },
    /// A job fired: a task was recorded.
    Fired {
        /// The job.
        job_id: JobId,
        /// The new task.
        task_id: TaskId,
        /// The fire time.
        scheduled_time: DateTime<Utc>,
        /// Why.
        trigger: Trigger,
    },
    /// An attempt ended; the record as stored.
    Finished(Arc<ExecutionRecord>),
}

/// What [`Scheduler::cancel_task`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancelOutcome {
    /// It was queued and is now recorded cancelled.
    Cancelled,
    /// It is on an executor, which was told to kill it; it will be recorded cancelled.
    Cancelling {
        /// The executor running it.
        executor_id: ExecutorId,
    },
    /// It had already ended.
    AlreadyFinished {
        /// How it ended.
        status: TaskStatus,
    },
}

/// A snapshot of the system for `GET /api/system/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct SystemStatus {
    /// jobsched version.
    pub version: String,
    /// Seconds since this scheduler started.
    pub uptime_secs: u64,
    /// This scheduler's id.
    pub scheduler_id: String,
    /// Is this process the active scheduler?
    pub active: bool,
    /// The active scheduler's id, if any.
    pub leader: Option<String>,
    /// Schedulers running (active and standby).
    pub schedulers: u64,
    /// Version of the central configuration this process has seen through the coordinator's watch (0:
    /// none published yet, the defaults apply).
    pub config_version: u64,
    /// Jobs defined.
    pub jobs: u64,
    /// Executors online.
    pub executors_online: u64,
    /// Attempts dispatched or running.
    pub running: u64,
    /// Attempts queued (waiting for an executor or a retry).
    pub queued: u64,
    /// Attempts that ended in the last hour, and how.
    pub last_hour: OutcomeCounts,
    /// Messages this process's dispatcher skipped because they could not be decoded (poison records on
    /// the result topic), since it started; each is logged with where it was.
    pub poison_messages: u64,
}

/// A job's next fire, as the active engine has it scheduled (from [`Scheduler::upcoming`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingFire {
    /// The job.
    pub job_id: crate::model::JobId,
    /// Its name.
    pub name: String,
    /// When it fires.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// What the active engine holds in memory right now (from [`Scheduler::engine_stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EngineStats {
    /// Jobs known to the engine.
    pub jobs: u64,
    /// Jobs with a next fire time.
    pub scheduled: u64,
    /// Fired attempts whose records are being written (they become active when the write completes).
    pub inserting: u64,
    /// Active attempts (queued, dispatched, running).
    pub active_tasks: u64,
    /// Attempts waiting for an executor (the queue length; may count a few just cancelled).
    pub ready: u64,
    /// Attempts waiting for a retry or held by the overlap policy (active minus ready minus in flight).
    pub waiting: u64,
    /// Executors online.
    pub executors_online: u64,
    /// The last job revision read from storage.
    pub job_revision: u64,
    /// The queue length by priority, highest first (`ready` split up).
    #[serde(default)]
    pub ready_by_priority: Vec<(i32, u64)>,
}

/// Ended attempts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeCounts {
    /// Succeeded.
    pub succeeded: u64,
    /// Failed, timed out or lost.
    pub failed: u64,
    /// Cancelled or skipped.
    pub cancelled: u64,
    /// `succeeded / (succeeded + failed)`, 1 when nothing ended.
    pub success_rate: f64,
}

impl OutcomeCounts {
    /// The counts of `hours` (from [`Storage::outcome_hours`](crate::storage::Storage::outcome_hours))
    /// by outcome.
    pub fn of_hours(hours: &[crate::model::OutcomeHour]) -> Self {
        use crate::model::TaskStatus as S;
        let mut c = OutcomeCounts::default();
        for h in hours {
            match h.status {
                S::Succeeded => c.succeeded += h.count,
                S::Failed | S::TimedOut | S::Lost => c.failed += h.count,
                S::Cancelled | S::Skipped => c.cancelled += h.count,
                S::Queued | S::Dispatched | S::Running => {}
            }
        }
        c.success_rate = if c.succeeded + c.failed == 0 {
            1.0
        } else {
            c.succeeded as f64 / (c.succeeded + c.failed) as f64
        };
        c
    }
}
