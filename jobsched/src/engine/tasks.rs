//! Active tasks in the engine's memory and the queue of tasks ready to dispatch.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::fastmap::FastMap;

use chrono::{DateTime, Utc};

use crate::model::{CancelReason, ExecutionRecord, ExecutorId, TaskId};

/// Where an active attempt is, as the engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Phase {
    /// Queued until its due time (a retry waiting for its interval).
    Waiting,
    /// Queued and due: waits in the ready queue for an executor.
    Ready,
    /// Queued behind an active run of the same job (overlap policy `queue`).
    Held,
    /// Given to an executor, not started.
    Dispatched { executor: ExecutorId, epoch: u64 },
    /// Started on an executor.
    Running { executor: ExecutorId, epoch: u64 },
}

impl Phase {
    pub fn executor(&self) -> Option<(&ExecutorId, u64)> {
        match self {
            Phase::Dispatched { executor, epoch } | Phase::Running { executor, epoch } => {
                Some((executor, *epoch))
            }
            _ => None,
        }
    }

    pub fn is_queued(&self) -> bool {
        matches!(self, Phase::Waiting | Phase::Ready | Phase::Held)
    }
}

/// The current attempt of an active task.
#[derive(Debug)]
pub(crate) struct ActiveTask {
    /// The attempt's record as stored (kept current with every applied update).
    pub rec: ExecutionRecord,
    pub phase: Phase,
    /// Bumped on every phase change, to tell stale timers and queue entries apart.
    pub generation: u64,
    /// FIFO order among equal priorities.
    pub seq: u64,
    /// Set once a cancel was asked for.
    pub cancel: Option<CancelReason>,
    /// When the engine saw it start (for the timeout backstop).
    pub started_seen: Option<DateTime<Utc>>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ReadyEntry {
    priority: i32,
    seq: Reverse<u64>,
    generation: u64,
    task: TaskId,
}

/// Tasks waiting for an executor: highest priority first, first-in first-out among equals.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    heap: BinaryHeap<ReadyEntry>,
}

impl ReadyQueue {
    pub fn push(&mut self, t: &ActiveTask) {
        self.heap.push(ReadyEntry {
            priority: t.rec.priority,
            seq: Reverse(t.seq),
            generation: t.generation,
            task: t.rec.task_id.clone(),
        });
    }

    /// Pops the best entry that is still ready.
    pub fn pop(&mut self, tasks: &FastMap<TaskId, ActiveTask>) -> Option<TaskId> {
        while let Some(e) = self.heap.pop() {
            if tasks
                .get(&e.task)
                .is_some_and(|t| t.phase == Phase::Ready && t.generation == e.generation)
            {
                return Some(e.task);
            }
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
