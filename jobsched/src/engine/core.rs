//! The engine actor: owns jobs, active tasks, timers and the executor view; runs while this process leads.
//!
//! Everything it changes is first written to storage (fenced, conditional), then applied in memory. When a
//! write fails with a retryable error, the work goes back where it came from (a fire time back into the
//! heap, a timer re-armed, results kept unacknowledged) and the engine backs off; nothing is dropped.

use crate::fastmap::FastMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::executors::ExecutorView;
use super::jobs::JobTable;
use super::tasks::{ActiveTask, Phase, ReadyQueue};
use super::timers::{TimerKind, Timers};
use super::{CancelOutcome, Event, SchedulerConfig};
use crate::clock::{SharedClock, instant_at, secs};
use crate::coord::{CONFIG_KEY, Coordinator, EXECUTORS, Members, NUDGE_KEY, published};
use crate::dispatch::{Delivery, Dispatcher, Inbox};
use crate::error::{Error, Result};
use crate::model::{
    ExecutionRecord, Job, JobId, Params, SystemConfig, TaskId, TaskResult, TaskStatus,
};
use crate::storage::{ExecutionUpdate, Fence, Storage, StorageExt, UpdateOutcome, Versioned, keys};

/// What every part of a scheduler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub storage: Arc<dyn Storage>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub coordinator: Arc<dyn Coordinator>,
    pub clock: SharedClock,
    pub config: SchedulerConfig,
    pub events: broadcast::Sender<Event>,
}

/// Requests from [`Scheduler`](super::Scheduler) handles to the engine of this process.
#[derive(Debug)]
pub(crate) enum Command {
    /// Storage changed (jobs, executors): read it again.
    Sync,
    /// Run a job now as task `task_id`.
    Execute {
        job_id: JobId,
        task_id: TaskId,
        params: Option<Params>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Cancel a task.
    Cancel {
        task_id: TaskId,
        reply: oneshot::Sender<Result<CancelOutcome>>,
    },
    /// Cancel every active task of a job.
    CancelJob {
        job_id: JobId,
        reply: oneshot::Sender<Result<usize>>,
    },
    /// The next fires (of one owner's jobs, or all).
    Upcoming {
        limit: usize,
        owner: Option<String>,
        reply: oneshot::Sender<Result<Vec<super::UpcomingFire>>>,
    },
    /// Report what the engine holds.
    Stats {
        reply: oneshot::Sender<Result<super::EngineStats>>,
    },
}

/// Why the engine stopped.
#[derive(Debug)]
pub(crate) enum Exit {
    Shutdown,
    Lost(String),
}

/// Polling intervals of the housekeeping work.
#[derive(Debug)]
pub(crate) struct Ticks {
    pub heartbeat: Instant,
    pub watermark: Instant,
    pub poll: Instant,
    pub purge: Instant,
    pub polls_since_full_scan: u32,
}

pub(crate) struct Engine {
    pub sh: Arc<Shared>,
    pub fence: Fence,
    pub sys: SystemConfig,
    /// The storage version of `sys`.
    pub sys_version: u64,
    pub jobs: JobTable,
    pub job_cursor: u64,
    /// Boxed: a task is ~450 bytes, and the map moves its entries when it grows.
    pub tasks: FastMap<TaskId, Box<ActiveTask>>,
    pub ready: ReadyQueue,
    pub timers: Timers,
    pub execs: ExecutorView,
    pub results: Box<dyn Inbox<TaskResult>>,
    pub members: watch::Receiver<Members>,
    pub config_rx: watch::Receiver<Option<Versioned<Vec<u8>>>>,
    pub nudge_rx: watch::Receiver<Option<Versioned<Vec<u8>>>>,
    /// Results whose storage write failed, kept unacknowledged for another try.
    pub pending_results: Vec<Delivery<TaskResult>>,
    /// Task messages to send (again): after a failed send, or found dispatched at takeover.
    pub resend: Vec<crate::model::Task>,
    /// Next sweep for dispatched tasks that have not started (sent again after `redispatch_after_secs`).
    pub redispatch_sweep: Instant,
    /// Start of the generation range of the last attempt added.
    pub generation_base: u64,
    /// Tasks whose insert (fire, manual run, next attempt) is in flight: a storage scan must not adopt them.
    pub inserting: crate::fastmap::FastSet<TaskId>,
    /// When the last successful read of job changes started: the watermark stays below it, so a job created
    /// elsewhere and not read yet cannot have its first fire passed by the watermark.
    pub jobs_synced_at: Option<DateTime<Utc>>,
    /// Attempts whose state could not be read back after a stale write; read again later.
    pub reconcile_later: Vec<(TaskId, u32)>,
    /// Bulk writes in flight.
    pub inflight: tokio::task::JoinSet<super::pipeline::Done>,
    pub op_seq: u64,
    /// Fire writes in flight: (op, earliest fire time).
    pub fires_in_flight: Vec<(u64, DateTime<Utc>)>,
    /// Runs of jobs that follow their runs, recorded by fire writes still in flight.
    pub runs_in_flight: FastMap<JobId, usize>,
    /// Executors whose loss must be handled again once writes in flight for their tasks complete.
    pub lost_later: Vec<(crate::model::ExecutorId, u64)>,
    /// Executors that left, whose tasks still have to be failed over.
    pub pending_lost: Vec<(crate::model::ExecutorId, u64)>,
    /// `running` states to write once their delay passes: (task, attempt, generation, start, due). One delay
    /// for all, so this FIFO is in due order.
    pub running_writes: std::collections::VecDeque<(TaskId, u32, u64, DateTime<Utc>, Instant)>,
    pub members_dirty: bool,
    pub sync_dirty: bool,
    pub active_cursor: i64,
    pub backoff: Duration,
    pub backoff_until: Option<Instant>,
    pub fenced: Option<String>,
    pub ticks: Ticks,
}

impl Engine {
    /// Takes over: reads configuration, executors, jobs and every active attempt from storage.
    pub async fn load(sh: Arc<Shared>, fence: Fence) -> Result<Engine> {
        let stored = sh.storage.system_config().await?;
        let config_rx = sh.coordinator.watch(CONFIG_KEY).await?;
        let newer = published::newer(stored.version, config_rx.borrow().as_ref());
        let sys = match newer {
            Some(p) => p,
            None => {
                // Storage holds the record: a broadcast copy that is missing or behind is replaced.
                if let Err(e) = published::publish(sh.coordinator.as_ref(), &stored).await {
                    warn!(error = %e, "publishing the stored system configuration failed");
                }
                stored
            }
        };
        let members = sh.coordinator.members(EXECUTORS).await?;
        let nudge_rx = sh.coordinator.watch(NUDGE_KEY).await?;
        let results = sh.dispatcher.result_inbox().await?;
        let watermark = sh
            .storage
            .get_value(keys::WATERMARK)
            .await?
            .and_then(|v| DateTime::parse_from_rfc3339(&v.value).ok())
            .map(|t| t.with_timezone(&Utc));
        let now = Instant::now();
        let mut execs = ExecutorView::default();
        execs.set_prefetch(sys.value.executor_prefetch);
        let mut e = Engine {
            sh,
            fence,
            sys: sys.value,
            sys_version: sys.version,
            jobs: JobTable::default(),
            job_cursor: 0,
            tasks: FastMap::default(),
            ready: ReadyQueue::default(),
            timers: Timers::default(),
            execs,
            results,
            members,
            config_rx,
            nudge_rx,
            pending_results: Vec::new(),
            inflight: tokio::task::JoinSet::new(),
            generation_base: 0,
            inserting: Default::default(),
            jobs_synced_at: None,
            reconcile_later: Vec::new(),
            op_seq: 0,
            fires_in_flight: Vec::new(),
            runs_in_flight: FastMap::default(),
            lost_later: Vec::new(),
            resend: Vec::new(),
            redispatch_sweep: now + Duration::from_secs(1),
            pending_lost: Vec::new(),
            running_writes: std::collections::VecDeque::new(),
            members_dirty: true,
            sync_dirty: false,
            active_cursor: 0,
            backoff: Duration::ZERO,
            backoff_until: None,
            fenced: None,
            ticks: Ticks {
                heartbeat: now,
                watermark: now,
                poll: now,
                purge: now,
                polls_since_full_scan: 0,
            },
        };
        for rec in e.sh.storage.list_executors().await? {
            let info = crate::model::ExecutorInfo {
                executor_id: rec.executor_id.clone(),
                host: rec.host.clone(),
                port: rec.port,
                capacity: rec.capacity,
                group: rec.group.clone(),
                labels: rec.labels.clone(),
                handlers: rec.handlers.clone(),
                version: String::new(),
            };
            e.execs.set_enabled(&info, rec.enabled);
        }
        e.apply_members().await;
        let started = std::time::Instant::now();
        e.sync_jobs(Some(watermark)).await?;
        e.scan_active(true).await?;
        info!(
            jobs = e.jobs.len(),
            active_tasks = e.tasks.len(),
            executors_online = e.execs.online_count(),
            watermark = ?watermark,
            took_ms = started.elapsed().as_millis() as u64,
            "scheduler state loaded from storage"
        );
        Ok(e)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.sh.clock.now()
    }

    pub fn emit(&self, ev: Event) {
        if self.sh.events.receiver_count() > 0 {
            let _ = self.sh.events.send(ev);
        }
    }

    /// Notes a failed storage call: fencing ends the engine, anything else backs off (100 ms .. 5 s).
    pub fn storage_failed(&mut self, what: &str, e: Error) {
        if let Error::Fenced { .. } = e {
            warn!(error = %e, "{what}: fenced by a newer scheduler; stepping down");
            self.fenced = Some(e.to_string());
            return;
        }
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
        self.backoff_until = Some(Instant::now() + self.backoff);
        warn!(error = %e, retry_in_ms = self.backoff.as_millis() as u64, "{what} failed; will retry");
    }

    pub fn storage_ok(&mut self) {
        self.backoff = Duration::ZERO;
        self.backoff_until = None;
    }

    pub fn healthy(&self) -> bool {
        self.fenced.is_none() && self.backoff_until.is_none_or(|t| Instant::now() >= t)
    }

    /// One job lookup for a task: its job, whether the job follows its runs, and, if it does and `note`
    /// says so, the run noted as active (`Some(false)`) or held (`Some(true)`).
    pub fn attach_job(
        &mut self,
        rec: &ExecutionRecord,
        note: Option<bool>,
    ) -> (Option<Arc<Job>>, bool) {
        let Some(js) = self.jobs.get_mut(&rec.job_id) else {
            return (None, false);
        };
        let tracked = js.tracks_runs();
        if tracked {
            if let Some(held) = note {
                let runs = js.runs_mut();
                if held {
                    runs.held.push_back(rec.task_id.clone());
                } else if !runs.active.contains(&rec.task_id) {
                    runs.active.push(rec.task_id.clone());
                }
            }
        }
        (Some(js.job.clone()), tracked)
    }

    /// Registers a new active attempt in memory in `phase`.
    pub fn add_task(&mut self, rec: ExecutionRecord, phase: Phase, job: (Option<Arc<Job>>, bool)) {
        // Each attempt counts its generations in its own range, so a timer or queue entry left by an earlier
        // attempt of the same task can never match a later one.
        self.generation_base += 1 << 20;
        let generation = self.generation_base;
        let task_id = rec.task_id.clone();
        let mut t = Box::new(ActiveTask {
            rec,
            phase: phase.clone(),
            generation,
            cancel: None,
            started_seen: None,
            sent_at: None,
            finishing: false,
            job: job.0,
            tracked: job.1,
        });
        match &phase {
            Phase::Ready => self.ready.push(&t),
            Phase::Waiting => {
                self.timers
                    .set(task_id.clone(), generation, TimerKind::Due, t.rec.due_time)
            }
            Phase::Dispatched { .. } => t.sent_at = Some(self.now()),
            Phase::Running { .. } => t.started_seen = Some(self.now()),
            Phase::Held | Phase::Dispatching { .. } => {}
        }
        let running = matches!(phase, Phase::Running { .. });
        self.tasks.insert(task_id.clone(), t);
        if running {
            self.arm_deadline(&task_id);
        }
    }

    /// Sets the timeout backstop of a running attempt: timeout + grace after it was seen starting.
    pub fn arm_deadline(&mut self, task_id: &TaskId) {
        let Some(t) = self.tasks.get(task_id) else {
            return;
        };
        if t.rec.timeout == 0 {
            return;
        }
        let start = t.started_seen.unwrap_or_else(|| self.now());
        let at = start + self.grace(t.rec.timeout) + self.grace(self.sys.timeout_grace_secs);
        let generation = t.generation;
        self.timers
            .set(task_id.clone(), generation, TimerKind::Deadline, at);
    }

    /// Moves a queued attempt into the ready queue.
    pub fn make_ready(&mut self, task_id: &TaskId) {
        if let Some(t) = self.tasks.get_mut(task_id) {
            t.phase = Phase::Ready;
            t.generation += 1;
            self.ready.push(t);
        }
    }

    /// Applies an attempt's terminal update in memory: frees its executor slot, emits the event, and either
    /// queues the next attempt or lets the job's next run go (overlap queue, fixed delay).
    pub fn finish(&mut self, task_id: &TaskId, update: &ExecutionUpdate, next_id: Option<i64>) {
        let Some(mut t) = self.tasks.remove(task_id) else {
            return;
        };
        if let Some((exec, epoch)) = t.phase.executor() {
            self.execs.release(exec, epoch);
        }
        update.apply_to(&mut t.rec);
        debug!(task_id = %t.rec.task_id, job_id = %t.rec.job_id, attempt = t.rec.attempt,
            status = %t.rec.status, executor_id = ?t.rec.executor_id, "attempt ended");
        if t.rec.status != TaskStatus::Succeeded {
            info!(task_id = %t.rec.task_id, job_id = %t.rec.job_id, attempt = t.rec.attempt,
                status = %t.rec.status, executor_id = ?t.rec.executor_id, error = %t.rec.error,
                "attempt did not succeed");
        }
        let job_id = t.rec.job_id.clone();
        let (job, tracked) = (t.job, t.tracked);
        self.emit(Event::Finished(Arc::new(t.rec)));
        if let Some(mut next) = update.next_attempt.clone() {
            next.id = next_id.unwrap_or(0);
            info!(task_id = %next.task_id, job_id = %next.job_id, attempt = next.attempt,
                trigger = %next.trigger, due = %next.due_time, "next attempt scheduled");
            let phase = if next.due_time > self.now() {
                Phase::Waiting
            } else {
                Phase::Ready
            };
            self.add_task(next, phase, (job, tracked));
            return;
        }
        if tracked {
            self.job_task_ended(&job_id, task_id);
        }
    }

    /// Forgets an attempt that storage says has moved on (ended elsewhere). Only that attempt: a newer
    /// attempt of the same task stays.
    pub fn forget(&mut self, task_id: &TaskId, attempt: u32) {
        if self
            .tasks
            .get(task_id)
            .is_none_or(|t| t.rec.attempt != attempt)
        {
            return;
        }
        if let Some(t) = self.tasks.remove(task_id) {
            if let Some((exec, epoch)) = t.phase.executor() {
                self.execs.release(exec, epoch);
            }
            if t.tracked {
                self.job_task_ended(&t.rec.job_id, task_id);
            }
        }
    }

    fn job_task_ended(&mut self, job_id: &JobId, task_id: &TaskId) {
        let now = self.now();
        let Some(js) = self.jobs.get_mut(job_id) else {
            return;
        };
        let released = js.finish(task_id);
        let delay = js
            .job
            .enabled
            .then(|| js.schedule.delay())
            .flatten()
            .filter(|_| js.next_fire.is_none() && js.active_count() == 0);
        if let Some(d) = delay {
            self.jobs
                .set_next_fire(job_id, Some(crate::clock::add(now, d)));
        }
        if let Some(next) = released {
            self.make_ready(&next);
        }
    }

    /// Handles an update outcome that was not applied because storage had moved on.
    pub async fn reconcile_stale(
        &mut self,
        task_id: &TaskId,
        attempt: u32,
        outcome: &UpdateOutcome,
    ) {
        match outcome {
            UpdateOutcome::Stale { status, .. } if status.is_terminal() => {
                self.forget(task_id, attempt)
            }
            UpdateOutcome::NotFound => self.forget(task_id, attempt),
            _ => {
                // Active but not in the state this engine thought: adopt what storage says.
                match self.sh.storage.get_execution(task_id, attempt).await {
                    Ok(rec) => {
                        self.forget(task_id, attempt);
                        self.adopt(rec);
                    }
                    Err(e) => {
                        warn!(task_id = %task_id, attempt, error = %e, "reading an attempt back failed; will retry");
                        self.reconcile_later.push((task_id.clone(), attempt));
                    }
                }
            }
        }
    }

    /// The engine loop. Returns when shut down or when leadership is lost.
    pub async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
        lost: CancellationToken,
    ) -> Exit {
        enum Ev {
            Shutdown,
            Lost,
            Wake,
            Results(Result<Vec<Delivery<TaskResult>>>),
            Commands(usize),
            Done(Box<std::result::Result<super::pipeline::Done, tokio::task::JoinError>>),
            Members,
            Config,
            Nudge,
        }
        let mut buf = Vec::with_capacity(256);
        let batch = self.sh.config.batch_size;
        self.process().await;
        loop {
            if let Some(reason) = self.fenced.take() {
                return Exit::Lost(reason);
            }
            // An expired backoff must not stay the wake-up time, or the loop would spin.
            if self.backoff_until.is_some_and(|t| Instant::now() >= t) {
                self.backoff_until = None;
            }
            let healthy = self.healthy();
            let wake = self.next_wake();
            let ev = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Ev::Shutdown,
                _ = lost.cancelled() => Ev::Lost,
                _ = tokio::time::sleep_until(wake) => Ev::Wake,
                Some(d) = self.inflight.join_next(), if !self.inflight.is_empty() => Ev::Done(Box::new(d)),
                r = self.results.recv(batch), if healthy && self.pending_results.is_empty() && !self.pipeline_full() => Ev::Results(r),
                n = cmds.recv_many(&mut buf, 256) => Ev::Commands(n),
                r = self.members.changed() => match r { Ok(()) => Ev::Members, Err(_) => Ev::Lost },
                r = self.config_rx.changed() => match r { Ok(()) => Ev::Config, Err(_) => Ev::Lost },
                r = self.nudge_rx.changed() => match r { Ok(()) => Ev::Nudge, Err(_) => Ev::Lost },
            };
            match ev {
                Ev::Shutdown => {
                    self.drain_pipeline().await;
                    self.write_watermark().await;
                    return Exit::Shutdown;
                }
                Ev::Lost => return Exit::Lost("leadership lost".into()),
                Ev::Wake => {}
                Ev::Results(Ok(d)) if d.is_empty() => {
                    return Exit::Lost("the result stream closed".into());
                }
                Ev::Results(Ok(d)) => self.on_results(d).await,
                Ev::Results(Err(e)) => {
                    warn!(error = %e, "receiving results failed");
                    self.storage_failed("receiving results", e);
                }
                Ev::Commands(0) => return Exit::Shutdown,
                Ev::Commands(_) => {
                    let batch = std::mem::take(&mut buf);
                    self.on_commands(batch).await;
                }
                Ev::Done(d) => match *d {
                    Ok(done) => {
                        self.complete(done).await;
                        let later = std::mem::take(&mut self.lost_later);
                        for l in later {
                            if !self.pending_lost.contains(&l) {
                                self.pending_lost.push(l);
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "a storage write task failed"),
                },
                Ev::Members => self.members_dirty = true,
                Ev::Config => self.apply_config(),
                Ev::Nudge => self.sync_dirty = true,
            }
            self.process().await;
        }
    }

    /// When the loop must wake up on its own next. While backing off, only the end of the backoff: every
    /// other piece of work is a storage write that would fail again.
    fn next_wake(&mut self) -> Instant {
        if let Some(t) = self.backoff_until {
            return t;
        }
        let clock = self.sh.clock.clone();
        let mut wake = self
            .ticks
            .heartbeat
            .min(self.ticks.watermark)
            .min(self.ticks.poll)
            .min(self.redispatch_sweep);
        if !self.resend.is_empty() {
            wake = Instant::now();
        }
        if let Some(t) = self.jobs.peek_time() {
            wake = wake.min(instant_at(&*clock, t));
        }
        if let Some(t) = self.timers.peek_time() {
            wake = wake.min(instant_at(&*clock, t));
        }
        if let Some(w) = self.running_writes.front() {
            wake = wake.min(w.4);
        }
        wake
    }

    /// Everything due now: retries of failed writes, membership, storage sync, fires, timers, dispatch,
    /// deferred writes and housekeeping. Stops at the first failed write (the engine backs off).
    async fn process(&mut self) {
        if !self.healthy() {
            return;
        }
        if !self.pending_results.is_empty() {
            let pending = std::mem::take(&mut self.pending_results);
            self.on_results(pending).await;
        }
        if self.members_dirty && self.healthy() {
            self.members_dirty = false;
            self.apply_members().await;
        }
        for (task_id, attempt) in std::mem::take(&mut self.reconcile_later) {
            if self.healthy() {
                let outcome = UpdateOutcome::Stale {
                    status: TaskStatus::Running,
                    executor_id: None,
                };
                self.reconcile_stale(&task_id, attempt, &outcome).await;
            } else {
                self.reconcile_later.push((task_id, attempt));
            }
        }
        let lost = std::mem::take(&mut self.pending_lost);
        for (id, epoch) in lost {
            if self.healthy() {
                self.executor_lost(id, epoch).await;
            } else {
                self.pending_lost.push((id, epoch));
            }
        }
        let now_i = Instant::now();
        if now_i >= self.ticks.poll {
            self.ticks.poll = now_i + self.sh.config.poll_interval;
            self.sync_dirty = true;
        }
        // A nudge that came with a due fire: read the change first, so a job disabled or changed before its
        // fire time is not fired by its old definition.
        if self.nudge_rx.has_changed().unwrap_or(false) {
            self.nudge_rx.borrow_and_update();
            self.sync_dirty = true;
        }
        if self.sync_dirty && self.healthy() {
            self.sync_dirty = false;
            if let Err(e) = self.sync().await {
                self.sync_dirty = true;
                self.storage_failed("reading changes from storage", e);
            }
        }
        let now = self.now();
        if self.healthy() {
            self.fire_due(now);
        }
        if self.healthy() {
            self.on_timers(now).await;
        }
        if self.healthy() {
            self.dispatch();
        }
        if self.healthy() && (!self.resend.is_empty() || Instant::now() >= self.redispatch_sweep) {
            self.redispatch().await;
        }
        if self.healthy() {
            self.flush_running_writes(false).await;
        }
        if self.healthy() {
            self.housekeeping().await;
        }
    }

    fn apply_config(&mut self) {
        let newer = published::newer(
            self.sys_version,
            self.config_rx.borrow_and_update().as_ref(),
        );
        if let Some(c) = newer {
            info!(version = c.version, config = ?c.value, "system configuration changed");
            self.execs.set_prefetch(c.value.executor_prefetch);
            self.sys = c.value;
            self.sys_version = c.version;
        }
    }

    /// Re-reads what other processes may have changed: jobs, executors' enabled flags, queued tasks.
    pub async fn sync(&mut self) -> Result<()> {
        self.sync_jobs(None).await?;
        for rec in self.sh.storage.list_executors().await? {
            if let Some(e) = self.execs.get(&rec.executor_id) {
                if e.enabled != rec.enabled {
                    info!(executor_id = %rec.executor_id, enabled = rec.enabled, "executor enabled flag changed");
                    let info = e.info.clone();
                    self.execs.set_enabled(&info, rec.enabled);
                }
            }
        }
        self.ticks.polls_since_full_scan += 1;
        let full = self.ticks.polls_since_full_scan >= 10;
        if full {
            self.ticks.polls_since_full_scan = 0;
        }
        self.scan_active(full).await
    }

    /// Adopts active attempts this engine does not know (written by another process or a predecessor).
    pub async fn scan_active(&mut self, full: bool) -> Result<()> {
        let mut after = if full { 0 } else { self.active_cursor };
        let mut queue_jobs: Vec<JobId> = Vec::new();
        loop {
            let page = self.sh.storage.active_executions(after, 1000).await?;
            let n = page.len();
            for rec in page {
                after = after.max(rec.id);
                self.active_cursor = self.active_cursor.max(rec.id);
                let known = self
                    .tasks
                    .get(&rec.task_id)
                    .is_some_and(|t| t.rec.attempt >= rec.attempt)
                    || self.inserting.contains(&rec.task_id);
                if !known {
                    let queue_policy = self.jobs.get(&rec.job_id).is_some_and(|s| {
                        s.job.overlap_policy == crate::model::OverlapPolicy::Queue
                    });
                    if queue_policy && !queue_jobs.contains(&rec.job_id) {
                        queue_jobs.push(rec.job_id.clone());
                    }
                    self.adopt(rec);
                }
            }
            if n < 1000 {
                break;
            }
        }
        self.fix_held(queue_jobs);
        Ok(())
    }

    /// Takes an active record from storage into memory.
    pub fn adopt(&mut self, rec: ExecutionRecord) {
        let now = self.now();
        let job = self.attach_job(&rec, Some(false));
        match rec.status {
            TaskStatus::Queued => {
                let phase = if rec.due_time > now {
                    Phase::Waiting
                } else {
                    Phase::Ready
                };
                self.add_task(rec, phase, job);
            }
            TaskStatus::Dispatched | TaskStatus::Running => {
                let exec = rec.executor_id.clone();
                let epoch = rec.executor_epoch;
                let online = exec.as_ref().is_some_and(|e| self.execs.reserve(e, epoch));
                let executor =
                    exec.unwrap_or_else(|| crate::model::ExecutorId::from_trusted("unknown"));
                let phase = if rec.status == TaskStatus::Running {
                    Phase::Running {
                        executor: executor.clone(),
                        epoch,
                    }
                } else {
                    Phase::Dispatched {
                        executor: executor.clone(),
                        epoch,
                    }
                };
                let dispatched = rec.status == TaskStatus::Dispatched;
                let task_id = rec.task_id.clone();
                self.add_task(rec, phase, job);
                if !online {
                    if !self.pending_lost.contains(&(executor.clone(), epoch)) {
                        self.pending_lost.push((executor, epoch));
                    }
                } else if dispatched {
                    // The previous leader may have died between recording and sending: send again now
                    // (an executor ignores a copy of an attempt it already has).
                    if let Some(t) = self.tasks.get(&task_id) {
                        self.resend.push(t.rec.to_task());
                    }
                }
            }
            _ => {}
        }
    }

    /// Puts adopted queued attempts of `overlap_policy = queue` jobs behind their job's active run.
    fn fix_held(&mut self, ids: Vec<JobId>) {
        for id in ids {
            let Some(js) = self.jobs.get_mut(&id) else {
                continue;
            };
            let runs = js.runs_mut();
            let mut active = Vec::new();
            let mut queued = Vec::new();
            for t in runs.active.drain(..) {
                match self.tasks.get(&t).map(|x| x.phase.is_queued()) {
                    Some(true) => queued.push(t),
                    Some(false) => active.push(t),
                    None => {}
                }
            }
            if active.is_empty() && !queued.is_empty() {
                active.push(queued.remove(0));
            }
            runs.active = active;
            for t in queued {
                if let Some(task) = self.tasks.get_mut(&t) {
                    task.phase = Phase::Held;
                    task.generation += 1;
                }
                if !runs.held.contains(&t) {
                    runs.held.push_back(t);
                }
            }
        }
    }

    /// Writes executor liveness, the fire watermark, and purges old history, when due.
    async fn housekeeping(&mut self) {
        let now_i = Instant::now();
        if now_i >= self.ticks.heartbeat {
            self.ticks.heartbeat = now_i + self.sh.config.heartbeat_interval;
            let now = self.now();
            let beats: Vec<_> = self
                .execs
                .iter()
                .filter(|e| e.online)
                .map(|e| crate::model::ExecutorHeartbeat {
                    executor_id: e.info.executor_id.clone(),
                    status: crate::model::ExecutorStatus::Online,
                    at: now,
                    running: e.inflight,
                })
                .collect();
            if !beats.is_empty() {
                if let Err(e) = self.sh.storage.record_heartbeats(&beats).await {
                    self.storage_failed("recording executor heartbeats", e);
                    return;
                }
            }
        }
        if now_i >= self.ticks.watermark {
            self.ticks.watermark = now_i + self.sh.config.watermark_interval;
            self.write_watermark().await;
        }
        if now_i >= self.ticks.purge {
            self.ticks.purge = now_i + self.sh.config.purge_interval;
            if self.sys.history_retention_days > 0 {
                let before =
                    self.now() - TimeDelta::days(i64::from(self.sys.history_retention_days));
                match self.sh.storage.purge_executions(before, 10_000).await {
                    Ok(0) => {}
                    Ok(n) => info!(purged = n, before = %before, "purged old execution records"),
                    Err(e) => warn!(error = %e, "purging old execution records failed"),
                }
            }
        }
    }

    /// Records that every fire before the next pending one has been handled.
    async fn write_watermark(&mut self) {
        let mut mark = self.now();
        if let Some(next) = self.jobs.peek_time() {
            mark = mark.min(next - TimeDelta::milliseconds(1));
        }
        if let Some(floor) = self.fire_floor() {
            mark = mark.min(floor - TimeDelta::milliseconds(1));
        }
        if let Some(synced) = self.jobs_synced_at {
            mark = mark.min(synced);
        }
        let value = mark.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if let Err(e) = self
            .sh
            .storage
            .put_value(keys::WATERMARK, &value, None, Some(&self.fence), &[])
            .await
        {
            self.storage_failed("writing the fire watermark", e);
        }
    }

    /// Seconds → the engine's grace periods.
    pub fn grace(&self, s: u32) -> TimeDelta {
        TimeDelta::from_std(secs(s)).unwrap_or(TimeDelta::MAX)
    }
}
