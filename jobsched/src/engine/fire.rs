//! Fires: popping due jobs, applying the misfire and overlap policies (planned in `fire_plan`), recording
//! fires exactly once, and keeping the job table in step with storage.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use super::Event;
use super::actor::{Engine, span_secs};
use super::fire_plan::{JobLoad, Overlap, fire_times, same_schedule};
use super::lifecycle::NoteRun;
use super::task_table::JobLink;
use super::tasks::Phase;
use super::writes::{FireBatch, Op, PoppedFire};
use crate::error::Result;
use crate::model::{
    CancelReason, ExecutionRecord, Job, JobId, OverlapPolicy, Task, TaskId, TaskStatus, Trigger,
};
use crate::schedule::Schedule;
use crate::storage::{InsertOutcome, JobChange};

/// Job changes read from storage per call.
const JOB_PAGE: usize = 10_000;

impl Engine {
    /// Records every fire due by `now`, in batches, and gives what it can to executors at once.
    pub fn fire_due(&mut self, now: DateTime<Utc>) {
        while self.healthy()
            && !self.writes.full()
            && self.jobs.peek_time().is_some_and(|t| t <= now)
        {
            self.fire_batch(now);
        }
    }

    fn fire_batch(&mut self, now: DateTime<Utc>) {
        let threshold = span_secs(self.sys.misfire_threshold_secs);
        let batch = self.sh.config.batch_size;
        let mut popped: Vec<PoppedFire> = Vec::new();
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
            popped.push(PoppedFire { job_id: id, at });
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
        let direct = self.tasks.ready_is_empty();
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
        self.submit(Op::Fires(FireBatch {
            recs,
            kinds,
            jobs,
            popped,
        }));
    }

    /// Applies a completed fire write: registers the recorded tasks and sends what was dispatched at once.
    pub async fn complete_fires(&mut self, batch: FireBatch, result: Result<Vec<InsertOutcome>>) {
        let FireBatch {
            recs,
            kinds,
            jobs,
            popped,
        } = batch;
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
                for p in popped {
                    self.jobs.restore_fire(&p.job_id, p.at);
                }
                self.backend_failed("recording fires", e);
                return;
            }
        };
        self.backend_ok();
        let mut sends = Vec::new();
        let mut replace = Vec::new();
        let mut recorded_elsewhere = Vec::new();
        for (((mut rec, kind), job), outcome) in recs.into_iter().zip(kinds).zip(jobs).zip(outcomes)
        {
            match outcome {
                InsertOutcome::AlreadyFired { task_id } => {
                    debug!(job_id = %rec.job_id, scheduled_time = %rec.scheduled_time, existing = %task_id,
                        "fire already recorded by another scheduler");
                    if let Some(exec) = &rec.executor_id {
                        self.execs.release(exec, rec.executor_epoch);
                    }
                    recorded_elsewhere.push(task_id);
                }
                InsertOutcome::Inserted { id } => {
                    self.inserted(&mut rec, id);
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
        self.adopt_recorded_elsewhere(recorded_elsewhere).await;
    }

    /// Takes in the tasks that recorded fires this engine tried to record (a predecessor, or a standby
    /// serving a run): they are active and this engine must drive them, not wait for the next full scan.
    async fn adopt_recorded_elsewhere(&mut self, tasks: Vec<TaskId>) {
        for task_id in tasks {
            if self.tasks.get(&task_id).is_some() {
                continue;
            }
            match self.sh.storage.task_attempts(&task_id).await {
                Ok(attempts) => {
                    if let Some(rec) = attempts.into_iter().last() {
                        if !rec.status.is_terminal() && !self.tasks.knows(&rec) {
                            info!(task_id = %rec.task_id, job_id = %rec.job_id,
                                "a fire recorded by another scheduler is adopted");
                            self.adopt(rec);
                        }
                    }
                }
                // The periodic full scan adopts it later.
                Err(e) => {
                    warn!(task_id = %task_id, error = %e, "reading a fire recorded elsewhere failed")
                }
            }
        }
    }

    /// Takes a newly recorded first attempt into memory (dispatched, ready or held) and notes the job's run.
    pub fn register_new(
        &mut self,
        rec: ExecutionRecord,
        job: Arc<Job>,
        held: bool,
        sends: &mut Vec<Task>,
    ) {
        // The job is at hand: look it up again only if its runs are followed. A run held behind one that
        // never got recorded (its write failed) has nothing to wait for.
        let held = held
            && self
                .jobs
                .get(&rec.job_id)
                .is_some_and(|s| s.active_count() > 0);
        let job = if super::jobs::tracks_runs(&job) {
            self.attach_job(&rec, if held { NoteRun::Held } else { NoteRun::Active })
        } else {
            JobLink {
                job: Some(job),
                tracked: false,
            }
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
            } else {
                // Its executor left while the write was in flight: fail it over instead of sending it.
                self.deferred.executor_lost(exec.clone(), epoch);
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
    pub async fn sync_jobs(&mut self, mode: JobLoad) -> Result<()> {
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
                info!(job_id = %change.job_id, "job deleted: its queued tasks and pending retries are cancelled");
                self.cancel_queued_of(&change.job_id, CancelReason::JobDeleted)
                    .await;
            }
            return;
        };
        if !job.enabled && self.jobs.get(&job.job_id).is_some_and(|ex| ex.job.enabled) {
            info!(job_id = %job.job_id, "job disabled: its queued fires and pending retries are cancelled");
            self.cancel_queued_of(&job.job_id, CancelReason::JobDisabled)
                .await;
        }
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
            // `update_time` and the watermark come from the clock of whichever process wrote them: one
            // ahead of this one (a fast standby serving an update, a fast predecessor) must not make the
            // job skip fires until that time. Fires of a fast predecessor then meet its records
            // (`AlreadyFired`), never a second run.
            let now = self.now();
            let since = match mode {
                JobLoad::Initial(Some(w)) => w.max(job.update_time).min(now),
                _ => job.update_time.min(now),
            };
            schedule.next_after(since)
        };
        if existing.is_some() {
            debug!(job_id = %job.job_id, version = job.version, next_fire = ?next, "job changed");
        }
        self.jobs.upsert(job, schedule, next);
    }

    /// Cancels the queued attempts of a job that was deleted (all of them) or disabled (all but manual
    /// runs, which a user asked for explicitly). Attempts on executors run to their end, without a retry.
    async fn cancel_queued_of(&mut self, job_id: &JobId, reason: CancelReason) {
        let queued: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|t| t.rec.job_id == *job_id && t.phase.is_queued())
            .filter(|t| reason == CancelReason::JobDeleted || t.rec.trigger != Trigger::Manual)
            .map(|t| t.rec.task_id.clone())
            .collect();
        for t in queued {
            if let Err(e) = self.cancel_task(&t, reason).await {
                warn!(task_id = %t, job_id = %job_id, error = %e,
                    "cancelling a queued task of a deleted or disabled job failed; it stays queued");
            }
        }
    }
}
