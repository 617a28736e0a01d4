//! Fires: popping due jobs, the misfire and overlap policies, recording fires exactly once, and keeping
//! the job table in step with storage.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{debug, info, warn};

use super::Event;
use super::core::Engine;
use super::pipeline::Op;
use super::tasks::Phase;
use crate::error::Result;
use crate::model::{
    CancelReason, ExecutionRecord, Job, JobId, MisfirePolicy, OverlapPolicy, TaskId, TaskStatus,
    Trigger,
};
use crate::schedule::Schedule;
use crate::storage::{InsertOutcome, JobChange};

/// Job changes read from storage per call.
const JOB_PAGE: usize = 10_000;

/// At most this many missed fire times are walked through when catching up one job.
const MAX_MISSED_SCAN: usize = 100_000;

/// The fires to record for a job whose fire at `at` is being handled at `now`, and the time from which its
/// next fire is computed.
///
/// A fire up to `threshold` late fires normally. A later one is a misfire: every fire due by `now` is then
/// handled together by the policy: `skip` records none, `fire_once` records the latest of them, `fire_all`
/// records each (the latest `max` of them).
pub(crate) fn fire_times(
    schedule: &Schedule,
    policy: MisfirePolicy,
    max: u32,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    threshold: TimeDelta,
) -> (Vec<(DateTime<Utc>, Trigger)>, DateTime<Utc>) {
    if now - at <= threshold {
        return (vec![(at, Trigger::Schedule)], at);
    }
    let keep = max.max(1) as usize;
    let mut due: VecDeque<DateTime<Utc>> = VecDeque::from([at]);
    let mut t = at;
    for _ in 0..MAX_MISSED_SCAN {
        match schedule.next_after(t) {
            Some(n) if n <= now => {
                due.push_back(n);
                if due.len() > keep {
                    due.pop_front();
                }
                t = n;
            }
            _ => break,
        }
    }
    let fires = match policy {
        MisfirePolicy::Skip => Vec::new(),
        MisfirePolicy::FireOnce => vec![(*due.back().expect("at least `at`"), Trigger::Misfire)],
        MisfirePolicy::FireAll => due.into_iter().map(|t| (t, Trigger::Misfire)).collect(),
    };
    (fires, now)
}

/// How a planned fire relates to the job's runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Overlap {
    Run,
    Skip,
    Hold,
    Replace,
}

/// How job changes read from storage are applied.
#[derive(Clone, Copy, Debug)]
pub(crate) enum JobLoad {
    /// Loading everything at takeover; fires missed since the watermark are due now.
    Initial(Option<DateTime<Utc>>),
    /// Following changes made since.
    Incremental,
}

fn same_schedule(a: &Job, b: &Job) -> bool {
    a.schedule_type == b.schedule_type
        && a.cron_expression == b.cron_expression
        && a.interval == b.interval
        && a.start_time == b.start_time
        && a.time_zone == b.time_zone
}

impl Engine {
    /// Records every fire due by `now`, in batches, and gives what it can to executors at once.
    pub fn fire_due(&mut self, now: DateTime<Utc>) {
        while self.healthy()
            && !self.pipeline_full()
            && self.jobs.peek_time().is_some_and(|t| t <= now)
        {
            self.fire_batch(now);
        }
    }

    fn fire_batch(&mut self, now: DateTime<Utc>) {
        let threshold = self.grace(self.sys.misfire_threshold_secs);
        let batch = self.sh.config.batch_size;
        let mut popped: Vec<(JobId, DateTime<Utc>)> = Vec::new();
        let mut planned: Vec<(Arc<Job>, DateTime<Utc>, Trigger)> = Vec::new();
        while planned.len() < batch {
            let Some(due) = self.jobs.pop_due(now) else {
                break;
            };
            let (id, at, job, schedule) = (due.job_id, due.at, due.job, due.schedule);
            let (fires, base) = fire_times(
                &schedule,
                job.misfire_policy,
                job.misfire_max_fires,
                at,
                now,
                threshold,
            );
            let next = if schedule.is_fixed_delay() && !fires.is_empty() {
                None
            } else {
                schedule.next_after(base)
            };
            if fires.is_empty() {
                info!(job_id = %id, missed_since = %at, "missed fires skipped (misfire_policy = skip)");
            } else if fires[0].1 == Trigger::Misfire {
                info!(job_id = %id, missed_since = %at, fires = fires.len(),
                    policy = %job.misfire_policy, "catching up missed fires");
            }
            if next.is_some() {
                self.jobs.set_next_fire(&id, next);
            }
            popped.push((id, at));
            planned.extend(fires.into_iter().map(|(t, trig)| (job.clone(), t, trig)));
        }
        if planned.is_empty() {
            return;
        }
        // Higher priority first, so that what can be dispatched at once is the most urgent.
        planned.sort_by_key(|p| std::cmp::Reverse(p.0.priority));
        let mut extra: crate::fastmap::FastMap<JobId, usize> = Default::default();
        let mut recs = Vec::with_capacity(planned.len());
        let mut kinds = Vec::with_capacity(planned.len());
        let mut jobs = Vec::with_capacity(planned.len());
        let direct = self.ready.is_empty();
        for (job, at, trigger) in &planned {
            let active = if job.overlap_policy == OverlapPolicy::Allow {
                0
            } else {
                self.jobs.get(&job.job_id).map_or(0, |s| s.active_count())
                    + self.runs_in_flight.get(&job.job_id).copied().unwrap_or(0)
                    + extra.get(&job.job_id).copied().unwrap_or(0)
            };
            let kind = match (active, job.overlap_policy) {
                (0, _) | (_, OverlapPolicy::Allow) => Overlap::Run,
                (_, OverlapPolicy::Skip) => Overlap::Skip,
                (_, OverlapPolicy::Queue) => Overlap::Hold,
                (_, OverlapPolicy::Replace) => Overlap::Replace,
            };
            let mut rec =
                ExecutionRecord::first_attempt(job, TaskId::generate(), *trigger, *at, now);
            match kind {
                Overlap::Skip => {
                    rec.status = TaskStatus::Skipped;
                    rec.end_time = Some(now);
                    rec.error = "skipped: an earlier run of this job is still active (overlap_policy = skip)"
                        .into();
                }
                Overlap::Run | Overlap::Replace if direct => {
                    if let Some((e, epoch)) = self.execs.pick(Some(job), &rec.task_type) {
                        rec.status = TaskStatus::Dispatched;
                        rec.executor_id = Some(e);
                        rec.executor_epoch = epoch;
                    }
                }
                _ => {}
            }
            if kind != Overlap::Skip && job.overlap_policy != OverlapPolicy::Allow {
                *extra.entry(job.job_id.clone()).or_default() += 1;
            }
            recs.push(rec);
            kinds.push(kind);
            jobs.push(job.clone());
        }
        for (id, n) in &extra {
            *self.runs_in_flight.entry(id.clone()).or_default() += n;
        }
        self.submit(Op::Fires {
            recs,
            kinds,
            jobs,
            popped,
        });
    }

    /// Applies a completed fire write: registers the recorded tasks and sends what was dispatched at once.
    pub async fn complete_fires(
        &mut self,
        recs: Vec<ExecutionRecord>,
        kinds: Vec<Overlap>,
        jobs: Vec<Arc<Job>>,
        popped: Vec<(JobId, DateTime<Utc>)>,
        result: Result<Vec<InsertOutcome>>,
    ) {
        for (rec, (kind, job)) in recs.iter().zip(kinds.iter().zip(&jobs)) {
            if *kind != Overlap::Skip && job.overlap_policy != OverlapPolicy::Allow {
                if let Some(n) = self.runs_in_flight.get_mut(&rec.job_id) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.runs_in_flight.remove(&rec.job_id);
                    }
                }
            }
        }
        let outcomes = match result {
            Ok(o) => o,
            Err(e) => {
                for rec in &recs {
                    if let Some(exec) = &rec.executor_id {
                        self.execs.release(exec, rec.executor_epoch);
                    }
                }
                // Put the fires back: they are handled again (misfire policy included) once storage is back,
                // unless the job changed meanwhile (disabled, rescheduled, deleted).
                for (id, at) in popped {
                    self.jobs.restore_fire(&id, at);
                }
                self.storage_failed("recording fires", e);
                return;
            }
        };
        self.storage_ok();
        let mut sends = Vec::new();
        let mut replace = Vec::new();
        for (((mut rec, kind), job), outcome) in recs.into_iter().zip(kinds).zip(jobs).zip(outcomes)
        {
            match outcome {
                InsertOutcome::AlreadyFired { task_id } => {
                    debug!(job_id = %rec.job_id, scheduled_time = %rec.scheduled_time, existing = %task_id,
                        "fire already recorded by another scheduler");
                    if let Some(exec) = &rec.executor_id {
                        self.execs.release(exec, rec.executor_epoch);
                    }
                }
                InsertOutcome::Inserted { id } => {
                    rec.id = id;
                    self.active_cursor = self.active_cursor.max(id);
                    self.emit(Event::Fired {
                        job_id: rec.job_id.clone(),
                        task_id: rec.task_id.clone(),
                        scheduled_time: rec.scheduled_time,
                        trigger: rec.trigger,
                    });
                    if kind == Overlap::Skip {
                        debug!(job_id = %rec.job_id, task_id = %rec.task_id, "fire skipped by overlap policy");
                        self.emit(Event::Finished(Arc::new(rec)));
                        continue;
                    }
                    if kind == Overlap::Replace {
                        if let Some(js) = self.jobs.get(&rec.job_id) {
                            replace.extend(js.runs.iter().flat_map(|r| r.active.iter().cloned()));
                        }
                    }
                    self.register_new(rec, job, kind == Overlap::Hold, &mut sends);
                }
            }
        }
        self.send_tasks(sends).await;
        for task_id in replace {
            let _ = self.cancel_task(&task_id, CancelReason::Replaced).await;
        }
    }

    /// Takes a newly recorded first attempt into memory (dispatched, ready or held) and notes the job's run.
    pub fn register_new(
        &mut self,
        rec: ExecutionRecord,
        job: Arc<Job>,
        held: bool,
        sends: &mut Vec<crate::model::Task>,
    ) {
        // The job is at hand: look it up again only if its runs are followed. A run held behind one that
        // never got recorded (its write failed) has nothing to wait for.
        let held = held
            && self
                .jobs
                .get(&rec.job_id)
                .is_some_and(|s| s.active_count() > 0);
        let job = if super::jobs::tracks_runs(&job) {
            self.attach_job(&rec, Some(held))
        } else {
            (Some(job), false)
        };
        if held {
            self.add_task(rec, Phase::Held, job);
        } else if let Some(exec) = rec.executor_id.clone() {
            let epoch = rec.executor_epoch;
            if self
                .execs
                .get(&exec)
                .is_some_and(|x| x.online && x.epoch == epoch)
            {
                sends.push(rec.to_task());
            } else if !self.pending_lost.contains(&(exec.clone(), epoch)) {
                // Its executor left while the write was in flight: fail it over instead of sending it.
                self.pending_lost.push((exec.clone(), epoch));
            }
            self.add_task(
                rec,
                Phase::Dispatched {
                    executor: exec,
                    epoch,
                },
                job,
            );
        } else if rec.due_time > self.now() {
            self.add_task(rec, Phase::Waiting, job);
        } else {
            self.add_task(rec, Phase::Ready, job);
        }
    }

    /// Reads job changes from storage and applies them.
    pub async fn sync_jobs(&mut self, mode: Option<Option<DateTime<Utc>>>) -> Result<()> {
        let mode = match mode {
            Some(w) => JobLoad::Initial(w),
            None => JobLoad::Incremental,
        };
        let started = self.now();
        // The next page is read (and decoded) while this one is applied: at a takeover with a million
        // jobs the two take about as long as each other.
        let storage = self.sh.storage.clone();
        let read = move |after: u64| {
            let storage = storage.clone();
            tokio::spawn(async move { storage.job_changes(after, JOB_PAGE).await })
        };
        let mut next = Some(read(self.job_cursor));
        loop {
            let page = next.take().expect("a page is being read");
            let changes = page.await.map_err(|e| {
                crate::Error::unavailable("scheduler", format!("reading job changes stopped: {e}"))
            })??;
            let n = changes.len();
            if let Some(last) = changes.last().filter(|_| n == JOB_PAGE) {
                next = Some(read(last.revision));
            }
            for c in changes {
                self.job_cursor = self.job_cursor.max(c.revision);
                self.apply_job_change(c, mode).await;
            }
            if n < JOB_PAGE {
                self.jobs_synced_at = Some(started);
                return Ok(());
            }
        }
    }

    async fn apply_job_change(&mut self, change: JobChange, mode: JobLoad) {
        let Some(job) = change.job else {
            if self.jobs.remove(&change.job_id).is_some() {
                info!(job_id = %change.job_id, "job deleted: its queued tasks are cancelled");
                let queued: Vec<TaskId> = self
                    .tasks
                    .values()
                    .filter(|t| t.rec.job_id == change.job_id && t.phase.is_queued())
                    .map(|t| t.rec.task_id.clone())
                    .collect();
                for t in queued {
                    let _ = self.cancel_task(&t, CancelReason::User).await;
                }
            }
            return;
        };
        let schedule = match job.schedule() {
            Ok(s) => s,
            Err(e) => {
                warn!(job_id = %job.job_id, error = %e, "stored job has an invalid schedule; it will not fire");
                Schedule::Manual
            }
        };
        let existing = self.jobs.get(&job.job_id);
        let next = if !job.enabled {
            None
        } else if let Some(ex) =
            existing.filter(|ex| ex.job.enabled && same_schedule(&ex.job, &job))
        {
            ex.next_fire
        } else if schedule.is_fixed_delay() && existing.is_some_and(|ex| ex.active_count() > 0) {
            None
        } else {
            let since = match mode {
                JobLoad::Initial(Some(w)) => w.max(job.update_time),
                _ => job.update_time,
            };
            schedule.next_after(since)
        };
        if existing.is_some() {
            debug!(job_id = %job.job_id, version = job.version, next_fire = ?next, "job changed");
        }
        self.jobs.upsert(job, schedule, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobSpec;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn every_second() -> Schedule {
        JobSpec::cron("x", "* * * * * *", "true")
            .build(t("2026-01-01T00:00:00Z"))
            .unwrap()
            .schedule()
            .unwrap()
    }

    #[test]
    fn a_fire_within_the_threshold_is_not_a_misfire() {
        let (fires, base) = fire_times(
            &every_second(),
            MisfirePolicy::Skip,
            10,
            t("2026-01-01T00:00:10Z"),
            t("2026-01-01T00:00:14Z"),
            TimeDelta::seconds(5),
        );
        assert_eq!(fires, vec![(t("2026-01-01T00:00:10Z"), Trigger::Schedule)]);
        assert_eq!(base, t("2026-01-01T00:00:10Z"));
    }

    #[test]
    fn misfire_policies() {
        let run = |p, max| {
            fire_times(
                &every_second(),
                p,
                max,
                t("2026-01-01T00:00:10Z"),
                t("2026-01-01T00:01:00.500Z"),
                TimeDelta::seconds(5),
            )
        };
        let (fires, base) = run(MisfirePolicy::Skip, 100);
        assert!(fires.is_empty());
        assert_eq!(base, t("2026-01-01T00:01:00.500Z"));
        let (fires, _) = run(MisfirePolicy::FireOnce, 100);
        assert_eq!(fires, vec![(t("2026-01-01T00:01:00Z"), Trigger::Misfire)]);
        let (fires, _) = run(MisfirePolicy::FireAll, 100);
        assert_eq!(fires.len(), 51, "00:10 through 01:00");
        let (fires, _) = run(MisfirePolicy::FireAll, 3);
        assert_eq!(
            fires.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![
                t("2026-01-01T00:00:58Z"),
                t("2026-01-01T00:00:59Z"),
                t("2026-01-01T00:01:00Z")
            ]
        );
    }
}
