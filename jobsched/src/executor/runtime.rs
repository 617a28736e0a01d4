//! The executor's event loop.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::attempt::run_one;
use crate::Backends;
use crate::clock::{SharedClock, secs};
use crate::coord::{CONFIG_KEY, CoordinatorExt, Registration, published};
use crate::dispatch::{AckTag, Delivery, Inbox};
use crate::error::{Error, Result};
use crate::fastmap::{FastMap, FastSet};
use crate::guard::Guarded;
use crate::handler::{HandlerRegistry, TaskContext};
use crate::model::{
    CancelReason, Control, ExecutorInfo, SystemConfig, Task, TaskId, TaskResult, TaskStatus,
};
use crate::storage::Versioned;

/// Attempts remembered to drop redelivered copies.
const SEEN_LIMIT: usize = 100_000;
/// Tasks started per loop turn at most (handlers finishing inline let one turn start many).
const START_BUDGET: usize = 1024;

/// Counters shared with the [`Executor`](super::Executor) handle.
#[derive(Debug, Default)]
pub(crate) struct State {
    running: AtomicUsize,
    epoch: AtomicU64,
    config_version: AtomicU64,
}

impl State {
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }
    pub fn config_version(&self) -> u64 {
        self.config_version.load(Ordering::Relaxed)
    }
}

type Key = (TaskId, u32);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    priority: i32,
    seq: Reverse<u64>,
    #[allow(clippy::struct_field_names)]
    key: Key,
}

struct Running {
    ctx: TaskContext,
}

pub(crate) struct Runtime {
    info: ExecutorInfo,
    backends: Backends,
    handlers: HandlerRegistry,
    clock: SharedClock,
    sys: SystemConfig,
    shutdown_grace: Duration,
    state: Arc<State>,
    registration: Box<dyn Registration>,
    lost: CancellationToken,
    epoch: u64,
    tasks: Box<dyn Inbox<Task>>,
    controls: Box<dyn Inbox<Control>>,
    config_rx: watch::Receiver<Option<Versioned<Vec<u8>>>>,
    queue: BinaryHeap<Queued>,
    queued: FastMap<Key, (Task, AckTag)>,
    running: FastMap<Key, Running>,
    seen: FastSet<Key>,
    seen_order: VecDeque<Key>,
    /// Cancels that arrived before their task (the task is reported with the cancel's status on arrival).
    early_cancels: FastMap<Key, CancelReason>,
    early_cancels_order: VecDeque<Key>,
    join: JoinSet<(Key, TaskResult)>,
    outbox: Vec<TaskResult>,
    seq: u64,
    backoff_until: Option<tokio::time::Instant>,
    shutdown: CancellationToken,
}

async fn register(
    backends: &Backends,
    info: &ExecutorInfo,
    shutdown: Option<&CancellationToken>,
) -> Result<Box<dyn Registration>> {
    let mut waited = false;
    loop {
        match backends.coordinator.register_executor(info).await {
            Ok(r) => return Ok(r),
            Err(e) if e.is_retryable() || matches!(e, Error::AlreadyExists { .. }) => {
                if !waited {
                    info!(executor_id = %info.executor_id,
                        "waiting to register: a previous session of this executor has not expired yet, or the coordinator is unreachable");
                    waited = true;
                }
                let pause = tokio::time::sleep(Duration::from_millis(500));
                match shutdown {
                    Some(s) => tokio::select! {
                        _ = s.cancelled() => return Err(Error::Closed { component: "executor" }),
                        _ = pause => {}
                    },
                    None => pause.await,
                }
            }
            Err(e) => return Err(e),
        }
    }
}

impl Runtime {
    pub async fn start(
        info: ExecutorInfo,
        backends: Backends,
        handlers: HandlerRegistry,
        clock: SharedClock,
        sys: SystemConfig,
        shutdown_grace: Duration,
        state: Arc<State>,
    ) -> Result<Runtime> {
        let tasks = backends.dispatcher.task_inbox(&info.executor_id).await?;
        let controls = backends.dispatcher.control_inbox(&info.executor_id).await?;
        let config_rx = backends.coordinator.watch(CONFIG_KEY).await?;
        let sys = published::newer(0, config_rx.borrow().as_ref()).unwrap_or(Versioned {
            value: sys,
            version: 0,
        });
        state.config_version.store(sys.version, Ordering::Relaxed);
        let sys = sys.value;
        let registration = register(&backends, &info, None).await?;
        let epoch = registration.epoch();
        state.epoch.store(epoch, Ordering::Relaxed);
        info!(executor_id = %info.executor_id, epoch, capacity = info.capacity, handlers = ?info.handlers, "executor registered");
        Ok(Runtime {
            lost: registration.lost(),
            registration,
            epoch,
            info,
            backends,
            handlers,
            clock,
            sys,
            shutdown_grace,
            state,
            tasks,
            controls,
            config_rx,
            queue: BinaryHeap::new(),
            queued: FastMap::default(),
            running: FastMap::default(),
            seen: FastSet::default(),
            seen_order: VecDeque::new(),
            early_cancels: FastMap::default(),
            early_cancels_order: VecDeque::new(),
            join: JoinSet::new(),
            outbox: Vec::new(),
            seq: 0,
            backoff_until: None,
            shutdown: CancellationToken::new(),
        })
    }

    fn remember(&mut self, key: Key) -> bool {
        if !self.seen.insert(key.clone()) {
            return false;
        }
        self.seen_order.push_back(key);
        if self.seen_order.len() > SEEN_LIMIT {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    fn result(&self, task: &Task, status: TaskStatus) -> TaskResult {
        TaskResult {
            task_id: task.task_id.clone(),
            job_id: task.job_id.clone(),
            executor_id: self.info.executor_id.clone(),
            status,
            start_time: self.clock.now(),
            end_time: status.is_terminal().then(|| self.clock.now()),
            output: String::new(),
            error: String::new(),
            exit_code: 0,
            attempt: task.attempt,
            executor_epoch: self.epoch,
            no_retry: false,
            retry_after_ms: None,
        }
    }

    /// Applies a newer central configuration (to tasks started from now on).
    fn apply_config(&mut self) {
        let newer = published::newer(
            self.state.config_version(),
            self.config_rx.borrow_and_update().as_ref(),
        );
        if let Some(c) = newer {
            info!(version = c.version, "system configuration changed");
            self.sys = c.value;
            self.state
                .config_version
                .store(c.version, Ordering::Relaxed);
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        self.shutdown = shutdown.clone();
        let span = info_span!("executor", executor_id = %self.info.executor_id);
        async move {
            loop {
                let room = self.queued.len() < (self.info.capacity as usize).max(64);
                let healthy = self.backoff_until.is_none_or(|t| tokio::time::Instant::now() >= t);
                let wake = self
                    .backoff_until
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
                // Queued tasks and a free slot: go round again without waiting for an event. (Handlers
                // that finish inline free their slot at once, so no task end would wake the loop.)
                let startable = healthy
                    && !self.queue.is_empty()
                    && self.running.len() < self.info.capacity as usize;
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    _ = self.lost.cancelled() => self.session_lost().await,
                    Some(done) = self.join.join_next(), if !self.join.is_empty() => self.finished(done),
                    r = self.controls.recv(64) => self.on_controls(r).await,
                    r = self.tasks.recv(256), if room => self.on_tasks(r).await,
                    r = self.config_rx.changed() => {
                        if r.is_ok() {
                            self.apply_config();
                        }
                    }
                    _ = tokio::time::sleep_until(wake), if !healthy => {}
                    _ = std::future::ready(()), if startable => {}
                }
                if self.backoff_until.is_none_or(|t| tokio::time::Instant::now() >= t) {
                    self.backoff_until = None;
                    // Handlers that finish inline free their slots at once: keep starting, up to a
                    // budget per turn (control messages and new deliveries are not kept waiting).
                    let mut budget = START_BUDGET;
                    while budget > 0 && self.backoff_until.is_none() {
                        let started = self.start_ready().await;
                        if started == 0 {
                            break;
                        }
                        budget = budget.saturating_sub(started);
                    }
                    // After starting: tasks that finished inline have their results in the outbox now.
                    self.flush_outbox().await;
                }
            }
            self.drain().await;
        }
        .instrument(span)
        .await
    }

    async fn on_tasks(&mut self, r: Result<Vec<Delivery<Task>>>) {
        let deliveries = match r {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "receiving tasks failed");
                self.backoff();
                return;
            }
        };
        let mut drop_tags = Vec::new();
        for d in deliveries {
            let task = d.message;
            let key = (task.task_id.clone(), task.attempt);
            if task.executor_epoch != 0 && task.executor_epoch != self.epoch {
                debug!(task_id = %task.task_id, attempt = task.attempt, task_epoch = task.executor_epoch,
                    epoch = self.epoch, "dropping a task sent to an earlier registration");
                drop_tags.push(d.tag);
                continue;
            }
            if let Some(reason) = self.early_cancels.remove(&key) {
                info!(task_id = %task.task_id, attempt = task.attempt, ?reason, "cancelled before it arrived");
                self.remember(key);
                let mut res = self.result(&task, reason.status());
                res.error = "cancelled before it started on the executor".into();
                self.outbox.push(res);
                drop_tags.push(d.tag);
                continue;
            }
            if self.running.contains_key(&key)
                || self.queued.contains_key(&key)
                || !self.remember(key.clone())
            {
                debug!(task_id = %task.task_id, attempt = task.attempt, "dropping a copy of an attempt already taken");
                drop_tags.push(d.tag);
                continue;
            }
            self.seq += 1;
            self.queue.push(Queued {
                priority: task.priority,
                seq: Reverse(self.seq),
                key: key.clone(),
            });
            self.queued.insert(key, (task, d.tag));
        }
        if !drop_tags.is_empty() {
            let _ = self.tasks.ack(&drop_tags).await;
        }
    }

    async fn on_controls(&mut self, r: Result<Vec<Delivery<Control>>>) {
        let deliveries = match r {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "receiving control messages failed");
                self.backoff();
                return;
            }
        };
        let mut tags = Vec::new();
        for d in deliveries {
            tags.push(d.tag);
            match d.message {
                Control::Cancel {
                    task_id,
                    attempt,
                    reason,
                } => {
                    let key = (task_id, attempt);
                    if let Some(r) = self.running.get(&key) {
                        info!(task_id = %key.0, attempt, ?reason, "stopping a running task");
                        r.ctx.cancel(reason);
                    } else if let Some((task, tag)) = self.queued.remove(&key) {
                        info!(task_id = %key.0, attempt, ?reason, "cancelled before it started");
                        let mut res = self.result(&task, reason.status());
                        res.error = "cancelled before it started on the executor".into();
                        self.outbox.push(res);
                        let _ = self.tasks.ack(&[tag]).await;
                    } else if !self.seen.contains(&key) {
                        // The task itself has not arrived yet: remember the cancel for when it does.
                        self.early_cancels_order.push_back(key.clone());
                        self.early_cancels.insert(key, reason);
                        if self.early_cancels_order.len() > SEEN_LIMIT {
                            if let Some(old) = self.early_cancels_order.pop_front() {
                                self.early_cancels.remove(&old);
                            }
                        }
                    }
                }
            }
        }
        let _ = self.controls.ack(&tags).await;
    }

    /// Starts queued tasks while there is room: reports them `running`, then acknowledges and runs them.
    /// Returns how many it started.
    async fn start_ready(&mut self) -> usize {
        let mut starting = Vec::new();
        while self.running.len() + starting.len() < self.info.capacity as usize {
            let Some(q) = self.queue.pop() else { break };
            if let Some(entry) = self.queued.remove(&q.key) {
                starting.push(entry);
            }
        }
        if starting.is_empty() {
            return 0;
        }
        let notices: Vec<TaskResult> = starting
            .iter()
            .map(|(t, _)| self.result(t, TaskStatus::Running))
            .collect();
        if let Err(e) = self.backends.dispatcher.send_results(&notices).await {
            warn!(error = %e, "reporting started tasks failed; they wait");
            for (task, tag) in starting {
                let key = (task.task_id.clone(), task.attempt);
                self.seq += 1;
                self.queue.push(Queued {
                    priority: task.priority,
                    seq: Reverse(self.seq),
                    key: key.clone(),
                });
                self.queued.insert(key, (task, tag));
            }
            self.backoff();
            return 0;
        }
        let n = starting.len();
        let tags: Vec<AckTag> = starting.iter().map(|(_, tag)| *tag).collect();
        for ((task, _), notice) in starting.into_iter().zip(notices) {
            self.spawn(task, notice.start_time);
        }
        if let Err(e) = self.tasks.ack(&tags).await {
            warn!(error = %e, "acknowledging started tasks failed (a redelivered copy is dropped)");
        }
        n
    }

    fn spawn(&mut self, task: Task, start_time: chrono::DateTime<chrono::Utc>) {
        let key = (task.task_id.clone(), task.attempt);
        let mut ctx = TaskContext::new(
            self.info.executor_id.clone(),
            self.sys.max_output_bytes as usize,
            secs(self.sys.kill_grace_secs),
        );
        let mut base = self.result(&task, TaskStatus::Running);
        base.start_time = start_time;
        let Some(handler) = self.handlers.get(&task.task_type).cloned() else {
            base.status = TaskStatus::Failed;
            base.exit_code = 127;
            base.end_time = Some(self.clock.now());
            base.error = format!(
                "no handler for type '{}' on executor '{}' (it has: {})",
                task.task_type,
                base.executor_id,
                self.handlers.names().join(", ")
            );
            self.outbox.push(base);
            return;
        };
        // Started only for a task that runs: its sender stops when the handler returns.
        if self.sys.live_output_chunk_bytes > 0 {
            ctx = ctx.with_live_output(crate::handler::LiveOutput::start(
                self.backends.dispatcher.clone(),
                task.task_id.clone(),
                task.attempt,
                std::time::Duration::from_millis(u64::from(self.sys.live_output_interval_ms)),
                self.sys.live_output_chunk_bytes as usize,
            ));
        }
        let clock = self.clock.clone();
        let span = info_span!("task", job_id = %task.job_id, task_id = %task.task_id, attempt = task.attempt,
            executor_id = %self.info.executor_id);
        let run_ctx = ctx.clone();
        let run_key = key.clone();
        let mut run = Box::pin(
            async move {
                let mut fallback = base.clone();
                let guarded = Guarded(Box::pin(run_one(
                    handler.as_ref(),
                    &run_ctx,
                    &task,
                    base,
                    &clock,
                )));
                let result = match guarded.await {
                    Ok(r) => r,
                    Err(panic) => {
                        warn!(%panic, "the handler panicked");
                        fallback.status = TaskStatus::Failed;
                        fallback.exit_code = 101;
                        fallback.end_time = Some(clock.now());
                        fallback.error =
                            format!("the '{}' handler panicked: {panic}", task.task_type);
                        fallback
                    }
                };
                run_ctx.end_output();
                debug!(status = %result.status, exit_code = result.exit_code, "task ended");
                (run_key, result)
            }
            .instrument(span),
        );
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match run.as_mut().poll(&mut cx) {
            std::task::Poll::Ready((_, result)) => self.outbox.push(result),
            std::task::Poll::Pending => {
                self.running.insert(key, Running { ctx });
                self.state
                    .running
                    .store(self.running.len(), Ordering::Relaxed);
                self.join.spawn(run);
            }
        }
    }

    fn finished(&mut self, done: std::result::Result<(Key, TaskResult), tokio::task::JoinError>) {
        match done {
            Ok((key, result)) => {
                self.running.remove(&key);
                self.outbox.push(result);
            }
            Err(e) => warn!(error = %e, "a task runner ended abnormally"),
        }
        self.state
            .running
            .store(self.running.len(), Ordering::Relaxed);
    }

    async fn flush_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.outbox);
        if let Err(e) = self.backends.dispatcher.send_results(&batch).await {
            warn!(error = %e, results = batch.len(), "reporting results failed; will retry");
            self.outbox = batch;
            self.backoff();
        }
    }

    fn backoff(&mut self) {
        self.backoff_until = Some(tokio::time::Instant::now() + Duration::from_millis(500));
    }

    /// The session ended: everything this executor holds now belongs to the scheduler's failover. Stop it
    /// all, forget the queue, and register again with a new epoch.
    async fn session_lost(&mut self) {
        warn!(
            epoch = self.epoch,
            running = self.running.len(),
            queued = self.queued.len(),
            "coordination session lost: stopping all tasks and registering again"
        );
        for r in self.running.values() {
            r.ctx.cancel(CancelReason::Shutdown);
        }
        while let Some(done) = self.join.join_next().await {
            if let Ok((key, _)) = done {
                self.running.remove(&key);
            }
        }
        self.state.running.store(0, Ordering::Relaxed);
        let tags: Vec<AckTag> = self.queued.drain().map(|(_, (_, tag))| tag).collect();
        self.queue.clear();
        let _ = self.tasks.ack(&tags).await;
        // Results that finished before the session ended are still sent: they may well apply (the writes
        // are conditional). Those of the tasks stopped just now were not collected.
        match register(&self.backends, &self.info, Some(&self.shutdown)).await {
            Ok(reg) => {
                self.epoch = reg.epoch();
                self.lost = reg.lost();
                self.registration = reg;
                self.state.epoch.store(self.epoch, Ordering::Relaxed);
                info!(epoch = self.epoch, "registered again");
            }
            Err(e) => {
                // Shutting down, or a permanent error: try again after a pause unless shutting down.
                warn!(error = %e, "registering again failed");
                let retry = CancellationToken::new();
                retry.cancel();
                self.lost = retry;
                self.backoff();
            }
        }
    }

    /// Shutdown: take no more tasks, let running ones finish within the grace, stop the rest (reported
    /// `lost` so they run elsewhere), report, deregister.
    async fn drain(mut self) {
        info!(
            running = self.running.len(),
            grace_secs = self.shutdown_grace.as_secs(),
            "executor shutting down"
        );
        let deadline = tokio::time::sleep(self.shutdown_grace);
        tokio::pin!(deadline);
        let mut stopping = false;
        while !self.join.is_empty() {
            tokio::select! {
                Some(done) = self.join.join_next() => self.finished(done),
                _ = &mut deadline, if !stopping => {
                    stopping = true;
                    for r in self.running.values() {
                        r.ctx.cancel(CancelReason::Shutdown);
                    }
                }
            }
        }
        for _ in 0..3 {
            self.flush_outbox().await;
            if self.outbox.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Tasks queued here but not started stay unacknowledged: the scheduler fails them over when this
        // executor's registration goes.
        let _ = self.registration.deregister().await;
        info!("executor stopped");
    }
}
