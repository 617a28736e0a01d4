//! The task table: every active attempt the engine holds, the ready queue, the per-task timers, the
//! generations that tell stale queue entries and timers apart, and the attempts whose insert is in flight.
//!
//! It performs the phase changes (add, make ready, dispatch, start, hold, finish, forget) so that a phase,
//! its generation, its queue entry and its timers always change together. It knows nothing of storage,
//! executors or jobs: the engine decides, the table keeps the books.

use std::ops::Index;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::tasks::{ActiveTask, Phase, ReadyQueue};
use super::timers::{Fired, TimerKind, Timers};
use crate::fastmap::{FastMap, FastSet};
use crate::model::{ExecutionRecord, Job, TaskId};

/// Each attempt counts its generations in a range of its own this wide, so a timer or queue entry left by
/// an earlier attempt of the same task can never match a later one.
const GENERATION_RANGE: u64 = 1 << 20;

/// Active attempts and what is queued or timed for them.
#[derive(Debug, Default)]
pub(crate) struct TaskTable {
    /// Boxed: a task is ~450 bytes, and the map moves its entries when it grows.
    tasks: FastMap<TaskId, Box<ActiveTask>>,
    ready: ReadyQueue,
    timers: Timers,
    /// Start of the generation range of the last attempt added.
    generation_base: u64,
    /// Tasks whose insert (fire, manual run, next attempt) is in flight: a storage scan must not adopt them.
    inserting: FastSet<TaskId>,
}

/// The job a new attempt belongs to, as the engine found it.
#[derive(Clone, Debug, Default)]
pub(crate) struct JobLink {
    /// The job (`None` if it is gone).
    pub job: Option<Arc<Job>>,
    /// Whether the job follows its runs (see `JobState::tracks_runs`).
    pub tracked: bool,
}

impl TaskTable {
    /// Active attempts.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn get(&self, id: &TaskId) -> Option<&ActiveTask> {
        self.tasks.get(id).map(|b| &**b)
    }

    pub fn get_mut(&mut self, id: &TaskId) -> Option<&mut ActiveTask> {
        self.tasks.get_mut(id).map(|b| &mut **b)
    }

    pub fn values(&self) -> impl Iterator<Item = &ActiveTask> {
        self.tasks.values().map(|b| &**b)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut ActiveTask> {
        self.tasks.values_mut().map(|b| &mut **b)
    }

    /// Whether `rec` (or a later attempt of its task) is held, or its insert is in flight.
    pub fn knows(&self, rec: &ExecutionRecord) -> bool {
        self.tasks
            .get(&rec.task_id)
            .is_some_and(|t| t.rec.attempt >= rec.attempt)
            || self.inserting.contains(&rec.task_id)
    }

    /// Takes in a new attempt in `phase` (queued in the ready queue, or timed for its due time) at `now`.
    pub fn add(&mut self, rec: ExecutionRecord, phase: Phase, link: JobLink, now: DateTime<Utc>) {
        self.generation_base += GENERATION_RANGE;
        let generation = self.generation_base;
        let task_id = rec.task_id.clone();
        let mut t = Box::new(ActiveTask {
            rec,
            phase,
            generation,
            cancel: None,
            started_seen: None,
            sent_at: None,
            finishing: false,
            job: link.job,
            tracked: link.tracked,
        });
        match &t.phase {
            Phase::Ready => self.ready.push(&t),
            Phase::Waiting => {
                self.timers
                    .set(task_id.clone(), generation, TimerKind::Due, t.rec.due_time)
            }
            Phase::Dispatched { .. } => t.sent_at = Some(now),
            Phase::Running { .. } => t.started_seen = Some(now),
            Phase::Held | Phase::Dispatching { .. } => {}
        }
        self.tasks.insert(task_id, t);
    }

    /// Moves an attempt to `phase` (a new generation: its queue entry and timers go stale).
    pub fn set_phase(&mut self, id: &TaskId, phase: Phase) -> Option<&mut ActiveTask> {
        let t = self.tasks.get_mut(id)?;
        t.phase = phase;
        t.generation += 1;
        Some(t)
    }

    /// Queues an attempt behind the others of its priority.
    pub fn make_ready(&mut self, id: &TaskId) {
        self.requeue(id, false);
    }

    /// Puts an attempt back at the head of its priority (it was picked but could not be placed), or with
    /// `!front` behind the others.
    pub fn requeue(&mut self, id: &TaskId, front: bool) {
        if let Some(t) = self.tasks.get_mut(id) {
            t.phase = Phase::Ready;
            t.generation += 1;
            if front {
                self.ready.push_front(t);
            } else {
                self.ready.push(t);
            }
        }
    }

    /// Returns a ready attempt that was popped but not moved on to the head of the queue, unchanged.
    pub fn unpop(&mut self, id: &TaskId) {
        if let Some(t) = self.tasks.get(id) {
            self.ready.push_front(t);
        }
    }

    /// The best ready attempt, taken off the queue (its phase stays `Ready` until it is moved on).
    pub fn pop_ready(&mut self) -> Option<TaskId> {
        self.ready.pop(&self.tasks)
    }

    pub fn ready_is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// Entries in the ready queue (a few may be stale: tasks cancelled while waiting).
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Entries in the ready queue by priority, highest first.
    pub fn ready_by_priority(&self) -> Vec<(i32, u64)> {
        self.ready.by_priority()
    }

    /// Sets a timer for the attempt's current generation.
    pub fn set_timer(&mut self, id: &TaskId, kind: TimerKind, at: DateTime<Utc>) {
        if let Some(t) = self.tasks.get(id) {
            self.timers.set(id.clone(), t.generation, kind, at);
        }
    }

    /// Sets a timer for a given generation (re-arming one that fired).
    pub fn rearm(&mut self, id: TaskId, generation: u64, kind: TimerKind, at: DateTime<Utc>) {
        self.timers.set(id, generation, kind, at);
    }

    /// The next due timer whose attempt is still in the generation it was set for (stale ones are
    /// skipped).
    pub fn pop_due_timer(&mut self, now: DateTime<Utc>) -> Option<Fired> {
        while let Some(f) = self.timers.pop_due(now) {
            if self
                .tasks
                .get(&f.task)
                .is_some_and(|t| t.generation == f.generation)
            {
                return Some(f);
            }
        }
        None
    }

    /// When the earliest timer is due (possibly a stale one).
    pub fn next_timer(&self) -> Option<DateTime<Utc>> {
        self.timers.peek_time()
    }

    /// Sets the timeout backstop of a running attempt: its timeout plus `grace` after it was seen starting.
    pub fn arm_deadline(&mut self, id: &TaskId, grace: TimeDelta, now: DateTime<Utc>) {
        let Some(t) = self.tasks.get(id) else {
            return;
        };
        if t.rec.timeout == 0 {
            return;
        }
        let start = t.started_seen.unwrap_or(now);
        let at = start + super::actor::span_secs(t.rec.timeout) + grace;
        self.timers
            .set(id.clone(), t.generation, TimerKind::Deadline, at);
    }

    /// Takes an attempt out (it ended).
    pub fn remove(&mut self, id: &TaskId) -> Option<Box<ActiveTask>> {
        self.tasks.remove(id)
    }

    /// Takes out attempt `attempt` of a task, and only that one (a newer attempt stays).
    pub fn remove_attempt(&mut self, id: &TaskId, attempt: u32) -> Option<Box<ActiveTask>> {
        if self.tasks.get(id)?.rec.attempt != attempt {
            return None;
        }
        self.tasks.remove(id)
    }

    /// Notes that an attempt's insert is in flight.
    pub fn begin_insert(&mut self, id: &TaskId) {
        self.inserting.insert(id.clone());
    }

    /// Notes that an attempt's insert completed (or failed).
    pub fn end_insert(&mut self, id: &TaskId) {
        self.inserting.remove(id);
    }

    /// Attempts whose insert is in flight.
    pub fn inserting(&self) -> usize {
        self.inserting.len()
    }
}

impl Index<&TaskId> for TaskTable {
    type Output = ActiveTask;

    fn index(&self, id: &TaskId) -> &ActiveTask {
        self.get(id).expect("an active task")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExecutorId, JobSpec, Trigger};

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn rec(priority: i32) -> ExecutionRecord {
        let job = JobSpec::manual("table", "true").build(now()).unwrap();
        let mut r =
            ExecutionRecord::first_attempt(&job, TaskId::generate(), Trigger::Manual, now(), now());
        r.priority = priority;
        r
    }

    #[test]
    fn ready_attempts_pop_by_priority_then_order() {
        let mut table = TaskTable::default();
        let (low, high, high2) = (rec(1), rec(5), rec(5));
        let ids = [&low, &high, &high2].map(|r| r.task_id.clone());
        for r in [low, high, high2] {
            table.add(r, Phase::Ready, JobLink::default(), now());
        }
        assert_eq!(table.pop_ready(), Some(ids[1].clone()));
        assert_eq!(table.pop_ready(), Some(ids[2].clone()));
        assert_eq!(table.pop_ready(), Some(ids[0].clone()));
        assert_eq!(table.pop_ready(), None);
    }

    #[test]
    fn a_phase_change_makes_old_queue_entries_and_timers_stale() {
        let mut table = TaskTable::default();
        let r = rec(0);
        let id = r.task_id.clone();
        table.add(r, Phase::Ready, JobLink::default(), now());
        table.set_timer(&id, TimerKind::CancelGrace, now());
        let exec = ExecutorId::new("e").unwrap();
        table.set_phase(
            &id,
            Phase::Dispatching {
                executor: exec,
                epoch: 1,
            },
        );
        assert_eq!(table.pop_ready(), None, "the queue entry is stale");
        assert!(table.pop_due_timer(now()).is_none(), "the timer is stale");
        table.requeue(&id, true);
        assert_eq!(table.pop_ready(), Some(id));
    }

    #[test]
    fn waiting_attempts_become_due_by_timer_and_deadlines_follow_the_timeout() {
        let mut table = TaskTable::default();
        let mut r = rec(0);
        r.due_time = now() + TimeDelta::seconds(10);
        r.timeout = 5;
        let id = r.task_id.clone();
        table.add(r, Phase::Waiting, JobLink::default(), now());
        assert_eq!(table.next_timer(), Some(now() + TimeDelta::seconds(10)));
        let fired = table.pop_due_timer(now() + TimeDelta::seconds(10)).unwrap();
        assert_eq!(fired.kind, TimerKind::Due);
        let exec = ExecutorId::new("e").unwrap();
        table.set_phase(
            &id,
            Phase::Running {
                executor: exec,
                epoch: 1,
            },
        );
        table.arm_deadline(&id, TimeDelta::seconds(2), now());
        assert!(table.pop_due_timer(now() + TimeDelta::seconds(6)).is_none());
        let fired = table.pop_due_timer(now() + TimeDelta::seconds(7)).unwrap();
        assert_eq!((fired.kind, &fired.task), (TimerKind::Deadline, &id));
    }

    #[test]
    fn only_the_named_attempt_is_forgotten_and_inserts_are_known() {
        let mut table = TaskTable::default();
        let mut r = rec(0);
        r.attempt = 2;
        let id = r.task_id.clone();
        table.add(r.clone(), Phase::Held, JobLink::default(), now());
        assert!(table.remove_attempt(&id, 1).is_none());
        assert!(table.knows(&r));
        assert!(table.remove_attempt(&id, 2).is_some());
        assert!(!table.knows(&r));
        table.begin_insert(&id);
        assert!(table.knows(&r) && table.inserting() == 1);
        table.end_insert(&id);
        assert_eq!(table.inserting(), 0);
    }
}
