//! The engine's table of jobs and the queue of their next fire times.
//!
//! The fire queue buckets jobs by fire time (millisecond): an ordered map from time to the jobs due then,
//! like a timing wheel whose slots are created on demand. Jobs share fire times heavily (every job on
//! `0 0 * * * *` fires at the same instant), so a fire costs O(1) within its bucket and O(log b) per bucket
//! of b distinct pending times, whatever the number of jobs. A job that changes gets a new entry; the old
//! one is recognised as stale when it surfaces (its time no longer equals the job's `next_fire`).

use std::collections::{BTreeMap, VecDeque};
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

/// Whether the engine follows a job's runs: only overlap policies other than `allow` and fixed-delay
/// schedules need to know when a run ends (everything else skips the bookkeeping).
pub(crate) fn tracks_runs(job: &Job) -> bool {
    job.overlap_policy != crate::model::OverlapPolicy::Allow
        || job.schedule_type == crate::model::ScheduleType::FixedDelay
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

    /// Whether the engine follows this job's runs: only the overlap policies other than `allow` and
    /// fixed-delay schedules need to know when a run ends (everything else skips the bookkeeping).
    pub fn tracks_runs(&self) -> bool {
        tracks_runs(&self.job)
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

/// A job whose fire is due, as popped from the queue.
#[derive(Debug)]
pub(crate) struct Due {
    pub job_id: JobId,
    pub at: DateTime<Utc>,
    pub job: Arc<Job>,
    pub schedule: Schedule,
}

/// All jobs and their fire queue.
#[derive(Debug, Default)]
pub(crate) struct JobTable {
    jobs: FastMap<JobId, JobState>,
    queue: BTreeMap<i64, Vec<JobId>>,
    /// Jobs with a next fire time.
    scheduled: usize,
}

impl JobTable {
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    fn push(&mut self, at: DateTime<Utc>, job: JobId) {
        self.queue
            .entry(at.timestamp_millis())
            .or_default()
            .push(job);
    }

    pub fn get(&self, id: &JobId) -> Option<&JobState> {
        self.jobs.get(id)
    }

    pub fn get_mut(&mut self, id: &JobId) -> Option<&mut JobState> {
        self.jobs.get_mut(id)
    }

    /// Takes the next fire off every fixed-delay job that has a run active: its next fire is planned when
    /// that run ends (at a takeover, jobs are loaded before their active runs are adopted).
    pub fn hold_busy_fixed_delay(&mut self) {
        let busy: Vec<JobId> = self
            .jobs
            .values()
            .filter(|s| {
                s.schedule.is_fixed_delay() && s.next_fire.is_some() && s.active_count() > 0
            })
            .map(|s| s.job.job_id.clone())
            .collect();
        for id in busy {
            self.set_next_fire(&id, None);
        }
    }

    /// Inserts or replaces a job with its schedule and next fire time.
    pub fn upsert(&mut self, job: Arc<Job>, schedule: Schedule, next_fire: Option<DateTime<Utc>>) {
        let old = self.remove(&job.job_id);
        let runs = old.and_then(|s| s.runs);
        if next_fire.is_some() {
            self.scheduled += 1;
        }
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
        let s = self.jobs.remove(id)?;
        if s.next_fire.is_some() {
            self.scheduled -= 1;
        }
        Some(s)
    }

    /// Jobs with a next fire time.
    /// Jobs that keep their history by their own retention: `(job, days, runs)`.
    pub fn own_retention(&self) -> Vec<(JobId, u32, u32)> {
        self.jobs
            .values()
            .filter(|s| s.job.retention_days > 0 || s.job.retention_runs > 0)
            .map(|s| {
                (
                    s.job.job_id.clone(),
                    s.job.retention_days,
                    s.job.retention_runs,
                )
            })
            .collect()
    }

    pub fn scheduled(&self) -> usize {
        self.scheduled
    }

    /// Sets a job's next fire time.
    pub fn set_next_fire(&mut self, id: &JobId, next: Option<DateTime<Utc>>) {
        if let Some(s) = self.jobs.get_mut(id) {
            match (s.next_fire.is_some(), next.is_some()) {
                (false, true) => self.scheduled += 1,
                (true, false) => self.scheduled -= 1,
                _ => {}
            }
            s.next_fire = next;
            if let Some(at) = next {
                self.push(at, id.clone());
            }
        }
    }

    /// Puts back a fire popped for a write that failed, if the job still waits for it: same job still
    /// there and enabled, and no other fire scheduled meanwhile.
    pub fn restore_fire(&mut self, id: &JobId, at: DateTime<Utc>) {
        if self
            .jobs
            .get(id)
            .is_some_and(|s| s.job.enabled && s.next_fire.is_none_or(|n| n > at))
        {
            self.set_next_fire(id, Some(at));
        }
    }

    /// The next `limit` fires, soonest first, of jobs `owner` owns (any, with `None`); stale entries are
    /// skipped (not dropped: this takes `&self`).
    pub fn upcoming(&self, limit: usize, owner: Option<&str>) -> Vec<super::UpcomingFire> {
        let mut out = Vec::new();
        for (at, ids) in &self.queue {
            for id in ids.iter().rev() {
                let Some(s) = self.jobs.get(id) else { continue };
                let current = s.next_fire.map(|t| t.timestamp_millis()) == Some(*at);
                if !current || owner.is_some_and(|o| s.job.owner != o) {
                    continue;
                }
                if out.len() == limit {
                    return out;
                }
                out.push(super::UpcomingFire {
                    job_id: id.clone(),
                    name: s.job.name.clone(),
                    at: DateTime::from_timestamp_millis(*at).expect("stored from a valid time"),
                });
            }
        }
        out
    }

    /// The earliest pending fire time, dropping stale entries on the way.
    pub fn peek_time(&mut self) -> Option<DateTime<Utc>> {
        loop {
            let mut first = self.queue.first_entry()?;
            let at = *first.key();
            while let Some(job) = first.get().last() {
                if self
                    .jobs
                    .get(job)
                    .and_then(|s| s.next_fire)
                    .map(|t| t.timestamp_millis())
                    == Some(at)
                {
                    return DateTime::from_timestamp_millis(at);
                }
                first.get_mut().pop();
            }
            first.remove();
        }
    }

    /// Pops the next job whose fire time is at or before `now`, with that fire time; clears its
    /// `next_fire` (the caller sets the following one).
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Option<Due> {
        let now = now.timestamp_millis();
        loop {
            let mut first = self.queue.first_entry()?;
            let at = *first.key();
            if at > now {
                return None;
            }
            let Some(job_id) = first.get_mut().pop() else {
                first.remove();
                continue;
            };
            if first.get().is_empty() {
                first.remove();
            }
            let Some(s) = self
                .jobs
                .get_mut(&job_id)
                .filter(|s| s.next_fire.map(|t| t.timestamp_millis()) == Some(at))
            else {
                continue;
            };
            s.next_fire = None;
            self.scheduled -= 1;
            return Some(Due {
                at: DateTime::from_timestamp_millis(at).expect("stored from a valid time"),
                job: s.job.clone(),
                schedule: s.schedule.clone(),
                job_id,
            });
        }
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
    fn upcoming_lists_current_fires_in_order_for_an_owner() {
        let mut table = JobTable::default();
        let (a, b, c) = (job("a"), job("b"), job("c"));
        table.upsert(a.clone(), Schedule::Manual, Some(t("2026-01-01T00:00:03Z")));
        table.upsert(b.clone(), Schedule::Manual, Some(t("2026-01-01T00:00:01Z")));
        table.upsert(c.clone(), Schedule::Manual, Some(t("2026-01-01T00:00:02Z")));
        // b moves later: its first entry is stale.
        table.set_next_fire(&b.job_id, Some(t("2026-01-01T00:00:09Z")));
        let ids = |v: Vec<super::super::UpcomingFire>| {
            v.into_iter()
                .map(|u| u.job_id.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(table.upcoming(10, None)), ["c", "a", "b"]);
        assert_eq!(ids(table.upcoming(2, None)), ["c", "a"]);
        assert_eq!(
            ids(table.upcoming(10, Some("nobody"))),
            Vec::<String>::new()
        );
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
        while let Some(d) = table.pop_due(now) {
            order.push((d.job_id.to_string(), d.at));
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
