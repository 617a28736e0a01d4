//! Active tasks in the engine's memory and the queue of tasks ready to dispatch.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};

use crate::fastmap::FastMap;

use chrono::{DateTime, Utc};

use std::sync::Arc;

use crate::model::{CancelReason, ExecutionRecord, ExecutorId, Job, TaskId};

/// Where an active attempt is, as the engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Phase {
    /// Queued until its due time (a retry waiting for its interval).
    Waiting,
    /// Queued and due: waits in the ready queue for an executor.
    Ready,
    /// Queued behind an active run of the same job (overlap policy `queue`).
    Held,
    /// Chosen for an executor; the write recording it is in flight (the message goes when it completes).
    Dispatching { executor: ExecutorId, epoch: u64 },
    /// Given to an executor, not started.
    Dispatched { executor: ExecutorId, epoch: u64 },
    /// Started on an executor.
    Running { executor: ExecutorId, epoch: u64 },
}

impl Phase {
    pub fn executor(&self) -> Option<(&ExecutorId, u64)> {
        match self {
            Phase::Dispatching { executor, epoch }
            | Phase::Dispatched { executor, epoch }
            | Phase::Running { executor, epoch } => Some((executor, *epoch)),
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
    /// Set once a cancel was asked for.
    pub cancel: Option<CancelReason>,
    /// When the engine saw it start (for the timeout backstop).
    pub started_seen: Option<DateTime<Utc>>,
    /// When it was last sent to its executor (for the re-send sweep).
    pub sent_at: Option<DateTime<Utc>>,
    /// Its terminal result is being written (the write is in flight).
    pub finishing: bool,
    /// Its job as of the fire (routing and selector come from it; `None` if the job is gone).
    pub job: Option<Arc<Job>>,
    /// Whether its job follows its runs (see `JobState::tracks_runs`).
    pub tracked: bool,
}

/// Tasks waiting for an executor: highest priority first, first-in first-out among equals. One queue per
/// priority level: there are few distinct priorities, so this is O(1) per task where a heap would be
/// O(log n) with a cache miss per level.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    levels: BTreeMap<Reverse<i32>, VecDeque<(u64, TaskId)>>,
}

impl ReadyQueue {
    /// Queues a task behind the others of its priority.
    pub fn push(&mut self, t: &ActiveTask) {
        self.levels
            .entry(Reverse(t.rec.priority))
            .or_default()
            .push_back((t.generation, t.rec.task_id.clone()));
    }

    /// Puts a task back at the head of its priority (it was popped but could not be placed).
    pub fn push_front(&mut self, t: &ActiveTask) {
        self.levels
            .entry(Reverse(t.rec.priority))
            .or_default()
            .push_front((t.generation, t.rec.task_id.clone()));
    }

    /// Entries by priority, highest first (a few may be stale).
    pub fn by_priority(&self) -> Vec<(i32, u64)> {
        self.levels
            .iter()
            .map(|(p, q)| (p.0, q.len() as u64))
            .collect()
    }

    /// Pops the best entry that is still ready.
    pub fn pop(&mut self, tasks: &FastMap<TaskId, Box<ActiveTask>>) -> Option<TaskId> {
        loop {
            let mut level = self.levels.first_entry()?;
            let Some((generation, task)) = level.get_mut().pop_front() else {
                level.remove();
                continue;
            };
            if level.get().is_empty() {
                level.remove();
            }
            if tasks
                .get(&task)
                .is_some_and(|t| t.phase == Phase::Ready && t.generation == generation)
            {
                return Some(task);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Entries queued (a few may be stale: tasks cancelled while waiting).
    pub fn len(&self) -> usize {
        self.levels.values().map(VecDeque::len).sum()
    }
}
