//! An attempt's life in the engine's memory: taken in (with its job's run noted), finished (with its
//! next attempt, or its job's next run released), forgotten when storage says it moved on, and the
//! engine-decided updates (lost, timed out, cancelled) written and applied.

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::Event;
use super::actor::Engine;
use super::deferred::Work;
use super::task_table::JobLink;
use super::tasks::Phase;
use crate::model::{ExecutionRecord, ExecutorId, JobId, TaskId, TaskStatus};
use crate::storage::{ExecutionUpdate, UpdateOutcome};

/// How taking in an attempt notes it among its job's runs (for jobs that follow their runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoteRun {
    /// Note it as an active run.
    Active,
    /// Note it as held behind the active run (overlap policy `queue`).
    Held,
}

impl Engine {
    /// One job lookup for a task: its job, whether the job follows its runs, and, if it does, the run
    /// noted as `note` says.
    pub fn attach_job(&mut self, rec: &ExecutionRecord, note: NoteRun) -> JobLink {
        let Some(js) = self.jobs.get_mut(&rec.job_id) else {
            return JobLink::default();
        };
        let tracked = js.tracks_runs();
        if tracked {
            let runs = js.runs_mut();
            match note {
                NoteRun::Held => runs.held.push_back(rec.task_id.clone()),
                NoteRun::Active => {
                    if !runs.active.contains(&rec.task_id) {
                        runs.active.push(rec.task_id.clone());
                    }
                }
            }
        }
        JobLink {
            job: Some(js.job.clone()),
            tracked,
        }
    }

    /// Notes a first attempt whose insert completed with row `id`: the scan cursor moves past it and
    /// subscribers hear of the fire.
    pub fn inserted(&mut self, rec: &mut ExecutionRecord, id: i64) {
        rec.id = id;
        self.active_cursor = self.active_cursor.max(id);
        self.emit(Event::Fired {
            job_id: rec.job_id.clone(),
            task_id: rec.task_id.clone(),
            scheduled_time: rec.scheduled_time,
            trigger: rec.trigger,
        });
    }

    /// Registers a new active attempt in memory in `phase` (a running one gets its timeout backstop).
    pub fn add_task(&mut self, rec: ExecutionRecord, phase: Phase, link: JobLink) {
        let running = matches!(phase, Phase::Running { .. });
        let task_id = running.then(|| rec.task_id.clone());
        let now = self.now();
        self.tasks.add(rec, phase, link, now);
        if let Some(id) = task_id {
            self.arm_deadline(&id);
        }
    }

    /// Sets the timeout backstop of a running attempt: timeout + grace after it was seen starting.
    pub fn arm_deadline(&mut self, task_id: &TaskId) {
        let grace = super::actor::span_secs(self.sys.timeout_grace_secs);
        let now = self.now();
        self.tasks.arm_deadline(task_id, grace, now);
    }

    /// Applies an attempt's terminal update in memory: frees its executor slot, emits the event, and either
    /// queues the next attempt or lets the job's next run go (overlap queue, fixed delay).
    pub fn finish(&mut self, task_id: &TaskId, update: &ExecutionUpdate, next_id: Option<i64>) {
        let Some(mut t) = self.tasks.remove(task_id) else {
            return;
        };
        if let Some((exec, epoch)) = t.phase.executor() {
            self.execs.release(exec, epoch);
        }
        update.apply_to(&mut t.rec);
        debug!(task_id = %t.rec.task_id, job_id = %t.rec.job_id, attempt = t.rec.attempt,
            status = %t.rec.status, executor_id = ?t.rec.executor_id, "attempt ended");
        if t.rec.status != TaskStatus::Succeeded {
            info!(task_id = %t.rec.task_id, job_id = %t.rec.job_id, attempt = t.rec.attempt,
                status = %t.rec.status, executor_id = ?t.rec.executor_id, error = %t.rec.error,
                "attempt did not succeed");
        }
        let job_id = t.rec.job_id.clone();
        self.sh.metrics.tasks().attempt_ended(
            &t.rec,
            t.job.as_deref(),
            update.next_attempt.as_ref().map(|n| n.trigger),
        );
        let link = JobLink {
            job: t.job,
            tracked: t.tracked,
        };
        self.emit(Event::Finished(Arc::new(t.rec)));
        if let Some(mut next) = update.next_attempt.clone() {
            next.id = next_id.unwrap_or(0);
            info!(task_id = %next.task_id, job_id = %next.job_id, attempt = next.attempt,
                trigger = %next.trigger, due = %next.due_time, "next attempt scheduled");
            let phase = if next.due_time > self.now() {
                Phase::Waiting
            } else {
                Phase::Ready
            };
            self.add_task(next, phase, link);
            return;
        }
        if link.tracked {
            self.job_task_ended(&job_id, task_id);
        }
    }

    /// Forgets an attempt that storage says has moved on (ended elsewhere). Only that attempt: a newer
    /// attempt of the same task stays.
    pub fn forget(&mut self, task_id: &TaskId, attempt: u32) {
        if let Some(t) = self.tasks.remove_attempt(task_id, attempt) {
            if let Some((exec, epoch)) = t.phase.executor() {
                self.execs.release(exec, epoch);
            }
            if t.tracked {
                self.job_task_ended(&t.rec.job_id, task_id);
            }
        }
    }

    /// A run of a job that follows its runs ended: release the next held run, or plan the next fire of a
    /// fixed-delay job.
    fn job_task_ended(&mut self, job_id: &JobId, task_id: &TaskId) {
        let now = self.now();
        let Some(js) = self.jobs.get_mut(job_id) else {
            return;
        };
        let released = js.finish(task_id);
        let delay = js
            .job
            .enabled
            .then(|| js.schedule.delay())
            .flatten()
            .filter(|_| js.next_fire.is_none() && js.active_count() == 0);
        if let Some(d) = delay {
            self.jobs
                .set_next_fire(job_id, Some(crate::clock::add(now, d)));
        }
        if let Some(next) = released {
            self.tasks.make_ready(&next);
        }
    }

    /// Handles an update outcome that was not applied because storage had moved on.
    pub async fn reconcile_stale(
        &mut self,
        task_id: &TaskId,
        attempt: u32,
        outcome: &UpdateOutcome,
    ) {
        match outcome {
            UpdateOutcome::Stale { status, .. } if status.is_terminal() => {
                self.forget(task_id, attempt)
            }
            UpdateOutcome::NotFound => self.forget(task_id, attempt),
            _ => {
                // Active but not in the state this engine thought: adopt what storage says.
                match self.sh.storage.get_execution(task_id, attempt).await {
                    Ok(rec) => {
                        self.forget(task_id, attempt);
                        self.adopt(rec);
                    }
                    Err(e) => {
                        warn!(task_id = %task_id, attempt, error = %e, "reading an attempt back failed");
                        self.deferred.push(Work::Reconcile {
                            task_id: task_id.clone(),
                            attempt,
                        });
                        self.backend_failed("reading an attempt back", e);
                    }
                }
            }
        }
    }

    /// Writes updates the engine decided on (lost, timed out, cancelled) and finishes them in memory.
    /// On failure, the executor losses in `on_fail` are deferred (to fail over again); returns whether the
    /// write went through.
    pub async fn apply_engine_updates(
        &mut self,
        updates: Vec<ExecutionUpdate>,
        what: &str,
        on_fail: Vec<(ExecutorId, u64)>,
    ) -> bool {
        match self
            .sh
            .storage
            .update_executions(&updates, Some(&self.fence))
            .await
        {
            Ok(outcomes) => {
                self.backend_ok();
                for (u, o) in updates.iter().zip(outcomes) {
                    match o {
                        UpdateOutcome::Applied { next_id } => self.finish(&u.task_id, u, next_id),
                        other => self.reconcile_stale(&u.task_id, u.attempt, &other).await,
                    }
                }
                true
            }
            Err(e) => {
                for (executor, epoch) in on_fail {
                    self.deferred.executor_lost(executor, epoch);
                }
                self.backend_failed(what, e);
                false
            }
        }
    }
}
