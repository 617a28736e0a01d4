//! Storage writes in flight, each with its own typed result.
//!
//! The bulk writes of the hot path (fires, manual runs, dispatch marks, results) run as concurrent
//! operations, up to `SchedulerConfig::storage_concurrency` at once, while the engine goes on working;
//! each operation's outcome is applied when it completes. This keeps the engine busy while a database
//! works, and lets an in-process store use another core.
//!
//! What keeps it correct:
//! * A task enters memory only when its insert completes, and its message is sent only when its dispatch
//!   mark completes, so the writes of one task never overtake each other.
//! * While its dispatch mark is in flight a task is `Dispatching`; while its result is in flight it is
//!   `finishing`. Timers, executor loss and cancels wait for (or adapt to) such tasks.
//! * The watermark stays below every fire whose insert is in flight.
//! * A failed write puts its work back where it came from (or in the deferred queue) and the engine
//!   backs off.
//!
//! Which writes go through here, and which the loop awaits: every write whose rate grows with the number
//! of tasks goes through here. The loop awaits the others, each for a reason:
//! * `running` marks: one batch per `running_write_delay`, for the tasks that outlived it; awaiting it
//!   keeps a mark from racing the same attempt's result write (both are conditional, the later one wins).
//! * updates the engine decides (lost, timed out, cancelled): rare, and the caller needs the outcome at
//!   once (a cancel answers its caller; a failover must not hand the task to two executors).
//! * heartbeats (every `heartbeat_interval`), the watermark (every `watermark_interval`) and executor
//!   records (when one joins): one small write each, fenced, whose order against the loop's other work
//!   matters (the watermark must not pass a fire that is still being decided).
//! * the history purge does not block the loop: it runs as a task of its own (`Engine::housekeeping`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinSet};
use tracing::error;

use super::fire_plan::Overlap;
use crate::dispatch::Delivery;
use crate::error::{Error, Result};
use crate::guard::Guarded;
use crate::model::{ExecutionRecord, ExecutorId, Job, JobId, TaskId, TaskResult};
use crate::storage::{ExecutionUpdate, Fence, InsertOutcome, Storage, UpdateOutcome};

/// A due fire time taken off the job heap; put back if its write fails.
#[derive(Debug)]
pub(crate) struct PoppedFire {
    pub job_id: JobId,
    pub at: DateTime<Utc>,
}

/// First attempts of scheduled fires.
#[derive(Debug)]
pub(crate) struct FireBatch {
    pub recs: Vec<ExecutionRecord>,
    pub kinds: Vec<Overlap>,
    pub jobs: Vec<Arc<Job>>,
    pub popped: Vec<PoppedFire>,
}

/// Manual runs and the callers waiting for them.
#[derive(Debug)]
pub(crate) struct ManualRuns {
    pub recs: Vec<ExecutionRecord>,
    pub jobs: Vec<Arc<Job>>,
    pub replies: Vec<oneshot::Sender<Result<()>>>,
}

/// A queued attempt given to an executor incarnation.
#[derive(Clone, Debug)]
pub(crate) struct Assignment {
    pub task_id: TaskId,
    pub executor: ExecutorId,
    pub epoch: u64,
}

/// Queued attempts given to executors.
#[derive(Debug)]
pub(crate) struct DispatchBatch {
    pub picked: Vec<Assignment>,
    pub updates: Vec<ExecutionUpdate>,
}

/// Terminal results from executors.
#[derive(Debug)]
pub(crate) struct ResultBatch {
    pub deliveries: Vec<Delivery<TaskResult>>,
    pub updates: Vec<ExecutionUpdate>,
}

/// A write to start.
#[derive(Debug)]
pub(crate) enum Op {
    Fires(FireBatch),
    ManualRuns(ManualRuns),
    Dispatch(DispatchBatch),
    Results(ResultBatch),
}

/// A completed write: the operation and what storage answered.
#[derive(Debug)]
pub(crate) enum Done {
    Fires(FireBatch, Result<Vec<InsertOutcome>>),
    ManualRuns(ManualRuns, Result<Vec<InsertOutcome>>),
    Dispatch(DispatchBatch, Result<Vec<UpdateOutcome>>),
    Results(ResultBatch, Result<Vec<UpdateOutcome>>),
}

/// A completed write and its sequence number.
#[derive(Debug)]
pub(crate) struct Completed {
    pub id: u64,
    pub done: Done,
}

/// Calls `f` for each task whose record a write inserts (first attempts, or next attempts of retries).
fn each_insert(recs: &[ExecutionRecord], updates: &[ExecutionUpdate], mut f: impl FnMut(&TaskId)) {
    recs.iter().for_each(|r| f(&r.task_id));
    updates
        .iter()
        .filter(|u| u.next_attempt.is_some())
        .for_each(|u| f(&u.task_id));
}

impl Op {
    /// Calls `f` for each task whose record this write inserts.
    pub fn for_each_insert(&self, f: impl FnMut(&TaskId)) {
        match self {
            Op::Fires(b) => each_insert(&b.recs, &[], f),
            Op::ManualRuns(b) => each_insert(&b.recs, &[], f),
            Op::Results(b) => each_insert(&[], &b.updates, f),
            Op::Dispatch(_) => {}
        }
    }
}

impl Done {
    /// Calls `f` for each task whose record this write inserted (or tried to).
    pub fn for_each_insert(&self, f: impl FnMut(&TaskId)) {
        match self {
            Done::Fires(b, _) => each_insert(&b.recs, &[], f),
            Done::ManualRuns(b, _) => each_insert(&b.recs, &[], f),
            Done::Results(b, _) => each_insert(&[], &b.updates, f),
            Done::Dispatch(..) => {}
        }
    }
}

/// Runs a storage call, turning a panic in the backend into an error of that one write.
async fn guarded<T>(call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    match Guarded(Box::pin(call)).await {
        Ok(r) => r,
        Err(panic) => {
            error!(%panic, "a storage call panicked");
            Err(Error::backend(
                "storage",
                format!("the storage backend panicked: {panic}"),
            ))
        }
    }
}

/// The writes in flight.
#[derive(Debug)]
pub(crate) struct Writes {
    inflight: JoinSet<Completed>,
    seq: u64,
    limit: usize,
    /// Fire writes in flight: (write, earliest fire time).
    fires: Vec<(u64, DateTime<Utc>)>,
}

impl Writes {
    /// At most `limit` writes in flight.
    pub fn new(limit: usize) -> Self {
        Writes {
            inflight: JoinSet::new(),
            seq: 0,
            limit: limit.max(1),
            fires: Vec::new(),
        }
    }

    /// True when no more writes may start now.
    pub fn full(&self) -> bool {
        self.inflight.len() >= self.limit
    }

    pub fn is_empty(&self) -> bool {
        self.inflight.is_empty()
    }

    /// Starts a write with `fence`.
    pub fn submit(&mut self, op: Op, storage: Arc<dyn Storage>, fence: Fence) {
        self.seq += 1;
        let id = self.seq;
        if let Op::Fires(b) = &op {
            if let Some(min) = b.recs.iter().map(|r| r.scheduled_time).min() {
                self.fires.push((id, min));
            }
        }
        self.inflight.spawn(async move {
            let fence = Some(&fence);
            let done = match op {
                Op::Fires(b) => {
                    let r = guarded(storage.insert_executions(&b.recs, fence)).await;
                    Done::Fires(b, r)
                }
                Op::ManualRuns(b) => {
                    let r = guarded(storage.insert_executions(&b.recs, fence)).await;
                    Done::ManualRuns(b, r)
                }
                Op::Dispatch(b) => {
                    let r = guarded(storage.update_executions(&b.updates, fence)).await;
                    Done::Dispatch(b, r)
                }
                Op::Results(b) => {
                    let r = guarded(storage.update_executions(&b.updates, fence)).await;
                    Done::Results(b, r)
                }
            };
            Completed { id, done }
        });
    }

    /// The next write to complete (`None` when none is in flight).
    pub async fn join_next(&mut self) -> Option<std::result::Result<Completed, JoinError>> {
        self.inflight.join_next().await
    }

    /// Notes that write `id` completed.
    pub fn completed(&mut self, id: u64) {
        self.fires.retain(|(w, _)| *w != id);
    }

    /// The earliest fire time whose insert is in flight (the watermark must stay below it).
    pub fn fire_floor(&self) -> Option<DateTime<Utc>> {
        self.fires.iter().map(|(_, t)| *t).min()
    }
}
