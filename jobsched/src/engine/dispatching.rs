//! Dispatch: giving ready attempts to executors in priority order.

use tracing::{debug, warn};

use super::Event;
use super::core::Engine;
use super::tasks::Phase;
use super::timers::TimerKind;
use crate::model::{Task, TaskId, TaskStatus};
use crate::storage::{ExecutionUpdate, Expect, UpdateOutcome};

impl Engine {
    /// Gives ready attempts to executors with room, highest priority first, until either runs out.
    ///
    /// An attempt is recorded `dispatched` (to the chosen executor) before it is sent, so a scheduler that
    /// dies in between leaves a record its successor sends again.
    pub async fn dispatch(&mut self) {
        let batch = self.sh.config.batch_size;
        while self.healthy() && !self.ready.is_empty() && self.execs.any_free() {
            let mut picked: Vec<(TaskId, crate::model::ExecutorId, u64)> = Vec::new();
            let mut blocked: Vec<TaskId> = Vec::new();
            while picked.len() < batch {
                let Some(task_id) = self.ready.pop(&self.tasks) else {
                    break;
                };
                let t = &self.tasks[&task_id];
                let job = self.jobs.get(&t.rec.job_id).map(|s| s.job.clone());
                match self.execs.pick(job.as_deref(), &t.rec.task_type) {
                    Some((e, epoch)) => picked.push((task_id, e, epoch)),
                    None => {
                        blocked.push(task_id);
                        if !self.execs.any_free() {
                            break;
                        }
                    }
                }
            }
            for task_id in &blocked {
                // Same generation and sequence: it keeps its place in the queue.
                if let Some(t) = self.tasks.get(task_id) {
                    self.ready.push(t);
                }
            }
            if picked.is_empty() {
                return;
            }
            let updates: Vec<ExecutionUpdate> = picked
                .iter()
                .map(|(task_id, e, epoch)| {
                    let mut u = ExecutionUpdate::new(
                        task_id.clone(),
                        self.tasks[task_id].rec.attempt,
                        Expect::Queued,
                        TaskStatus::Dispatched,
                    );
                    u.executor = Some((e.clone(), *epoch));
                    u
                })
                .collect();
            let outcomes = match self
                .sh
                .storage
                .update_executions(&updates, Some(&self.fence))
                .await
            {
                Ok(o) => o,
                Err(err) => {
                    for (task_id, e, epoch) in &picked {
                        self.execs.release(e, *epoch);
                        if let Some(t) = self.tasks.get(task_id) {
                            self.ready.push(t);
                        }
                    }
                    self.storage_failed("recording dispatched tasks", err);
                    return;
                }
            };
            self.storage_ok();
            let now = self.now();
            let redispatch_at = now + self.grace(self.sys.redispatch_after_secs);
            let mut sends = Vec::with_capacity(picked.len());
            for ((task_id, e, epoch), (u, o)) in
                picked.into_iter().zip(updates.iter().zip(outcomes))
            {
                match o {
                    UpdateOutcome::Applied { .. } => {
                        let Some(t) = self.tasks.get_mut(&task_id) else {
                            continue;
                        };
                        u.apply_to(&mut t.rec);
                        t.phase = Phase::Dispatched {
                            executor: e.clone(),
                            epoch,
                        };
                        t.generation += 1;
                        let generation = t.generation;
                        sends.push(t.rec.to_task());
                        let attempt = t.rec.attempt;
                        self.timers.set(
                            task_id.clone(),
                            generation,
                            TimerKind::Redispatch,
                            redispatch_at,
                        );
                        self.emit(Event::Dispatched {
                            task_id,
                            attempt,
                            executor_id: e,
                        });
                    }
                    other => {
                        debug!(task_id = %task_id, outcome = ?other, "queued task changed elsewhere; not dispatched");
                        self.execs.release(&e, epoch);
                        let attempt = u.attempt;
                        self.reconcile_stale(&task_id, attempt, &other).await;
                    }
                }
            }
            self.send_tasks(sends).await;
        }
    }

    /// Sends task messages; on failure they stay `dispatched` and are sent again shortly.
    pub async fn send_tasks(&mut self, tasks: Vec<Task>) {
        if tasks.is_empty() {
            return;
        }
        if let Err(e) = self.sh.dispatcher.send_tasks(&tasks).await {
            warn!(error = %e, tasks = tasks.len(), "sending tasks failed; they will be sent again");
            self.resend_soon(&tasks);
        }
    }
}
