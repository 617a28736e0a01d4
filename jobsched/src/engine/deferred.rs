//! Work the engine put off: one queue for everything a failed write (or send, or read) left undone, and
//! the delayed `running` marks.
//!
//! The rule for the queue is the same for every kind of work: when a storage or broker call fails, the
//! engine backs off (100 ms doubling to 5 s, see `Engine::backend_failed`) and puts the work here; the first
//! loop turn after the backoff takes everything out, in order, and does it again. Work that fails again
//! comes back with the next backoff. Nothing is dropped, and nothing is retried while backing off.
//!
//! Executor losses whose tasks have a write in flight wait for the writes instead (`after_writes`): the
//! outcome of the write decides whether the task is still the lost executor's.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::dispatch::Delivery;
use crate::model::{ExecutorId, Task, TaskId, TaskResult};

/// One piece of deferred work.
#[derive(Debug)]
pub(crate) enum Work {
    /// Results whose write failed; they are not acknowledged, so nothing is lost if the process dies.
    Results(Vec<Delivery<TaskResult>>),
    /// Task messages to send (again): after a failed send, or found dispatched at a takeover.
    Send(Vec<Task>),
    /// An attempt whose state must be read back (a write found it changed, and the read failed).
    Reconcile { task_id: TaskId, attempt: u32 },
    /// An executor incarnation that left: its tasks are to be failed over.
    ExecutorLost { executor: ExecutorId, epoch: u64 },
    /// `running` marks whose write failed.
    RunningMarks(Vec<RunningMark>),
}

/// The deferred work, in the order it was deferred.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    due: VecDeque<Work>,
    /// Waits until the writes in flight complete (then it is due).
    after_writes: Vec<Work>,
}

impl Deferred {
    /// Defers work to the next healthy turn.
    pub fn push(&mut self, work: Work) {
        self.due.push_back(work);
    }

    /// Notes an executor loss to handle (once per incarnation).
    pub fn executor_lost(&mut self, executor: ExecutorId, epoch: u64) {
        let known = self.due.iter().any(
            |w| matches!(w, Work::ExecutorLost { executor: e, epoch: p } if *e == executor && *p == epoch),
        );
        if !known {
            self.due.push_back(Work::ExecutorLost { executor, epoch });
        }
    }

    /// Notes an executor loss to handle again once the writes in flight have completed.
    pub fn executor_lost_after_writes(&mut self, executor: ExecutorId, epoch: u64) {
        let known = self.after_writes.iter().any(
            |w| matches!(w, Work::ExecutorLost { executor: e, epoch: p } if *e == executor && *p == epoch),
        );
        if !known {
            self.after_writes
                .push(Work::ExecutorLost { executor, epoch });
        }
    }

    /// A write completed: what waited for writes is due.
    pub fn writes_completed(&mut self) {
        for w in std::mem::take(&mut self.after_writes) {
            match w {
                Work::ExecutorLost { executor, epoch } => self.executor_lost(executor, epoch),
                other => self.push(other),
            }
        }
    }

    /// Everything due, to do now (in order).
    pub fn take_due(&mut self) -> VecDeque<Work> {
        std::mem::take(&mut self.due)
    }

    /// Whether anything is due.
    pub fn has_due(&self) -> bool {
        !self.due.is_empty()
    }

    /// Whether results wait for their write: no new results are taken until they are recorded.
    pub fn holds_results(&self) -> bool {
        self.due.iter().any(|w| matches!(w, Work::Results(_)))
    }
}

/// A `running` state to write once its delay has passed (unless the attempt has ended or moved on).
#[derive(Clone, Debug)]
pub(crate) struct RunningMark {
    pub task_id: TaskId,
    pub attempt: u32,
    /// The attempt's generation when it was seen starting: a mark of an attempt that moved on is dropped.
    pub generation: u64,
    pub start_time: DateTime<Utc>,
    /// When it is written.
    pub due: Instant,
}

/// Delayed `running` marks. One delay for all, so the queue is in due order.
#[derive(Debug, Default)]
pub(crate) struct RunningMarks {
    queue: VecDeque<RunningMark>,
}

impl RunningMarks {
    pub fn push(&mut self, mark: RunningMark) {
        self.queue.push_back(mark);
    }

    /// When the first mark is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|m| m.due)
    }

    /// The marks due at `now` (all of them when `all`), taken off the queue.
    pub fn take_due(&mut self, now: Instant, all: bool) -> Vec<RunningMark> {
        let mut out = Vec::new();
        while self.queue.front().is_some_and(|m| all || m.due <= now) {
            out.extend(self.queue.pop_front());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(s: &str) -> ExecutorId {
        ExecutorId::new(s).unwrap()
    }

    #[test]
    fn executor_losses_are_noted_once_and_wait_for_writes() {
        let mut d = Deferred::default();
        d.executor_lost(exec("a"), 1);
        d.executor_lost(exec("a"), 1);
        d.executor_lost(exec("a"), 2);
        d.executor_lost_after_writes(exec("b"), 1);
        d.executor_lost_after_writes(exec("b"), 1);
        assert_eq!(d.take_due().len(), 2);
        assert!(!d.has_due());
        d.writes_completed();
        let due = d.take_due();
        assert_eq!(due.len(), 1);
        assert!(
            matches!(&due[0], Work::ExecutorLost { executor, epoch: 1 } if executor.as_str() == "b")
        );
    }

    #[test]
    fn results_held_back_are_visible() {
        let mut d = Deferred::default();
        d.push(Work::Send(Vec::new()));
        assert!(!d.holds_results());
        d.push(Work::Results(Vec::new()));
        assert!(d.holds_results());
    }

    #[test]
    fn running_marks_come_due_in_order() {
        let now = Instant::now();
        let mut marks = RunningMarks::default();
        for (i, ms) in [10u64, 20, 30].into_iter().enumerate() {
            marks.push(RunningMark {
                task_id: TaskId::generate(),
                attempt: 1,
                generation: i as u64,
                start_time: Utc::now(),
                due: now + std::time::Duration::from_millis(ms),
            });
        }
        assert_eq!(
            marks.next_due(),
            Some(now + std::time::Duration::from_millis(10))
        );
        let due = marks.take_due(now + std::time::Duration::from_millis(25), false);
        assert_eq!(due.iter().map(|m| m.generation).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(marks.take_due(now, true).len(), 1);
        assert_eq!(marks.next_due(), None);
    }
}
