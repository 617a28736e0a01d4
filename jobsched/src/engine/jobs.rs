//! The engine's table of jobs and the heap of their next fire times.
//!
//! The heap holds one entry per scheduled job, ordered by fire time, so finding the jobs due now costs
//! O(log n) per fire, whatever the number of jobs. A job that changes gets a new entry; the old one is
//! recognised as stale when it surfaces (its time no longer equals the job's `next_fire`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::fastmap::FastMap;
use crate::model::{Job, JobId, TaskId};
use crate::schedule::Schedule;

/// Tasks of a job that are not finished yet, for the overlap policy.
#[derive(Debug, Default)]
pub(crate) struct JobRuns {
    /// Active tasks (queued, dispatched or running), in fire order.
    pub active: Vec<TaskId>,
    /// Tasks held back by `overlap_policy = queue` until the active ones end, in fire order.
    pub held: VecDeque<TaskId>,
}

/// What the engine keeps per job.
#[derive(Debug)]
pub(crate) struct JobState {
    pub job: Arc<Job>,
    pub schedule: Schedule,
    pub next_fire: Option<DateTime<Utc>>,
    /// Boxed and absent while the job has no active task: most of a million jobs have none.
    pub runs: Option<Box<JobRuns>>,
}

impl JobState {
    pub fn active_count(&self) -> usize {
        self.runs.as_ref().map_or(0, |r| r.active.len())
    }

    pub fn runs_mut(&mut self) -> &mut JobRuns {
        self.runs.get_or_insert_with(Default::default)
    }

    /// Forgets a task that ended; returns the first held task, if the job has no active task left.
    pub fn finish(&mut self, task: &TaskId) -> Option<TaskId> {
        let runs = self.runs.as_mut()?;
        runs.active.retain(|t| t != task);
        runs.held.retain(|t| t != task);
        let next = if runs.active.is_empty() {
            runs.held.pop_front()
        } else {
            None
        };
        if let Some(n) = &next {
            runs.active.push(n.clone());
        }
        if runs.active.is_empty() && runs.held.is_empty() {
            self.runs = None;
        }
        next
    }
}

/// A heap entry: a job's fire time. Ties are broken by insertion order, never by comparing job ids
/// (many jobs fire at the same second; comparing their ids was a visible cost).
#[derive(Debug)]
struct Entry {
    at: i64,
    seq: u64,
    job: JobId,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// All jobs and their fire heap.
#[derive(Debug, Default)]
pub(crate) struct JobTable {
    jobs: FastMap<JobId, JobState>,
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl JobTable {
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    fn push(&mut self, at: DateTime<Utc>, job: JobId) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at: at.timestamp_millis(),
            seq: self.seq,
            job,
        }));
    }

    pub fn get(&self, id: &JobId) -> Option<&JobState> {
        self.jobs.get(id)
    }

    pub fn get_mut(&mut self, id: &JobId) -> Option<&mut JobState> {
        self.jobs.get_mut(id)
    }

    /// Inserts or replaces a job with its schedule and next fire time.
    pub fn upsert(&mut self, job: Arc<Job>, schedule: Schedule, next_fire: Option<DateTime<Utc>>) {
        let runs = self.jobs.remove(&job.job_id).and_then(|s| s.runs);
        if let Some(at) = next_fire {
            self.push(at, job.job_id.clone());
        }
        self.jobs.insert(
            job.job_id.clone(),
            JobState {
                job,
                schedule,
                next_fire,
                runs,
            },
        );
    }

    /// Removes a job; returns its state.
    pub fn remove(&mut self, id: &JobId) -> Option<JobState> {
        self.jobs.remove(id)
    }

    /// Sets a job's next fire time.
    pub fn set_next_fire(&mut self, id: &JobId, next: Option<DateTime<Utc>>) {
        if let Some(s) = self.jobs.get_mut(id) {
            s.next_fire = next;
            if let Some(at) = next {
                self.push(at, id.clone());
            }
        }
    }

    /// The earliest pending fire time, skipping stale heap entries.
    pub fn peek_time(&mut self) -> Option<DateTime<Utc>> {
        while let Some(Reverse(e)) = self.heap.peek() {
            let live = self
                .jobs
                .get(&e.job)
                .and_then(|s| s.next_fire)
                .is_some_and(|t| t.timestamp_millis() == e.at);
            if live {
                return DateTime::from_timestamp_millis(e.at);
            }
            self.heap.pop();
        }
        None
    }

    /// Pops the next job whose fire time is at or before `now`, with that fire time; clears its
    /// `next_fire` (the caller sets the following one).
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Option<(JobId, DateTime<Utc>)> {
        let at = self.peek_time()?;
        if at > now {
            return None;
        }
        let Reverse(Entry { job: id, .. }) = self.heap.pop().expect("peeked");
        if let Some(s) = self.jobs.get_mut(&id) {
            s.next_fire = None;
        }
        Some((id, at))
    }

    /// Every job.
    pub fn iter(&self) -> impl Iterator<Item = (&JobId, &JobState)> {
        self.jobs.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobSpec;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn job(id: &str) -> Arc<Job> {
        Arc::new(
            JobSpec::manual(id, "true")
                .with_job_id(JobId::new(id).unwrap())
                .build(t("2026-01-01T00:00:00Z"))
                .unwrap(),
        )
    }

    #[test]
    fn pops_in_time_order_and_skips_stale_entries() {
        let mut table = JobTable::default();
        table.upsert(job("a"), Schedule::Manual, Some(t("2026-01-01T00:00:03Z")));
        table.upsert(job("b"), Schedule::Manual, Some(t("2026-01-01T00:00:01Z")));
        table.upsert(job("c"), Schedule::Manual, Some(t("2026-01-01T00:00:02Z")));
        // Rescheduling "b" leaves a stale entry at :01 behind.
        table.set_next_fire(&JobId::new("b").unwrap(), Some(t("2026-01-01T00:00:05Z")));
        let now = t("2026-01-01T00:00:04Z");
        let mut order = vec![];
        while let Some((id, at)) = table.pop_due(now) {
            order.push((id.to_string(), at));
        }
        assert_eq!(
            order,
            vec![
                ("c".to_string(), t("2026-01-01T00:00:02Z")),
                ("a".to_string(), t("2026-01-01T00:00:03Z"))
            ]
        );
        assert_eq!(table.peek_time(), Some(t("2026-01-01T00:00:05Z")));
        table.remove(&JobId::new("b").unwrap());
        assert_eq!(table.peek_time(), None);
    }

    #[test]
    fn finish_releases_held_tasks_in_order() {
        let mut table = JobTable::default();
        table.upsert(job("a"), Schedule::Manual, None);
        let s = table.get_mut(&JobId::new("a").unwrap()).unwrap();
        let (t1, t2, t3) = (TaskId::generate(), TaskId::generate(), TaskId::generate());
        s.runs_mut().active.push(t1.clone());
        s.runs_mut().held.push_back(t2.clone());
        s.runs_mut().held.push_back(t3.clone());
        assert_eq!(s.finish(&t1), Some(t2.clone()));
        assert_eq!(s.active_count(), 1);
        assert_eq!(s.finish(&t2), Some(t3.clone()));
        assert_eq!(s.finish(&t3), None);
        assert!(s.runs.is_none());
    }
}
