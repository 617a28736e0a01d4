//! Requests from `Scheduler` handles: run now, cancel, re-read storage.

use tokio::sync::oneshot;
use tracing::{info, warn};

use super::CancelOutcome;
use super::actor::{Command, Engine, span_secs};
use super::fire_plan::JobLoad;
use super::records;
use super::tasks::Phase;
use super::timers::TimerKind;
use super::writes::{ManualRuns, Op};
use crate::error::{Error, Result};
use crate::model::{CancelReason, Control, JobId, Params, TaskId, TaskStatus};
use crate::storage::{InsertOutcome, UpdateOutcome};

/// A manual run asked for.
struct ExecuteRequest {
    job_id: JobId,
    task_id: TaskId,
    params: Option<Params>,
    reply: oneshot::Sender<Result<()>>,
}

impl Engine {
    pub async fn on_commands(&mut self, cmds: Vec<Command>) {
        let mut executes = Vec::new();
        if cmds.iter().any(|c| matches!(c, Command::Sync)) {
            // Apply changes before the requests that may follow them in this batch.
            if let Err(e) = self.sync().await {
                self.sync_dirty = true;
                self.backend_failed("reading changes from storage", e);
            }
        }
        for c in cmds {
            match c {
                Command::Sync => {}
                Command::Execute {
                    job_id,
                    task_id,
                    params,
                    reply,
                } => executes.push(ExecuteRequest {
                    job_id,
                    task_id,
                    params,
                    reply,
                }),
                Command::Cancel { task_id, reply } => {
                    let r = self.cancel_task(&task_id, CancelReason::User).await;
                    let _ = reply.send(r);
                }
                Command::CancelJob { job_id, reply } => {
                    let r = self.cancel_job(&job_id).await;
                    let _ = reply.send(r);
                }
                Command::Stats { reply } => {
                    let _ = reply.send(Ok(self.stats()));
                }
                Command::Upcoming {
                    limit,
                    owner,
                    reply,
                } => {
                    let _ = reply.send(Ok(self.jobs.upcoming(limit, owner.as_deref())));
                }
            }
        }
        if !executes.is_empty() {
            self.execute_batch(executes).await;
        }
    }

    /// Records manual runs (one write for the batch) and dispatches what it can at once. A manual run
    /// always runs: the overlap policy applies to scheduled fires only.
    async fn execute_batch(&mut self, reqs: Vec<ExecuteRequest>) {
        if reqs.iter().any(|r| self.jobs.get(&r.job_id).is_none()) {
            // Created elsewhere and not seen yet?
            if let Err(e) = self.sync_jobs(JobLoad::Incremental).await {
                self.backend_failed("reading job changes", e);
            }
        }
        let now = self.now();
        let direct = self.tasks.ready_is_empty();
        let mut recs = Vec::with_capacity(reqs.len());
        let mut jobs = Vec::with_capacity(reqs.len());
        let mut replies = Vec::with_capacity(reqs.len());
        for ExecuteRequest {
            job_id,
            task_id,
            params,
            reply,
        } in reqs
        {
            let Some(js) = self.jobs.get(&job_id) else {
                let _ = reply.send(Err(Error::not_found("job", job_id.as_str())));
                continue;
            };
            let job = js.job.clone();
            let mut rec = records::manual_run(&job, task_id, params, now);
            if direct {
                if let Some((e, epoch)) = self.execs.pick(Some(&job), &rec.task_type) {
                    rec.status = TaskStatus::Dispatched;
                    rec.executor_id = Some(e);
                    rec.executor_epoch = epoch;
                }
            }
            recs.push(rec);
            jobs.push(job);
            replies.push(reply);
        }
        if recs.is_empty() {
            return;
        }
        self.submit(Op::ManualRuns(ManualRuns {
            recs,
            jobs,
            replies,
        }));
    }

    /// Applies a completed manual-run write: registers the tasks and answers the callers.
    pub async fn complete_manual_runs(
        &mut self,
        batch: ManualRuns,
        result: Result<Vec<InsertOutcome>>,
    ) {
        let ManualRuns {
            recs,
            jobs,
            replies,
        } = batch;
        match result {
            Ok(outcomes) => {
                self.backend_ok();
                let mut sends = Vec::new();
                for (((mut rec, job), reply), outcome) in
                    recs.into_iter().zip(jobs).zip(replies).zip(outcomes)
                {
                    if let InsertOutcome::Inserted { id } = outcome {
                        self.inserted(&mut rec, id);
                        self.register_new(rec, job, false, &mut sends);
                        let _ = reply.send(Ok(()));
                    } else {
                        let _ = reply.send(Err(Error::conflict("the task id was already used")));
                    }
                }
                self.send_tasks(sends).await;
            }
            Err(e) => {
                let msg = e.to_string();
                let retryable = e.is_retryable();
                for rec in &recs {
                    if let Some(exec) = &rec.executor_id {
                        self.execs.release(exec, rec.executor_epoch);
                    }
                }
                for reply in replies {
                    let err = if retryable {
                        Error::unavailable("storage", msg.clone())
                    } else {
                        Error::conflict(msg.clone())
                    };
                    let _ = reply.send(Err(err));
                }
                self.backend_failed("recording manual runs", e);
            }
        }
    }

    /// Cancels one task: a queued attempt is recorded cancelled at once; one on an executor is told to stop
    /// (and recorded cancelled when the executor confirms, or after the cancel grace).
    pub async fn cancel_task(
        &mut self,
        task_id: &TaskId,
        reason: CancelReason,
    ) -> Result<CancelOutcome> {
        let now = self.now();
        let cancel_at = now + span_secs(self.sys.cancel_grace_secs);
        let Some(t) = self.tasks.get_mut(task_id) else {
            let attempts = self.sh.storage.task_attempts(task_id).await?;
            let last = attempts.last().expect("task_attempts returns at least one");
            if last.status.is_terminal() {
                return Ok(CancelOutcome::AlreadyFinished {
                    status: last.status,
                });
            }
            // Active in storage but not known here yet: take it in, then cancel it.
            let rec = last.clone();
            self.adopt(rec);
            return Box::pin(self.cancel_task(task_id, reason)).await;
        };
        if matches!(t.phase, Phase::Dispatching { .. }) || t.finishing {
            // A write for it is in flight: its completion honours the cancel (an unsent task is recorded
            // cancelled; a finishing one ends as its executor reported and is not retried).
            if let Some((exec, _)) = t.phase.executor() {
                let executor_id = exec.clone();
                t.cancel.get_or_insert(reason);
                return Ok(CancelOutcome::Cancelling { executor_id });
            }
        }
        if let Some((exec, _)) = t.phase.executor() {
            let exec = exec.clone();
            let attempt = t.rec.attempt;
            t.cancel.get_or_insert(reason);
            let control = Control::Cancel {
                task_id: task_id.clone(),
                attempt,
                reason,
            };
            info!(task_id = %task_id, attempt, executor_id = %exec, ?reason, "cancelling a task on its executor");
            if let Err(e) = self.sh.dispatcher.send_control(&exec, &control).await {
                warn!(task_id = %task_id, error = %e, "sending the cancel failed; the cancel grace will record it");
            }
            self.tasks
                .set_timer(task_id, TimerKind::CancelGrace, cancel_at);
            return Ok(CancelOutcome::Cancelling { executor_id: exec });
        }
        let u = records::queued_cancel(task_id, t.rec.attempt, reason, now);
        let attempt = t.rec.attempt;
        let outcomes = self
            .sh
            .storage
            .update_executions(std::slice::from_ref(&u), Some(&self.fence))
            .await?;
        match outcomes.into_iter().next() {
            Some(UpdateOutcome::Applied { next_id }) => {
                self.finish(task_id, &u, next_id);
                Ok(CancelOutcome::Cancelled)
            }
            Some(other) => {
                self.reconcile_stale(task_id, attempt, &other).await;
                match other {
                    UpdateOutcome::Stale { status, .. } if status.is_terminal() => {
                        Ok(CancelOutcome::AlreadyFinished { status })
                    }
                    _ => Box::pin(self.cancel_task(task_id, reason)).await,
                }
            }
            None => Err(Error::backend("storage", "no outcome for the cancel")),
        }
    }

    /// What the engine holds (cheap: no walk over tasks or jobs).
    pub fn stats(&mut self) -> super::EngineStats {
        let in_flight: u64 = self.execs.iter().map(|e| u64::from(e.inflight)).sum();
        let ready = self.tasks.ready_len() as u64;
        let active = self.tasks.len() as u64;
        super::EngineStats {
            jobs: self.jobs.len() as u64,
            scheduled: self.jobs.scheduled() as u64,
            inserting: self.tasks.inserting() as u64,
            active_tasks: active,
            ready,
            waiting: active.saturating_sub(ready + in_flight),
            executors_online: self.execs.online_count() as u64,
            job_revision: self.job_cursor,
            ready_by_priority: self.tasks.ready_by_priority(),
        }
    }

    /// Cancels every active task of a job; returns how many were cancelled or told to stop.
    pub async fn cancel_job(&mut self, job_id: &JobId) -> Result<usize> {
        let ids: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|t| t.rec.job_id == *job_id)
            .map(|t| t.rec.task_id.clone())
            .collect();
        let mut n = 0;
        for id in ids {
            match self.cancel_task(&id, CancelReason::User).await? {
                CancelOutcome::AlreadyFinished { .. } => {}
                _ => n += 1,
            }
        }
        Ok(n)
    }
}
