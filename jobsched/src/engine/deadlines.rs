//! Per-task timers: a waiting retry becomes ready, a running attempt passes its timeout backstop, a
//! cancelled attempt is not confirmed within the cancel grace.

use chrono::{DateTime, Utc};
use tracing::warn;

use super::actor::Engine;
use super::tasks::Phase;
use super::timers::TimerKind;
use crate::model::{CancelReason, Control, TaskStatus};
use crate::storage::{ExecutionUpdate, Expect};

impl Engine {
    /// Handles every per-task timer due by `now`.
    pub async fn on_timers(&mut self, now: DateTime<Utc>) {
        let mut updates = Vec::new();
        let mut cancels = Vec::new();
        let mut rearm = Vec::new();
        let mut later = Vec::new();
        while let Some(f) = self.tasks.pop_due_timer(now) {
            let t = &self.tasks[&f.task];
            if t.finishing && f.kind != TimerKind::Due {
                // Its result is being written; look again shortly (it has most likely ended).
                later.push((f.task.clone(), f.generation, f.kind));
                continue;
            }
            match (f.kind, &t.phase) {
                (TimerKind::Due, Phase::Waiting) => self.tasks.make_ready(&f.task),
                (
                    TimerKind::Deadline,
                    Phase::Running { executor, .. } | Phase::Dispatched { executor, .. },
                ) => {
                    let mut u = ExecutionUpdate::new(
                        f.task.clone(),
                        t.rec.attempt,
                        Expect::OnExecutor(executor.clone()),
                        TaskStatus::TimedOut,
                    );
                    u.end_time = Some(now);
                    u.error = Some(format!(
                        "no result within the timeout of {}s plus {}s grace; recorded as timed out by the scheduler",
                        t.rec.timeout, self.sys.timeout_grace_secs
                    ));
                    u.next_attempt = self.plan_retry(t, TaskStatus::TimedOut, false, None, now);
                    cancels.push((
                        executor.clone(),
                        f.task.clone(),
                        t.rec.attempt,
                        CancelReason::Timeout,
                    ));
                    rearm.push((f.task.clone(), f.generation, f.kind));
                    updates.push(u);
                }
                (TimerKind::CancelGrace, phase) if phase.executor().is_some() => {
                    let (executor, _) = phase.executor().expect("checked");
                    let mut u = ExecutionUpdate::new(
                        f.task.clone(),
                        t.rec.attempt,
                        Expect::OnExecutor(executor.clone()),
                        TaskStatus::Cancelled,
                    );
                    u.end_time = Some(now);
                    u.error = Some(format!(
                        "cancelled; executor '{executor}' did not confirm within {}s",
                        self.sys.cancel_grace_secs
                    ));
                    rearm.push((f.task.clone(), f.generation, f.kind));
                    updates.push(u);
                }
                _ => {}
            }
        }
        let soon = now + chrono::TimeDelta::seconds(1);
        for (task, generation, kind) in later {
            self.tasks.rearm(task, generation, kind, soon);
        }
        for (exec, task_id, attempt, reason) in cancels {
            let c = Control::Cancel {
                task_id,
                attempt,
                reason,
            };
            if let Err(e) = self.sh.dispatcher.send_control(&exec, &c).await {
                warn!(executor_id = %exec, error = %e, "sending a cancel to an executor failed");
            }
        }
        if !updates.is_empty()
            && !self
                .apply_engine_updates(
                    updates,
                    "recording timed-out or cancelled tasks",
                    Vec::new(),
                )
                .await
        {
            for (task, generation, kind) in rearm {
                self.tasks.rearm(task, generation, kind, now);
            }
        }
    }
}
