//! Results, retries, executor loss and the per-task timers.

use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use super::core::Engine;
use super::pipeline::Op;
use super::tasks::{ActiveTask, Phase};
use super::timers::TimerKind;
use crate::coord::executor_info;
use crate::dispatch::Delivery;
use crate::error::Result;
use crate::model::{
    CancelReason, Control, ExecutionRecord, ExecutorHeartbeat, ExecutorId, ExecutorRecord,
    ExecutorStatus, RetryBackoff, TaskId, TaskResult, TaskStatus, Trigger,
};
use crate::storage::{ExecutionUpdate, Expect, UpdateOutcome};

impl Engine {
    /// The next attempt after `rec` ended with `status`, if the policy allows one.
    pub fn plan_retry(
        &self,
        t: &ActiveTask,
        status: TaskStatus,
        no_retry: bool,
        retry_after_ms: Option<u64>,
        now: DateTime<Utc>,
    ) -> Option<ExecutionRecord> {
        let rec = &t.rec;
        if t.cancel.is_some() || no_retry {
            return None;
        }
        match status {
            TaskStatus::Failed | TaskStatus::TimedOut if rec.attempt <= rec.retry_count => {
                let (backoff, max) = self
                    .jobs
                    .get(&rec.job_id)
                    .map(|s| (s.job.retry_backoff, s.job.retry_max_interval))
                    .unwrap_or((RetryBackoff::Fixed, 0));
                let delay = match retry_after_ms {
                    // A handler's own wait is bounded like every configured one (30 days).
                    Some(ms) => std::time::Duration::from_millis(ms)
                        .min(crate::clock::secs(crate::model::limits::MAX_SECONDS)),
                    None => backoff.delay(rec.retry_interval, max, rec.attempt),
                };
                Some(rec.next_attempt(Trigger::Retry, crate::clock::add(now, delay), now))
            }
            TaskStatus::Lost if rec.attempt <= rec.retry_count + self.sys.max_failovers => {
                Some(rec.next_attempt(Trigger::Failover, now, now))
            }
            _ => None,
        }
    }

    /// Takes a batch of results: `running` ones are applied in memory at once (written later if the task
    /// is still running); terminal ones are written as one conditional write, and acknowledged when it
    /// completes.
    pub async fn on_results(&mut self, deliveries: Vec<Delivery<TaskResult>>) {
        let now = self.now();
        // A terminal result makes a `running` one for the same attempt in this batch moot.
        let mut terminal: crate::fastmap::FastMap<(&TaskId, u32), usize> = Default::default();
        for (i, d) in deliveries.iter().enumerate() {
            if d.message.status.is_terminal() {
                terminal.insert((&d.message.task_id, d.message.attempt), i);
            }
        }
        let mut updates = Vec::new();
        let mut started = Vec::new();
        for d in &deliveries {
            let r = &d.message;
            match r.status {
                TaskStatus::Running => {
                    if !terminal.contains_key(&(&r.task_id, r.attempt)) {
                        started.push(r.clone());
                    }
                }
                s if s.is_terminal() => {
                    let mut u = ExecutionUpdate::new(
                        r.task_id.clone(),
                        r.attempt,
                        Expect::OnExecutor(r.executor_id.clone()),
                        s,
                    );
                    u.start_time = Some(r.start_time);
                    u.end_time = Some(r.end_time.unwrap_or(now));
                    u.output = Some(r.output.clone());
                    u.error = Some(r.error.clone());
                    u.exit_code = Some(r.exit_code);
                    u.next_attempt = self
                        .tasks
                        .get(&r.task_id)
                        .filter(|t| t.rec.attempt == r.attempt)
                        .and_then(|t| self.plan_retry(t, s, r.no_retry, r.retry_after_ms, now));
                    updates.push(u);
                }
                other => warn!(task_id = %r.task_id, status = %other,
                    "ignoring a result with a status executors do not send"),
            }
        }
        drop(terminal);
        for r in &started {
            self.on_started(r, now);
        }
        if updates.is_empty() {
            self.ack_results(&deliveries).await;
            return;
        }
        for u in &updates {
            if let Some(t) = self.tasks.get_mut(&u.task_id) {
                // Only an attempt on an executor can be ending; a result for a queued one is bogus and its
                // conditional write will not apply.
                if t.rec.attempt == u.attempt && t.phase.executor().is_some() {
                    t.finishing = true;
                }
            }
        }
        self.submit(Op::Results {
            deliveries,
            updates,
        });
    }

    async fn ack_results(&mut self, deliveries: &[Delivery<TaskResult>]) {
        let tags: Vec<_> = deliveries.iter().map(|d| d.tag).collect();
        if let Err(e) = self.results.ack(&tags).await {
            warn!(error = %e, "acknowledging results failed; they may be delivered again (harmless)");
        }
    }

    /// Applies a completed result write: ends the attempts in memory, then acknowledges the results.
    pub async fn complete_results(
        &mut self,
        deliveries: Vec<Delivery<TaskResult>>,
        updates: Vec<ExecutionUpdate>,
        result: Result<Vec<UpdateOutcome>>,
    ) {
        for u in &updates {
            if let Some(t) = self.tasks.get_mut(&u.task_id) {
                if t.rec.attempt == u.attempt {
                    t.finishing = false;
                }
            }
        }
        let outcomes = match result {
            Ok(o) => o,
            Err(e) => {
                // Not acknowledged: kept and applied again once storage answers (a repeat is harmless).
                self.pending_results.extend(deliveries);
                self.storage_failed("recording results", e);
                return;
            }
        };
        self.storage_ok();
        for (u, o) in updates.iter().zip(outcomes) {
            // A cancel asked for while the result was being written still applies (to a planned retry, or
            // to the attempt if the result did not apply).
            let cancel = self
                .tasks
                .get(&u.task_id)
                .filter(|t| t.rec.attempt == u.attempt)
                .and_then(|t| t.cancel);
            match o {
                UpdateOutcome::Applied { next_id } => {
                    self.finish(&u.task_id, u, next_id);
                    if let (Some(reason), Some(_)) = (cancel, &u.next_attempt) {
                        let _ = self.cancel_task(&u.task_id, reason).await;
                    }
                }
                UpdateOutcome::Stale {
                    status,
                    executor_id,
                } => {
                    debug!(task_id = %u.task_id, attempt = u.attempt, now = %status,
                        executor_id = ?executor_id, "duplicate or stale result ignored");
                    if status.is_terminal() {
                        self.forget(&u.task_id, u.attempt);
                    } else if let Some(reason) = cancel {
                        let _ = self.cancel_task(&u.task_id, reason).await;
                    }
                }
                UpdateOutcome::NotFound => {
                    warn!(task_id = %u.task_id, attempt = u.attempt, "result for an unknown attempt ignored")
                }
            }
        }
        self.ack_results(&deliveries).await;
    }

    fn on_started(&mut self, r: &TaskResult, now: DateTime<Utc>) {
        let Some(t) = self.tasks.get_mut(&r.task_id) else {
            return;
        };
        let matches = t.rec.attempt == r.attempt
            && matches!(&t.phase, Phase::Dispatched { executor, .. } if *executor == r.executor_id);
        if !matches {
            return;
        }
        let Phase::Dispatched { executor, epoch } = t.phase.clone() else {
            return;
        };
        t.phase = Phase::Running { executor, epoch };
        t.generation += 1;
        t.started_seen = Some(now);
        t.rec.status = TaskStatus::Running;
        t.rec.start_time = Some(r.start_time);
        let generation = t.generation;
        let delay = self.sh.config.running_write_delay;
        self.running_writes.push_back((
            r.task_id.clone(),
            r.attempt,
            generation,
            r.start_time,
            tokio::time::Instant::now() + delay,
        ));
        self.arm_deadline(&r.task_id);
    }

    /// Writes the `running` state of attempts that started at least `running_write_delay` ago and have
    /// not ended (all of them when `all`).
    pub async fn flush_running_writes(&mut self, all: bool) {
        let now = tokio::time::Instant::now();
        let mut updates = Vec::new();
        let mut kept = Vec::new();
        while let Some(w) = self.running_writes.front() {
            if !all && w.4 > now {
                break;
            }
            let w = self.running_writes.pop_front().expect("peeked");
            let live = self.tasks.get(&w.0).and_then(|t| match &t.phase {
                Phase::Running { executor, .. } if t.generation == w.2 && !t.finishing => {
                    Some(executor.clone())
                }
                _ => None,
            });
            if let Some(exec) = live {
                let mut u = ExecutionUpdate::new(
                    w.0.clone(),
                    w.1,
                    Expect::OnExecutor(exec),
                    TaskStatus::Running,
                );
                u.start_time = Some(w.3);
                updates.push(u);
                kept.push(w);
            }
        }
        if updates.is_empty() {
            return;
        }
        match self
            .sh
            .storage
            .update_executions(&updates, Some(&self.fence))
            .await
        {
            Ok(_) => self.storage_ok(),
            Err(e) => {
                for w in kept.into_iter().rev() {
                    self.running_writes.push_front(w);
                }
                self.storage_failed("recording started tasks", e);
            }
        }
    }

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
            self.pending_lost.push((id, epoch));
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
        if busy && !self.lost_later.contains(&(id.clone(), epoch)) {
            self.lost_later.push((id.clone(), epoch));
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
        self.apply_engine_updates(updates, "recording tasks of a lost executor", || {
            vec![(id.clone(), epoch)]
        })
        .await;
    }

    /// Writes updates the engine decided on (lost, timed out, cancelled) and finishes them in memory.
    /// On failure, `on_fail` says what to retry later (executors to fail over again).
    pub async fn apply_engine_updates(
        &mut self,
        updates: Vec<ExecutionUpdate>,
        what: &str,
        on_fail: impl FnOnce() -> Vec<(ExecutorId, u64)>,
    ) -> bool {
        match self
            .sh
            .storage
            .update_executions(&updates, Some(&self.fence))
            .await
        {
            Ok(outcomes) => {
                self.storage_ok();
                for (u, o) in updates.iter().zip(outcomes) {
                    match o {
                        UpdateOutcome::Applied { next_id } => self.finish(&u.task_id, u, next_id),
                        other => self.reconcile_stale(&u.task_id, u.attempt, &other).await,
                    }
                }
                true
            }
            Err(e) => {
                self.pending_lost.extend(on_fail());
                self.storage_failed(what, e);
                false
            }
        }
    }

    /// Handles every per-task timer due by `now`.
    pub async fn on_timers(&mut self, now: DateTime<Utc>) {
        let mut updates = Vec::new();
        let mut cancels = Vec::new();
        let mut rearm = Vec::new();
        let mut later = Vec::new();
        while let Some(f) = self.timers.pop_due(now) {
            let Some(t) = self.tasks.get(&f.task) else {
                continue;
            };
            if t.generation != f.generation {
                continue;
            }
            if t.finishing && f.kind != TimerKind::Due {
                // Its result is being written; look again shortly (it has most likely ended).
                later.push((f.task.clone(), f.generation, f.kind));
                continue;
            }
            match (f.kind, &t.phase) {
                (TimerKind::Due, Phase::Waiting) => self.make_ready(&f.task),
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
            self.timers.set(task, generation, kind, soon);
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
                .apply_engine_updates(updates, "recording timed-out or cancelled tasks", Vec::new)
                .await
        {
            for (task, generation, kind) in rearm {
                self.timers.set(task, generation, kind, now);
            }
        }
    }
}
