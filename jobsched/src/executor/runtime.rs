//! The executor's event loop: take tasks and control messages, start what fits, report results. The
//! parts live next to it: the local queue (`queue`), the memory of attempts seen (`bounded`), one
//! attempt's run (`spawn`, `attempt`), registration and session loss (`session`), shutdown (`drain`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::ExecutorBackends;
use super::bounded::{BoundedMap, BoundedSet};
use super::queue::{Key, LocalQueue};
use super::session::register;
use crate::clock::SharedClock;
use crate::coord::{CONFIG_KEY, Registration, published};
use crate::dispatch::{AckTag, Delivery, Inbox};
use crate::error::Result;
use crate::fastmap::FastMap;
use crate::handler::{HandlerRegistry, TaskContext};
use crate::model::{
    CancelReason, Control, ExecutorInfo, SystemConfig, Task, TaskResult, TaskStatus,
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
    /// Notes how many tasks run now.
    pub fn set_running(&self, n: usize) {
        self.running.store(n, Ordering::Relaxed);
    }
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }
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

/// A task running on this executor.
pub(super) struct Running {
    pub ctx: TaskContext,
}

/// What a runtime is started with.
pub(crate) struct RuntimeParts {
    pub info: ExecutorInfo,
    pub backends: ExecutorBackends,
    pub handlers: HandlerRegistry,
    pub clock: SharedClock,
    /// Used until the coordinator has a published configuration.
    pub sys: SystemConfig,
    pub shutdown_grace: Duration,
    pub state: Arc<State>,
}

pub(crate) struct Runtime {
    pub(super) info: ExecutorInfo,
    pub(super) backends: ExecutorBackends,
    /// The registered handlers (each attempt runs through `handler::layers::run`).
    pub(super) handlers: HandlerRegistry,
    pub(super) clock: SharedClock,
    pub(super) sys: SystemConfig,
    pub(super) shutdown_grace: Duration,
    pub(super) state: Arc<State>,
    pub(super) registration: Box<dyn Registration>,
    pub(super) lost: CancellationToken,
    pub(super) epoch: u64,
    pub(super) tasks: Box<dyn Inbox<Task>>,
    controls: Box<dyn Inbox<Control>>,
    config_rx: watch::Receiver<Option<Versioned<Vec<u8>>>>,
    pub(super) queue: LocalQueue,
    pub(super) running: FastMap<Key, Running>,
    /// Attempts taken, to drop redelivered copies.
    seen: BoundedSet<Key>,
    /// Cancels that arrived before their task (the task is reported with the cancel's status on arrival).
    early_cancels: BoundedMap<Key, CancelReason>,
    pub(super) join: JoinSet<(Key, TaskResult)>,
    pub(super) outbox: Vec<TaskResult>,
    backoff_until: Option<tokio::time::Instant>,
    pub(super) shutdown: CancellationToken,
}

impl Runtime {
    pub async fn start(parts: RuntimeParts) -> Result<Runtime> {
        let RuntimeParts {
            info,
            backends,
            handlers,
            clock,
            sys,
            shutdown_grace,
            state,
        } = parts;
        let tasks = backends.dispatcher.task_inbox(&info.executor_id).await?;
        let controls = backends.dispatcher.control_inbox(&info.executor_id).await?;
        let config_rx = backends.coordinator.watch(CONFIG_KEY).await?;
        let sys = published::changed(0, config_rx.borrow().as_ref()).unwrap_or(Versioned {
            value: sys,
            version: 0,
        });
        state.config_version.store(sys.version, Ordering::Relaxed);
        let sys = sys.value;
        let registration = register(&backends, &info, None).await?;
        let epoch = registration.epoch();
        state.set_epoch(epoch);
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
            queue: LocalQueue::default(),
            running: FastMap::default(),
            seen: BoundedMap::new(SEEN_LIMIT),
            early_cancels: BoundedMap::new(SEEN_LIMIT),
            join: JoinSet::new(),
            outbox: Vec::new(),
            backoff_until: None,
            shutdown: CancellationToken::new(),
        })
    }

    /// Notes an attempt as taken; false if it was already.
    fn remember(&mut self, key: Key) -> bool {
        self.seen.insert(key, ())
    }

    /// A result of `task` in `status`, started now.
    pub(super) fn result(&self, task: &Task, status: TaskStatus) -> TaskResult {
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
        let newer = published::changed(
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
                let room = self.queue.len() < (self.info.capacity as usize).max(64);
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

    /// Reports a task cancelled before it started here.
    fn cancelled_before_start(&mut self, task: &Task, reason: CancelReason) {
        let mut res = self.result(task, reason.status());
        res.error = "cancelled before it started on the executor".into();
        self.outbox.push(res);
    }

    /// The deliveries of a receive, or none (and a backoff) if it failed.
    fn received<T>(&mut self, r: Result<Vec<Delivery<T>>>, what: &str) -> Vec<Delivery<T>> {
        r.unwrap_or_else(|e| {
            warn!(error = %e, "receiving {what} failed");
            self.backoff();
            Vec::new()
        })
    }

    async fn on_tasks(&mut self, r: Result<Vec<Delivery<Task>>>) {
        let deliveries = self.received(r, "tasks");
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
                self.cancelled_before_start(&task, reason);
                drop_tags.push(d.tag);
                continue;
            }
            if self.running.contains_key(&key)
                || self.queue.contains(&key)
                || !self.remember(key.clone())
            {
                debug!(task_id = %task.task_id, attempt = task.attempt, "dropping a copy of an attempt already taken");
                drop_tags.push(d.tag);
                continue;
            }
            self.queue.push(task, d.tag);
        }
        if !drop_tags.is_empty() {
            let _ = self.tasks.ack(&drop_tags).await;
        }
    }

    async fn on_controls(&mut self, r: Result<Vec<Delivery<Control>>>) {
        let deliveries = self.received(r, "control messages");
        if deliveries.is_empty() {
            return;
        }
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
                    } else if let Some((task, tag)) = self.queue.remove(&key) {
                        info!(task_id = %key.0, attempt, ?reason, "cancelled before it started");
                        self.cancelled_before_start(&task, reason);
                        let _ = self.tasks.ack(&[tag]).await;
                    } else if !self.seen.contains(&key) {
                        // The task itself has not arrived yet: remember the cancel for when it does.
                        self.early_cancels.insert(key, reason);
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
            let Some(entry) = self.queue.pop() else { break };
            starting.push(entry);
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
                self.queue.push(task, tag);
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

    /// A spawned attempt ended: its result goes to the outbox.
    pub(super) fn finished(
        &mut self,
        done: std::result::Result<(Key, TaskResult), tokio::task::JoinError>,
    ) {
        match done {
            Ok((key, result)) => {
                self.running.remove(&key);
                self.outbox.push(result);
            }
            Err(e) => warn!(error = %e, "a task runner ended abnormally"),
        }
        self.state.set_running(self.running.len());
    }

    /// Sends the results waiting in the outbox; on failure they wait for the next try.
    pub(super) async fn flush_outbox(&mut self) {
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

    /// Pauses taking and starting work for a moment after a failed broker call.
    pub(super) fn backoff(&mut self) {
        self.backoff_until = Some(tokio::time::Instant::now() + Duration::from_millis(500));
    }
}
