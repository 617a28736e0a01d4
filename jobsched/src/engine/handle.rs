//! [`Scheduler`]: the handle through which applications and the HTTP API manage jobs and tasks.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::actor::{Command, Shared};
use super::records;
use super::supervisor::{EngineSlot, supervise};
use super::{
    CancelOutcome, EngineStats, Event, OutcomeCounts, SchedulerConfig, SystemStatus, UpcomingFire,
};
use crate::Backends;
use crate::clock::{SharedClock, SystemClock};
use crate::coord::{
    CONFIG_KEY, Coordinator, CoordinatorExt, EXECUTORS, SCHEDULER_LEADER, SCHEDULERS, published,
};
use crate::dispatch::Dispatcher;
use crate::error::{Error, Result};
use crate::model::{
    CancelReason, Control, ExecutionQuery, ExecutionRecord, ExecutorId, ExecutorRecord, Job, JobId,
    JobQuery, JobSpec, Page, PageRequest, Params, SystemConfig, TaskId, TaskStatus,
};
use crate::storage::{JobWrite, Storage, StorageExt, UpdateOutcome, Versioned};

mod status;

/// Active attempts read per page when a standby cancels a job's tasks.
const ACTIVE_PAGE: usize = 1000;

/// A running scheduler: campaigns for leadership in the background and, while it leads, runs the engine.
/// Cheap to clone; every clone talks to the same scheduler.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> jobsched::Result<()> {
/// use jobsched::{Backends, JobSpec, Scheduler};
///
/// let backends = Backends::in_memory();
/// let scheduler = Scheduler::builder(backends.clone()).start().await?;
/// let job = scheduler
///     .create_job(JobSpec::cron("tick", "*/5 * * * * *", "echo tick"))
///     .await?;
/// let fires = scheduler.next_fires(&job.job_id, 3).await?;
/// assert_eq!(fires.len(), 3);
/// scheduler.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sh: Arc<Shared>,
    slot: EngineSlot,
    active: watch::Receiver<bool>,
    shutdown: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    started: Instant,
    config_seen: watch::Receiver<Option<Versioned<SystemConfig>>>,
}

/// Builds a [`Scheduler`].
#[derive(Debug)]
pub struct SchedulerBuilder {
    storage: Arc<dyn Storage>,
    dispatcher: Arc<dyn Dispatcher>,
    coordinator: Arc<dyn Coordinator>,
    config: SchedulerConfig,
    clock: SharedClock,
    metrics: crate::metrics::Metrics,
}

impl SchedulerBuilder {
    /// Replaces the process settings.
    pub fn with_config(mut self, config: SchedulerConfig) -> Self {
        self.config = config;
        self
    }

    /// Uses another clock (tests use [`TokioClock`](crate::clock::TokioClock)).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Records into `metrics` (outcomes, waits, durations, fire lag, retries, leadership); without it
    /// the scheduler records into a set of its own that nothing reads.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Checks the settings and starts campaigning; the engine runs as soon as this process leads. Fails
    /// with `Invalid` naming a setting that cannot work (a zero batch size, concurrency, capacity or
    /// interval).
    pub async fn start(self) -> Result<Scheduler> {
        self.config.validate()?;
        let (events, _) = broadcast::channel(self.config.event_capacity.max(16));
        let sh = Arc::new(Shared {
            storage: self.storage,
            dispatcher: self.dispatcher,
            coordinator: self.coordinator,
            clock: self.clock,
            config: self.config,
            events,
            metrics: self.metrics,
            term: Default::default(),
        });
        let slot: EngineSlot = Arc::new(Mutex::new(None));
        let (active_tx, active) = watch::channel(false);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(supervise(
            sh.clone(),
            slot.clone(),
            active_tx,
            shutdown.clone(),
        ));
        let (config_tx, config_seen) = watch::channel(None);
        tokio::spawn(follow_config(
            sh.coordinator.clone(),
            config_tx,
            shutdown.clone(),
        ));
        Ok(Scheduler {
            inner: Arc::new(Inner {
                sh,
                slot,
                active,
                shutdown,
                task: Mutex::new(Some(task)),
                started: Instant::now(),
                config_seen,
            }),
        })
    }
}

/// Keeps `tx` at the newest central configuration published through the coordinator, until `shutdown`.
async fn follow_config(
    coordinator: Arc<dyn Coordinator>,
    tx: watch::Sender<Option<Versioned<SystemConfig>>>,
    shutdown: CancellationToken,
) {
    let mut backoff = std::time::Duration::from_millis(200);
    loop {
        let watched = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = coordinator.watch(CONFIG_KEY) => r,
        };
        match watched {
            Ok(mut rx) => loop {
                let seen = tx.borrow().as_ref().map_or(0, |c| c.version);
                if let Some(c) = published::changed(seen, rx.borrow_and_update().as_ref()) {
                    tx.send_replace(Some(c));
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = rx.changed() => if r.is_err() { break },
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "watching the system configuration failed; will retry");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}

impl Scheduler {
    /// The central configuration as this process last saw it through the coordinator's watch (`None`
    /// until one is published). Every scheduler, active or standby, follows it.
    pub fn published_config(&self) -> Option<Versioned<SystemConfig>> {
        self.inner.config_seen.borrow().clone()
    }

    /// A builder over the given backends.
    pub fn builder(backends: Backends) -> SchedulerBuilder {
        SchedulerBuilder {
            storage: backends.storage,
            dispatcher: backends.dispatcher,
            coordinator: backends.coordinator,
            config: SchedulerConfig::default(),
            clock: Arc::new(SystemClock),
            metrics: crate::metrics::Metrics::default(),
        }
    }

    pub(super) fn sh(&self) -> &Shared {
        &self.inner.sh
    }

    /// The storage this scheduler uses.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.sh.storage
    }

    /// The fencing token of this scheduler's leadership while it is the active one (it grows with every
    /// takeover), else `None`.
    pub fn leader_term(&self) -> Option<u64> {
        let t = self.sh().term.load(std::sync::atomic::Ordering::Acquire);
        (t != 0 && self.is_active()).then_some(t)
    }

    /// The coordinator this scheduler uses.
    pub fn coordinator(&self) -> &Arc<dyn Coordinator> {
        &self.inner.sh.coordinator
    }

    /// The dispatcher this scheduler uses.
    pub fn dispatcher(&self) -> &Arc<dyn Dispatcher> {
        &self.inner.sh.dispatcher
    }

    /// The clock this scheduler uses.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.sh.clock
    }

    fn engine(&self) -> Option<mpsc::Sender<Command>> {
        self.inner
            .slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Tells whoever runs the engine that storage changed: this process's engine directly, another
    /// process's through a coordinator nudge.
    pub(super) async fn changed(&self) {
        match self.engine() {
            Some(tx) => {
                let _ = tx.send(Command::Sync).await;
            }
            None => {
                if let Err(e) = self.sh().coordinator.nudge().await {
                    tracing::warn!(error = %e, "nudging the active scheduler failed; it will notice at its next poll");
                }
            }
        }
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Option<Result<T>> {
        let tx = self.engine()?;
        let (reply, rx) = oneshot::channel();
        tx.send(make(reply)).await.ok()?;
        Some(rx.await.unwrap_or_else(|_| {
            Err(Error::unavailable(
                "scheduler",
                "the engine stopped before answering (leadership changed); retry",
            ))
        }))
    }

    /// True while this process is the active scheduler.
    pub fn is_active(&self) -> bool {
        *self.inner.active.borrow()
    }

    /// Waits until this process is the active scheduler.
    pub async fn wait_active(&self) {
        let mut rx = self.inner.active.clone();
        let _ = rx.wait_for(|a| *a).await;
    }

    /// Events from the engine (fires, dispatches, starts, ends) while this process is active. A subscriber
    /// that falls behind by more than `event_capacity` events misses some (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sh().events.subscribe()
    }

    /// Creates a job.
    pub async fn create_job(&self, spec: JobSpec) -> Result<Job> {
        Ok(self.create_jobs(vec![spec]).await?.remove(0))
    }

    /// Creates several jobs at once (all or none).
    pub async fn create_jobs(&self, specs: Vec<JobSpec>) -> Result<Vec<Job>> {
        let now = self.sh().clock.now();
        let jobs = specs
            .into_iter()
            .map(|s| s.build(now))
            .collect::<Result<Vec<_>>>()?;
        let writes: Vec<JobWrite<'_>> = jobs.iter().map(JobWrite::Create).collect();
        self.audited(&[]).write_jobs(&writes).await
    }

    /// One job.
    pub async fn get_job(&self, id: &JobId) -> Result<Job> {
        self.sh().storage.get_job(id).await
    }

    /// A page of jobs.
    pub async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        self.sh().storage.list_jobs(query).await
    }

    /// Changes a job: the fields given in `spec` (and only those). With `spec.version`, fails with a
    /// conflict if the job changed since. Takes effect from the job's next fire.
    pub async fn update_job(&self, id: &JobId, spec: JobSpec) -> Result<Job> {
        let current = self.sh().storage.get_job(id).await?;
        let changed = spec.apply(&current, self.sh().clock.now())?;
        let mut stored = self
            .audited(&[])
            .write_jobs(&[JobWrite::Update(&changed)])
            .await?;
        Ok(stored.remove(0))
    }

    /// Deletes a job: it fires no more, and its queued tasks are cancelled; running ones finish. Its
    /// history is kept.
    pub async fn delete_job(&self, id: &JobId) -> Result<()> {
        self.audited(&[])
            .write_jobs(&[JobWrite::Delete {
                job_id: id,
                expected_version: None,
            }])
            .await
            .map(|_| ())
    }

    /// The next `count` fire times of a job from now.
    pub async fn next_fires(&self, id: &JobId, count: usize) -> Result<Vec<DateTime<Utc>>> {
        let job = self.sh().storage.get_job(id).await?;
        if !job.enabled {
            return Ok(Vec::new());
        }
        Ok(job
            .schedule()?
            .upcoming(self.sh().clock.now(), count.min(1000)))
    }

    /// Runs a job now, with `params` merged over the job's; returns the new task's id once it is recorded.
    pub async fn execute(&self, id: &JobId, params: Option<Params>) -> Result<TaskId> {
        if let Some(p) = &params {
            crate::model::check_params("params", p)?;
        }
        let task_id = TaskId::generate();
        let local = self
            .ask(|reply| Command::Execute {
                job_id: id.clone(),
                task_id: task_id.clone(),
                params: params.clone(),
                reply,
            })
            .await;
        match local {
            Some(r) => r.map(|()| task_id),
            None => {
                // Not the active scheduler: record it queued; the active one dispatches it.
                let job = self.sh().storage.get_job(id).await?;
                let rec = records::manual_run(&job, task_id.clone(), params, self.sh().clock.now());
                self.sh().storage.insert_executions(&[rec], None).await?;
                self.changed().await;
                Ok(task_id)
            }
        }
    }

    /// Cancels a task (its active attempt).
    pub async fn cancel_task(&self, task_id: &TaskId) -> Result<CancelOutcome> {
        if let Some(r) = self
            .ask(|reply| Command::Cancel {
                task_id: task_id.clone(),
                reply,
            })
            .await
        {
            return r;
        }
        self.cancel_via_storage(task_id).await
    }

    async fn cancel_via_storage(&self, task_id: &TaskId) -> Result<CancelOutcome> {
        let attempts = self.sh().storage.task_attempts(task_id).await?;
        let last = attempts.last().expect("at least one attempt");
        match last.status {
            s if s.is_terminal() => Ok(CancelOutcome::AlreadyFinished { status: s }),
            TaskStatus::Queued => {
                let u = records::queued_cancel(
                    task_id,
                    last.attempt,
                    CancelReason::User,
                    self.sh().clock.now(),
                );
                match self
                    .sh()
                    .storage
                    .update_executions(&[u], None)
                    .await?
                    .remove(0)
                {
                    UpdateOutcome::Applied { .. } => {
                        self.changed().await;
                        Ok(CancelOutcome::Cancelled)
                    }
                    _ => Box::pin(self.cancel_via_storage(task_id)).await,
                }
            }
            _ => {
                let exec = last
                    .executor_id
                    .clone()
                    .ok_or_else(|| Error::conflict("the task is dispatched but has no executor"))?;
                self.sh()
                    .dispatcher
                    .send_control(
                        &exec,
                        &Control::Cancel {
                            task_id: task_id.clone(),
                            attempt: last.attempt,
                            reason: CancelReason::User,
                        },
                    )
                    .await?;
                Ok(CancelOutcome::Cancelling { executor_id: exec })
            }
        }
    }

    /// Cancels every queued and running task of a job; returns how many.
    pub async fn cancel_job(&self, id: &JobId) -> Result<usize> {
        self.sh().storage.get_job(id).await?;
        if let Some(r) = self
            .ask(|reply| Command::CancelJob {
                job_id: id.clone(),
                reply,
            })
            .await
        {
            return r;
        }
        // Every active attempt, page by page in id order (the cursor is not disturbed by the cancels).
        let mut n = 0;
        let mut after = 0;
        loop {
            let page = self
                .sh()
                .storage
                .active_executions(after, ACTIVE_PAGE)
                .await?;
            let full = page.len() == ACTIVE_PAGE;
            for rec in page {
                after = after.max(rec.id);
                if rec.job_id != *id {
                    continue;
                }
                if !matches!(
                    self.cancel_via_storage(&rec.task_id).await?,
                    CancelOutcome::AlreadyFinished { .. }
                ) {
                    n += 1;
                }
            }
            if !full {
                return Ok(n);
            }
        }
    }

    /// Every attempt of a task, oldest first.
    pub async fn task(&self, task_id: &TaskId) -> Result<Vec<ExecutionRecord>> {
        self.sh().storage.task_attempts(task_id).await
    }

    /// A page of execution records, newest first.
    pub async fn history(&self, query: &ExecutionQuery) -> Result<Page<ExecutionRecord>> {
        self.sh().storage.list_executions(query).await
    }

    /// Every executor known (online or not).
    pub async fn executors(&self) -> Result<Vec<ExecutorRecord>> {
        self.sh().storage.list_executors().await
    }

    /// One executor.
    pub async fn executor(&self, id: &ExecutorId) -> Result<ExecutorRecord> {
        self.sh().storage.get_executor(id).await
    }

    /// Enables or disables an executor (a disabled one gets no new tasks; its running ones finish).
    pub async fn set_executor_enabled(
        &self,
        id: &ExecutorId,
        enabled: bool,
    ) -> Result<ExecutorRecord> {
        self.audited(&[]).set_executor_enabled(id, enabled).await
    }

    /// The system configuration and its version.
    pub async fn config(&self) -> Result<Versioned<SystemConfig>> {
        self.sh().storage.system_config().await
    }

    /// Replaces the system configuration (with `expected_version`, only if unchanged since) and
    /// publishes it to every scheduler and executor through the coordinator.
    pub async fn update_config(
        &self,
        config: SystemConfig,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        self.audited(&[])
            .update_config(config, expected_version)
            .await
    }

    /// Stops the engine (if running) and gives up leadership. Running tasks are not affected: they belong to
    /// executors, and the next active scheduler takes them over.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}
