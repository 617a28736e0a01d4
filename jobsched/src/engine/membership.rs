//! Executor membership: joins and leaves seen through the coordinator, and the failover of every
//! attempt on an executor incarnation that was lost.

use tracing::{info, warn};

use super::actor::Engine;
use super::tasks::Phase;
use crate::coord::executor_info;
use crate::model::{
    ExecutorHeartbeat, ExecutorId, ExecutorRecord, ExecutorStatus, TaskId, TaskStatus,
};
use crate::storage::{ExecutionUpdate, Expect};

impl Engine {
    /// Reads the executor membership and acts on joins and leaves.
    pub async fn apply_members(&mut self) {
        let members = self.members.borrow_and_update().clone();
        let mut infos = Vec::with_capacity(members.len());
        for m in members.iter() {
            match executor_info(m) {
                Ok(i) => infos.push((i, m.epoch)),
                Err(e) => warn!(error = %e, "ignoring a malformed executor registration"),
            }
        }
        let diff = self.execs.set_members(infos);
        let now = self.now();
        for (info, epoch) in diff.joined {
            info!(executor_id = %info.executor_id, epoch, capacity = info.capacity, handlers = ?info.handlers,
                "executor online");
            match self
                .sh
                .storage
                .upsert_executor(&ExecutorRecord::from_info(&info, now))
                .await
            {
                Ok(stored) => self.execs.set_enabled(&info, stored.enabled),
                Err(e) => warn!(executor_id = %info.executor_id, error = %e,
                    "recording an executor failed; the next poll retries"),
            }
        }
        for (id, epoch) in diff.left {
            info!(executor_id = %id, epoch, "executor offline");
            let beat = ExecutorHeartbeat {
                executor_id: id.clone(),
                status: ExecutorStatus::Offline,
                at: now,
                running: 0,
            };
            if let Err(e) = self.sh.storage.record_heartbeats(&[beat]).await {
                warn!(executor_id = %id, error = %e, "recording an executor offline failed");
            }
            self.deferred.executor_lost(id, epoch);
        }
    }

    /// Records every attempt on a lost executor incarnation as lost, with a failover attempt if allowed.
    pub async fn executor_lost(&mut self, id: ExecutorId, epoch: u64) {
        let now = self.now();
        let mut busy = false;
        let victims: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|t| t.phase.executor() == Some((&id, epoch)))
            .filter(|t| {
                // A write for it is in flight: decide once it completes.
                let b = t.finishing || matches!(t.phase, Phase::Dispatching { .. });
                busy |= b;
                !b
            })
            .map(|t| t.rec.task_id.clone())
            .collect();
        if busy {
            self.deferred.executor_lost_after_writes(id.clone(), epoch);
        }
        if victims.is_empty() {
            return;
        }
        let mut updates = Vec::with_capacity(victims.len());
        for task_id in &victims {
            let t = &self.tasks[task_id];
            let was = if matches!(t.phase, Phase::Running { .. }) {
                "running"
            } else {
                "dispatched"
            };
            let mut u = ExecutionUpdate::new(
                task_id.clone(),
                t.rec.attempt,
                Expect::OnExecutor(id.clone()),
                TaskStatus::Lost,
            );
            u.end_time = Some(now);
            u.error = Some(format!(
                "executor '{id}' was lost (its session ended) while the task was {was}"
            ));
            u.next_attempt = self.plan_retry(t, TaskStatus::Lost, false, None, now);
            updates.push(u);
        }
        warn!(executor_id = %id, epoch, tasks = victims.len(), "failing over the tasks of a lost executor");
        self.apply_engine_updates(
            updates,
            "recording tasks of a lost executor",
            vec![(id.clone(), epoch)],
        )
        .await;
    }
}
