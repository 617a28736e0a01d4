//! Per-task timers (retry due, timeout backstop, re-dispatch, cancel grace) in one heap.
//!
//! Each timer carries the generation of its task at the time it was set; a task that moves on bumps its
//! generation, so its old timers are recognised as stale when they surface instead of being searched for.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Utc};

use crate::model::TaskId;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// A waiting attempt (retry) becomes ready.
    Due,
    /// The attempt ran past timeout + grace without a result.
    Deadline,
    /// A cancelled attempt was not confirmed: record it cancelled.
    CancelGrace,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: i64,
    seq: u64,
    kind: TimerKind,
    generation: u64,
    task: TaskId,
}

/// A fired timer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Fired {
    pub task: TaskId,
    pub generation: u64,
    pub kind: TimerKind,
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl Timers {
    pub fn set(&mut self, task: TaskId, generation: u64, kind: TimerKind, at: DateTime<Utc>) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at: at.timestamp_millis(),
            seq: self.seq,
            kind,
            generation,
            task,
        }));
    }

    pub fn peek_time(&self) -> Option<DateTime<Utc>> {
        self.heap
            .peek()
            .and_then(|Reverse(e)| DateTime::from_timestamp_millis(e.at))
    }

    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Option<Fired> {
        if self.heap.peek()?.0.at > now.timestamp_millis() {
            return None;
        }
        let Reverse(e) = self.heap.pop()?;
        Some(Fired {
            task: e.task,
            generation: e.generation,
            kind: e.kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_order_at_or_before_now() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut timers = Timers::default();
        let a = TaskId::generate();
        let b = TaskId::generate();
        timers.set(a.clone(), 1, TimerKind::Deadline, t("2026-01-01T00:00:02Z"));
        timers.set(b.clone(), 7, TimerKind::Due, t("2026-01-01T00:00:01Z"));
        assert_eq!(timers.peek_time(), Some(t("2026-01-01T00:00:01Z")));
        assert_eq!(timers.pop_due(t("2026-01-01T00:00:00Z")), None);
        let f = timers.pop_due(t("2026-01-01T00:00:05Z")).unwrap();
        assert_eq!((f.task, f.generation, f.kind), (b, 7, TimerKind::Due));
        let f = timers.pop_due(t("2026-01-01T00:00:05Z")).unwrap();
        assert_eq!((f.task, f.kind), (a, TimerKind::Deadline));
        assert!(timers.pop_due(t("2026-01-01T00:00:05Z")).is_none());
    }
}
