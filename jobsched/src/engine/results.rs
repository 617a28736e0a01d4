//! Results from executors: `running` notices (applied at once, written after a delay) and terminal
//! results (written as one conditional write per batch, acknowledged when it completes), and the retry
//! each failed attempt may get.

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use super::actor::Engine;
use super::deferred::{RunningMark, Work};
use super::tasks::{ActiveTask, Phase};
use super::writes::{Op, ResultBatch};
use crate::dispatch::Delivery;
use crate::error::Result;
use crate::model::{ExecutionRecord, TaskId, TaskResult, TaskStatus, Trigger};
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
        // A deleted or disabled job's attempts finish but are not run again.
        let job = self.jobs.get(&rec.job_id).filter(|s| s.job.enabled)?;
        match status {
            TaskStatus::Failed | TaskStatus::TimedOut if rec.attempt <= rec.retry_count => {
                let (backoff, max) = (job.job.retry_backoff, job.job.retry_max_interval);
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
        if let Err(e) = self.adopt_unknown_attempts(&deliveries).await {
            self.deferred.push(Work::Results(deliveries));
            self.backend_failed("reading the attempts of results", e);
            return;
        }
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
        self.submit(Op::Results(ResultBatch {
            deliveries,
            updates,
        }));
    }

    /// Takes in, from storage, the attempts that terminal results end but this engine does not hold (an
    /// attempt another leader dispatched, not adopted yet), so that their retry is planned from the stored
    /// record like any other. Results for attempts that already ended change nothing.
    async fn adopt_unknown_attempts(&mut self, deliveries: &[Delivery<TaskResult>]) -> Result<()> {
        let mut reads = tokio::task::JoinSet::new();
        let mut asked = crate::fastmap::FastMap::default();
        for d in deliveries {
            let r = &d.message;
            if r.status.is_terminal()
                && self.tasks.get(&r.task_id).is_none()
                && asked.insert(r.task_id.clone(), ()).is_none()
            {
                let storage = self.sh.storage.clone();
                let (task_id, attempt) = (r.task_id.clone(), r.attempt);
                reads.spawn(async move { storage.get_execution(&task_id, attempt).await });
            }
        }
        let mut found = Vec::new();
        while let Some(read) = reads.join_next().await {
            match read.map_err(|e| crate::Error::unavailable("scheduler", e.to_string()))? {
                Ok(rec) => found.push(rec),
                Err(crate::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for rec in found {
            let active = matches!(rec.status, TaskStatus::Dispatched | TaskStatus::Running);
            if active && !self.tasks.knows(&rec) {
                debug!(task_id = %rec.task_id, attempt = rec.attempt,
                    "a result ends an attempt not held here: adopted from storage");
                self.adopt(rec);
            }
        }
        Ok(())
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
        batch: ResultBatch,
        result: Result<Vec<UpdateOutcome>>,
    ) {
        let ResultBatch {
            deliveries,
            updates,
        } = batch;
        for u in &updates {
            if let Some(t) = self.tasks.get_mut(&u.task_id) {
                if t.rec.attempt == u.attempt {
                    t.finishing = false;
                }
            }
        }
        let mut updates = updates;
        let outcomes = match result {
            Ok(o) => o,
            Err(e) if refused(&e) => {
                warn!(error = %e, results = updates.len(),
                    "storage refused a batch of results; recording them one by one");
                match self.record_one_by_one(&mut updates).await {
                    Ok(o) => o,
                    Err(e) => {
                        self.deferred.push(Work::Results(deliveries));
                        self.backend_failed("recording results", e);
                        return;
                    }
                }
            }
            Err(e) => {
                // Not acknowledged: kept and applied again once storage answers (a repeat is harmless).
                self.deferred.push(Work::Results(deliveries));
                self.backend_failed("recording results", e);
                return;
            }
        };
        self.backend_ok();
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

    /// Writes the updates of a refused batch one at a time, so that one the store refuses (text it
    /// cannot hold, say) does not hold back the others: a refused one is written again without its
    /// output and with the reason in its error, so the attempt still ends recorded. Fails only with a
    /// retryable error (the whole batch is then applied again later; repeats are harmless).
    async fn record_one_by_one(
        &mut self,
        updates: &mut [ExecutionUpdate],
    ) -> Result<Vec<UpdateOutcome>> {
        let mut outcomes = Vec::with_capacity(updates.len());
        for u in updates.iter_mut() {
            let fence = Some(&self.fence);
            let mut outcome = None;
            // As reported, then (refused) without the output.
            for stripped in [false, true] {
                match self
                    .sh
                    .storage
                    .update_executions(std::slice::from_ref(u), fence)
                    .await
                {
                    Ok(mut o) => {
                        outcome = o.pop();
                        break;
                    }
                    Err(e) if refused(&e) && !stripped => {
                        warn!(task_id = %u.task_id, attempt = u.attempt, error = %e,
                            "storage refused a result; recording it without its output");
                        u.output = Some(String::new());
                        u.error = Some(format!(
                            "the result could not be stored as reported ({e}); its output was dropped"
                        ));
                    }
                    Err(e) if refused(&e) => {
                        tracing::error!(task_id = %u.task_id, attempt = u.attempt, error = %e,
                            "storage refused a result even without its output; it is dropped");
                    }
                    Err(e) => return Err(e),
                }
            }
            outcomes.push(outcome.unwrap_or(UpdateOutcome::NotFound));
        }
        Ok(outcomes)
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
        let t = self
            .tasks
            .set_phase(&r.task_id, Phase::Running { executor, epoch })
            .expect("checked");
        t.started_seen = Some(now);
        t.rec.status = TaskStatus::Running;
        t.rec.start_time = Some(r.start_time);
        let generation = t.generation;
        self.running_marks.push(RunningMark {
            task_id: r.task_id.clone(),
            attempt: r.attempt,
            generation,
            start_time: r.start_time,
            due: tokio::time::Instant::now() + self.sh.config.running_write_delay,
        });
        self.arm_deadline(&r.task_id);
    }

    /// Writes the `running` state of attempts that started at least `running_write_delay` ago and have
    /// not ended (all of them when `all`).
    pub async fn flush_running_marks(&mut self, all: bool) {
        let due = self
            .running_marks
            .take_due(tokio::time::Instant::now(), all);
        if !due.is_empty() {
            self.write_running_marks(due).await;
        }
    }

    /// Writes `running` marks of attempts still running as seen (those that ended or moved on are dropped);
    /// defers them if the write fails.
    pub async fn write_running_marks(&mut self, marks: Vec<RunningMark>) {
        let mut updates = Vec::new();
        let mut kept = Vec::new();
        for m in marks {
            let live = self.tasks.get(&m.task_id).and_then(|t| match &t.phase {
                Phase::Running { executor, .. } if t.generation == m.generation && !t.finishing => {
                    Some(executor.clone())
                }
                _ => None,
            });
            if let Some(exec) = live {
                let mut u = ExecutionUpdate::new(
                    m.task_id.clone(),
                    m.attempt,
                    Expect::OnExecutor(exec),
                    TaskStatus::Running,
                );
                u.start_time = Some(m.start_time);
                updates.push(u);
                kept.push(m);
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
            Ok(_) => self.backend_ok(),
            // Optional: the result writes the start time anyway. Never retried forever.
            Err(e) if refused(&e) => {
                warn!(error = %e, marks = kept.len(), "storage refused `running` marks; they are dropped")
            }
            Err(e) => {
                self.deferred.push(Work::RunningMarks(kept));
                self.backend_failed("recording started tasks", e);
            }
        }
    }
}

/// Whether the store refused a write for what it carries (retrying the same write cannot succeed), as
/// opposed to being unreachable or fenced.
fn refused(e: &crate::Error) -> bool {
    matches!(
        e,
        crate::Error::Invalid { .. } | crate::Error::Backend { .. }
    )
}
