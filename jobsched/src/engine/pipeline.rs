//! Storage writes in flight.
//!
//! The bulk writes (fires, manual runs, dispatch marks, results) run as concurrent operations, up to
//! `SchedulerConfig::storage_concurrency` at once, while the engine goes on with other work; each
//! operation's outcome is applied when it completes. This keeps the engine busy while a database works,
//! and lets an in-process store use another core.
//!
//! What keeps it correct:
//! * A task enters memory only when its insert completes, and its message is sent only when its dispatch
//!   mark completes, so the writes of one task never overtake each other.
//! * While its dispatch mark is in flight a task is `Dispatching`; while its result is in flight it is
//!   `finishing`. Timers, executor loss and cancels wait for (or adapt to) such tasks.
//! * The watermark stays below every fire whose insert is in flight.
//! * A failed write puts its work back where it came from and the engine backs off.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tracing::error;

use super::core::Engine;
use super::fire::Overlap;
use crate::dispatch::Delivery;
use crate::error::{Error, Result};
use crate::guard::Guarded;
use crate::model::{ExecutionRecord, ExecutorId, Job, JobId, TaskId, TaskResult};
use crate::storage::{ExecutionUpdate, InsertOutcome, UpdateOutcome};

/// A write and what to do when it completes.
pub(crate) enum Op {
    /// First attempts of scheduled fires.
    Fires {
        recs: Vec<ExecutionRecord>,
        kinds: Vec<Overlap>,
        jobs: Vec<Arc<Job>>,
        /// The heap entries popped for them, restored if the write fails.
        popped: Vec<(JobId, DateTime<Utc>)>,
    },
    /// Manual runs.
    Executes {
        recs: Vec<ExecutionRecord>,
        jobs: Vec<Arc<Job>>,
        replies: Vec<oneshot::Sender<Result<()>>>,
    },
    /// Queued attempts given to executors.
    Dispatch {
        picked: Vec<(TaskId, ExecutorId, u64)>,
        updates: Vec<ExecutionUpdate>,
    },
    /// Terminal results from executors.
    Results {
        deliveries: Vec<Delivery<TaskResult>>,
        updates: Vec<ExecutionUpdate>,
    },
}

/// What a write returned.
pub(crate) enum Written {
    Inserted(Vec<InsertOutcome>),
    Updated(Vec<UpdateOutcome>),
}

/// A completed write.
pub(crate) struct Done {
    pub id: u64,
    pub op: Op,
    pub result: Result<Written>,
}

impl Engine {
    /// True when no more writes may start now.
    pub fn pipeline_full(&self) -> bool {
        self.inflight.len() >= self.sh.config.storage_concurrency.max(1)
    }

    /// Starts a write.
    pub fn submit(&mut self, op: Op) {
        self.op_seq += 1;
        let id = self.op_seq;
        if let Op::Fires { recs, .. } = &op {
            if let Some(min) = recs.iter().map(|r| r.scheduled_time).min() {
                self.fires_in_flight.push((id, min));
            }
        }
        for_inserted_tasks(&op, |t| {
            self.inserting.insert(t.clone());
        });
        let storage = self.sh.storage.clone();
        let fence = self.fence.clone();
        self.inflight.spawn(async move {
            let call = async {
                match &op {
                    Op::Fires { recs, .. } | Op::Executes { recs, .. } => storage
                        .insert_executions(recs, Some(&fence))
                        .await
                        .map(Written::Inserted),
                    Op::Dispatch { updates, .. } | Op::Results { updates, .. } => storage
                        .update_executions(updates, Some(&fence))
                        .await
                        .map(Written::Updated),
                }
            };
            let result = match Guarded(Box::pin(call)).await {
                Ok(r) => r,
                Err(panic) => {
                    error!(%panic, "a storage call panicked");
                    Err(Error::backend(
                        "storage",
                        format!("the storage backend panicked: {panic}"),
                    ))
                }
            };
            Done { id, op, result }
        });
    }

    /// Applies a completed write.
    pub async fn complete(&mut self, done: Done) {
        self.fires_in_flight.retain(|(id, _)| *id != done.id);
        for_inserted_tasks(&done.op, |t| {
            self.inserting.remove(t);
        });
        match (done.op, done.result) {
            (
                Op::Fires {
                    recs,
                    kinds,
                    jobs,
                    popped,
                },
                result,
            ) => {
                self.complete_fires(recs, kinds, jobs, popped, result.map(inserted))
                    .await
            }
            (
                Op::Executes {
                    recs,
                    jobs,
                    replies,
                },
                result,
            ) => {
                self.complete_executes(recs, jobs, replies, result.map(inserted))
                    .await
            }
            (Op::Dispatch { picked, updates }, result) => {
                self.complete_dispatch(picked, updates, result.map(updated))
                    .await
            }
            (
                Op::Results {
                    deliveries,
                    updates,
                },
                result,
            ) => {
                self.complete_results(deliveries, updates, result.map(updated))
                    .await
            }
        }
    }

    /// Waits for every write in flight and applies it (at shutdown).
    pub async fn drain_pipeline(&mut self) {
        while let Some(done) = self.inflight.join_next().await {
            match done {
                Ok(d) => self.complete(d).await,
                Err(e) => error!(error = %e, "a storage write task failed"),
            }
        }
    }

    /// The earliest fire time whose insert is in flight (the watermark must stay below it).
    pub fn fire_floor(&self) -> Option<DateTime<Utc>> {
        self.fires_in_flight.iter().map(|(_, t)| *t).min()
    }
}

/// Calls `f` for each task whose record an operation inserts (first attempts, or next attempts of retries).
fn for_inserted_tasks(op: &Op, mut f: impl FnMut(&TaskId)) {
    match op {
        Op::Fires { recs, .. } | Op::Executes { recs, .. } => {
            recs.iter().for_each(|r| f(&r.task_id))
        }
        Op::Results { updates, .. } => updates
            .iter()
            .filter(|u| u.next_attempt.is_some())
            .for_each(|u| f(&u.task_id)),
        Op::Dispatch { .. } => {}
    }
}

fn inserted(w: Written) -> Vec<InsertOutcome> {
    match w {
        Written::Inserted(v) => v,
        Written::Updated(_) => unreachable!("an insert returns insert outcomes"),
    }
}

fn updated(w: Written) -> Vec<UpdateOutcome> {
    match w {
        Written::Updated(v) => v,
        Written::Inserted(_) => unreachable!("an update returns update outcomes"),
    }
}
