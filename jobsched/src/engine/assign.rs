//! Assigning ready attempts to executors in priority order, and sending the task messages (the transport
//! itself is `crate::dispatch`; which executor gets what is `ExecutorView`).

use tracing::{debug, warn};

use super::actor::{Engine, span_secs};
use super::deferred::Work;
use super::tasks::Phase;
use super::writes::{Assignment, DispatchBatch, Op};
use crate::error::Result;
use crate::model::{Task, TaskId, TaskStatus};
use crate::storage::{ExecutionUpdate, Expect, UpdateOutcome};

impl Engine {
    /// Gives ready attempts to executors with room, highest priority first, until either runs out.
    ///
    /// An attempt is recorded `dispatched` (to the chosen executor) before it is sent, so a scheduler that
    /// dies in between leaves a record its successor sends again.
    pub fn dispatch(&mut self) {
        let batch = self.sh.config.batch_size;
        while self.healthy()
            && !self.writes.full()
            && !self.tasks.ready_is_empty()
            && self.execs.any_free()
        {
            let mut picked: Vec<Assignment> = Vec::new();
            let mut blocked: Vec<TaskId> = Vec::new();
            while picked.len() < batch {
                let Some(task_id) = self.tasks.pop_ready() else {
                    break;
                };
                let t = &self.tasks[&task_id];
                match self.execs.pick(t.job.as_deref(), &t.rec.task_type) {
                    Some((executor, epoch)) => picked.push(Assignment {
                        task_id,
                        executor,
                        epoch,
                    }),
                    None => {
                        blocked.push(task_id);
                        if !self.execs.any_free() {
                            break;
                        }
                    }
                }
            }
            for task_id in blocked.iter().rev() {
                // Back at the head, in the same order: it keeps its place in the queue.
                self.tasks.unpop(task_id);
            }
            if picked.is_empty() {
                return;
            }
            let mut updates = Vec::with_capacity(picked.len());
            for a in &picked {
                let phase = Phase::Dispatching {
                    executor: a.executor.clone(),
                    epoch: a.epoch,
                };
                let t = self
                    .tasks
                    .set_phase(&a.task_id, phase)
                    .expect("popped from the ready queue");
                let mut u = ExecutionUpdate::new(
                    a.task_id.clone(),
                    t.rec.attempt,
                    Expect::Queued,
                    TaskStatus::Dispatched,
                );
                u.executor = Some((a.executor.clone(), a.epoch));
                updates.push(u);
            }
            self.submit(Op::Dispatch(DispatchBatch { picked, updates }));
        }
    }

    /// Applies a completed dispatch write: sends the messages of what was recorded.
    pub async fn complete_dispatch(
        &mut self,
        batch: DispatchBatch,
        result: Result<Vec<UpdateOutcome>>,
    ) {
        let DispatchBatch { picked, updates } = batch;
        let outcomes = match result {
            Ok(o) => o,
            Err(err) => {
                for a in picked.iter().rev() {
                    self.execs.release(&a.executor, a.epoch);
                    let dispatching = self
                        .tasks
                        .get(&a.task_id)
                        .is_some_and(|t| matches!(t.phase, Phase::Dispatching { .. }));
                    if dispatching {
                        self.tasks.requeue(&a.task_id, true);
                    }
                }
                self.backend_failed("recording dispatched tasks", err);
                return;
            }
        };
        self.backend_ok();
        let now = self.now();
        let mut sends = Vec::with_capacity(picked.len());
        let mut cancelled = Vec::new();
        for (a, (u, o)) in picked.into_iter().zip(updates.iter().zip(outcomes)) {
            let Assignment {
                task_id,
                executor: e,
                epoch,
            } = a;
            let ours = self.tasks.get(&task_id).is_some_and(|t| {
                t.rec.attempt == u.attempt && matches!(t.phase, Phase::Dispatching { .. })
            });
            match o {
                UpdateOutcome::Applied { .. } if ours => {
                    let phase = Phase::Dispatched {
                        executor: e.clone(),
                        epoch,
                    };
                    let t = self.tasks.set_phase(&task_id, phase).expect("checked");
                    u.apply_to(&mut t.rec);
                    t.sent_at = Some(now);
                    if t.cancel.is_some() {
                        // Cancelled while its dispatch was being written: never sent, so record it now.
                        let mut c = ExecutionUpdate::new(
                            task_id.clone(),
                            u.attempt,
                            Expect::OnExecutor(e.clone()),
                            TaskStatus::Cancelled,
                        );
                        c.end_time = Some(now);
                        c.error = Some("cancelled before it was sent to its executor".into());
                        cancelled.push(c);
                    } else {
                        sends.push(t.rec.to_task());
                    }
                    if !self
                        .execs
                        .get(&e)
                        .is_some_and(|x| x.online && x.epoch == epoch)
                    {
                        // Its executor went away meanwhile: fail it over.
                        self.deferred.executor_lost(e, epoch);
                    }
                }
                other => {
                    debug!(task_id = %task_id, outcome = ?other, "queued task changed elsewhere; not dispatched");
                    self.execs.release(&e, epoch);
                    if ours {
                        // Back in the queue until storage says otherwise (reconciled just below).
                        self.tasks.requeue(&task_id, false);
                    }
                    self.reconcile_stale(&task_id, u.attempt, &other).await;
                }
            }
        }
        self.send_tasks(sends).await;
        if !cancelled.is_empty() {
            self.apply_engine_updates(cancelled, "recording cancelled tasks", Vec::new())
                .await;
        }
    }

    /// Sends task messages; on a retryable failure they stay `dispatched` and are sent again shortly. A
    /// message the transport refuses for good (too big) ends its attempt as failed, without a retry (it
    /// would be refused again), and does not hold back the others.
    pub async fn send_tasks(&mut self, tasks: Vec<Task>) {
        if tasks.is_empty() {
            return;
        }
        match self.sh.dispatcher.send_tasks(&tasks).await {
            Ok(()) => {}
            Err(e) if !e.is_retryable() && tasks.len() > 1 => {
                debug!(error = %e, tasks = tasks.len(), "a batch of tasks was refused; sending them one by one");
                for t in tasks {
                    Box::pin(self.send_tasks(vec![t])).await;
                }
            }
            Err(e) if !e.is_retryable() => self.refuse_task(&tasks[0], &e).await,
            Err(e) => {
                warn!(error = %e, tasks = tasks.len(), "sending tasks failed; they will be sent again");
                self.deferred.push(Work::Send(tasks));
                self.backend_failed("sending tasks", e);
            }
        }
    }

    /// Records an attempt whose message the transport refused for good as failed, with the reason.
    async fn refuse_task(&mut self, task: &Task, e: &crate::Error) {
        let Some(exec) = task.executor_id.clone() else {
            return;
        };
        warn!(task_id = %task.task_id, job_id = %task.job_id, attempt = task.attempt, executor_id = %exec,
            error = %e, "the transport refused the task's message; the attempt fails");
        let mut u = ExecutionUpdate::new(
            task.task_id.clone(),
            task.attempt,
            Expect::OnExecutor(exec),
            TaskStatus::Failed,
        );
        u.end_time = Some(self.now());
        u.exit_code = Some(-1);
        u.error = Some(format!("could not be sent to its executor: {e}"));
        self.apply_engine_updates(
            vec![u],
            "recording a task its transport refused",
            Vec::new(),
        )
        .await;
    }

    /// Sends dispatched attempts that have not started within `redispatch_after_secs` again (a lost
    /// message; the executor ignores a copy it already has).
    pub async fn redispatch_stalled(&mut self) {
        let now = self.now();
        let every =
            std::time::Duration::from_secs(u64::from(self.sys.redispatch_after_secs.max(2)) / 2);
        self.redispatch_sweep = tokio::time::Instant::now() + every;
        let cutoff = now - span_secs(self.sys.redispatch_after_secs);
        let mut batch = Vec::new();
        for t in self.tasks.values_mut() {
            if matches!(t.phase, Phase::Dispatched { .. }) && t.sent_at.is_some_and(|s| s <= cutoff)
            {
                debug!(task_id = %t.rec.task_id, attempt = t.rec.attempt, "sending a dispatched task again");
                t.sent_at = Some(now);
                batch.push(t.rec.to_task());
            }
        }
        self.send_tasks(batch).await;
    }

    /// Sends deferred task messages, those still dispatched to the same executor (the others moved on).
    pub async fn resend(&mut self, mut batch: Vec<Task>) {
        batch.retain(|m| {
            self.tasks.get(&m.task_id).is_some_and(|t| {
                t.rec.attempt == m.attempt
                    && matches!(&t.phase, Phase::Dispatched { executor, .. } if Some(executor) == m.executor_id.as_ref())
            })
        });
        self.send_tasks(batch).await;
    }
}
