//! Dispatch: giving ready attempts to executors in priority order.

use tracing::{debug, warn};

use super::core::Engine;
use super::pipeline::Op;
use super::tasks::Phase;
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
            && !self.pipeline_full()
            && !self.ready.is_empty()
            && self.execs.any_free()
        {
            let mut picked: Vec<(TaskId, crate::model::ExecutorId, u64)> = Vec::new();
            let mut blocked: Vec<TaskId> = Vec::new();
            while picked.len() < batch {
                let Some(task_id) = self.ready.pop(&self.tasks) else {
                    break;
                };
                let t = &self.tasks[&task_id];
                match self.execs.pick(t.job.as_deref(), &t.rec.task_type) {
                    Some((e, epoch)) => picked.push((task_id, e, epoch)),
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
                if let Some(t) = self.tasks.get(task_id) {
                    self.ready.push_front(t);
                }
            }
            if picked.is_empty() {
                return;
            }
            let mut updates = Vec::with_capacity(picked.len());
            for (task_id, e, epoch) in &picked {
                let t = self
                    .tasks
                    .get_mut(task_id)
                    .expect("popped from the ready queue");
                t.phase = Phase::Dispatching {
                    executor: e.clone(),
                    epoch: *epoch,
                };
                t.generation += 1;
                let mut u = ExecutionUpdate::new(
                    task_id.clone(),
                    t.rec.attempt,
                    Expect::Queued,
                    TaskStatus::Dispatched,
                );
                u.executor = Some((e.clone(), *epoch));
                updates.push(u);
            }
            self.submit(Op::Dispatch { picked, updates });
        }
    }

    /// Applies a completed dispatch write: sends the messages of what was recorded.
    pub async fn complete_dispatch(
        &mut self,
        picked: Vec<(TaskId, crate::model::ExecutorId, u64)>,
        updates: Vec<ExecutionUpdate>,
        result: Result<Vec<UpdateOutcome>>,
    ) {
        let outcomes = match result {
            Ok(o) => o,
            Err(err) => {
                for (task_id, e, epoch) in picked.iter().rev() {
                    self.execs.release(e, *epoch);
                    if let Some(t) = self.tasks.get_mut(task_id) {
                        if matches!(t.phase, Phase::Dispatching { .. }) {
                            t.phase = Phase::Ready;
                            t.generation += 1;
                            self.ready.push_front(t);
                        }
                    }
                }
                self.storage_failed("recording dispatched tasks", err);
                return;
            }
        };
        self.storage_ok();
        let now = self.now();
        let mut sends = Vec::with_capacity(picked.len());
        let mut cancelled = Vec::new();
        for ((task_id, e, epoch), (u, o)) in picked.into_iter().zip(updates.iter().zip(outcomes)) {
            let ours = self.tasks.get(&task_id).is_some_and(|t| {
                t.rec.attempt == u.attempt && matches!(t.phase, Phase::Dispatching { .. })
            });
            match o {
                UpdateOutcome::Applied { .. } if ours => {
                    let t = self.tasks.get_mut(&task_id).expect("checked");
                    u.apply_to(&mut t.rec);
                    t.phase = Phase::Dispatched {
                        executor: e.clone(),
                        epoch,
                    };
                    t.generation += 1;
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
                        && !self.pending_lost.contains(&(e.clone(), epoch))
                    {
                        // Its executor went away meanwhile: fail it over.
                        self.pending_lost.push((e, epoch));
                    }
                }
                other => {
                    debug!(task_id = %task_id, outcome = ?other, "queued task changed elsewhere; not dispatched");
                    self.execs.release(&e, epoch);
                    if ours {
                        // Back in the queue until storage says otherwise (reconciled just below).
                        if let Some(t) = self.tasks.get_mut(&task_id) {
                            t.phase = Phase::Ready;
                            t.generation += 1;
                            self.ready.push(t);
                        }
                    }
                    self.reconcile_stale(&task_id, u.attempt, &other).await;
                }
            }
        }
        self.send_tasks(sends).await;
        if !cancelled.is_empty() {
            self.apply_engine_updates(cancelled, "recording cancelled tasks", Vec::new)
                .await;
        }
    }

    /// Sends task messages; on failure they stay `dispatched` and are sent again shortly.
    pub async fn send_tasks(&mut self, tasks: Vec<Task>) {
        if tasks.is_empty() {
            return;
        }
        if let Err(e) = self.sh.dispatcher.send_tasks(&tasks).await {
            warn!(error = %e, tasks = tasks.len(), "sending tasks failed; they will be sent again");
            self.resend.extend(tasks);
            self.storage_failed("sending tasks", e);
        }
    }

    /// Sends again what must be sent again: the re-send list, and dispatched attempts that have not started
    /// within `redispatch_after_secs` (a lost message; the executor ignores a copy it already has).
    pub async fn redispatch(&mut self) {
        let now = self.now();
        let mut batch = std::mem::take(&mut self.resend);
        if tokio::time::Instant::now() >= self.redispatch_sweep {
            let every = std::time::Duration::from_secs(
                u64::from(self.sys.redispatch_after_secs.max(2)) / 2,
            );
            self.redispatch_sweep = tokio::time::Instant::now() + every;
            let cutoff = now - self.grace(self.sys.redispatch_after_secs);
            for t in self.tasks.values_mut() {
                if matches!(t.phase, Phase::Dispatched { .. })
                    && t.sent_at.is_some_and(|s| s <= cutoff)
                {
                    debug!(task_id = %t.rec.task_id, attempt = t.rec.attempt, "sending a dispatched task again");
                    t.sent_at = Some(now);
                    batch.push(t.rec.to_task());
                }
            }
        }
        // Only attempts still dispatched (to the same executor) are worth sending.
        batch.retain(|m| {
            self.tasks.get(&m.task_id).is_some_and(|t| {
                t.rec.attempt == m.attempt
                    && matches!(&t.phase, Phase::Dispatched { executor, .. } if Some(executor) == m.executor_id.as_ref())
            })
        });
        self.send_tasks(batch).await;
    }
}
