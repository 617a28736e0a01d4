//! The executor's local queue: tasks taken from the dispatcher and not started yet, highest priority
//! first, first come first served among equals.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::dispatch::AckTag;
use crate::fastmap::FastMap;
use crate::model::{Task, TaskId};

/// An attempt: task and attempt number.
pub(crate) type Key = (TaskId, u32);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    priority: i32,
    seq: Reverse<u64>,
    key: Key,
}

/// Tasks waiting for a slot, each with the tag that acknowledges its delivery.
#[derive(Debug, Default)]
pub(crate) struct LocalQueue {
    heap: BinaryHeap<Entry>,
    tasks: FastMap<Key, (Task, AckTag)>,
    seq: u64,
}

impl LocalQueue {
    /// Queues a task behind those of its priority.
    pub fn push(&mut self, task: Task, tag: AckTag) {
        let key = (task.task_id.clone(), task.attempt);
        self.seq += 1;
        self.heap.push(Entry {
            priority: task.priority,
            seq: Reverse(self.seq),
            key: key.clone(),
        });
        self.tasks.insert(key, (task, tag));
    }

    /// The best waiting task (skipping entries of tasks taken out).
    pub fn pop(&mut self) -> Option<(Task, AckTag)> {
        while let Some(e) = self.heap.pop() {
            if let Some(entry) = self.tasks.remove(&e.key) {
                return Some(entry);
            }
        }
        None
    }

    /// Takes a waiting task out (cancelled before it started).
    pub fn remove(&mut self, key: &Key) -> Option<(Task, AckTag)> {
        self.tasks.remove(key)
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.tasks.contains_key(key)
    }

    /// Tasks waiting.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Empties the queue, returning the delivery tags of what waited.
    pub fn clear(&mut self) -> Vec<AckTag> {
        self.heap.clear();
        self.tasks.drain().map(|(_, (_, tag))| tag).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExecutionRecord, JobSpec, Trigger};

    fn task(priority: i32) -> Task {
        let now = "2026-01-01T00:00:00Z".parse().unwrap();
        let job = JobSpec::manual("q", "true").build(now).unwrap();
        let mut rec =
            ExecutionRecord::first_attempt(&job, TaskId::generate(), Trigger::Manual, now, now);
        rec.priority = priority;
        rec.to_task()
    }

    #[test]
    fn pops_by_priority_then_arrival_and_skips_removed_tasks() {
        let mut q = LocalQueue::default();
        let (a, b, c) = (task(1), task(5), task(5));
        let ids = [&a, &b, &c].map(|t| (t.task_id.clone(), t.attempt));
        for (i, t) in [a, b, c].into_iter().enumerate() {
            q.push(
                t,
                AckTag {
                    stream: 0,
                    seq: i as u64,
                },
            );
        }
        assert_eq!(q.len(), 3);
        assert!(q.remove(&ids[1]).is_some());
        assert_eq!(q.pop().map(|(t, _)| t.task_id), Some(ids[2].0.clone()));
        assert_eq!(q.pop().map(|(t, _)| t.task_id), Some(ids[0].0.clone()));
        assert!(q.pop().is_none() && q.is_empty());
    }
}
