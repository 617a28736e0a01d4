//! Test support: an in-process cluster on tokio's paused clock, and a scriptable handler.
#![allow(dead_code, missing_docs)]

pub mod flaky;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobsched::clock::{SharedClock, TokioClock};
use jobsched::coord::LocalCoordinator;
use jobsched::dispatch::ChannelDispatcher;
use jobsched::handler::{ExecError, HandlerRegistry, Outcome, TaskContext, TaskHandler};
use jobsched::storage::{MemoryStorage, Storage};
use jobsched::{
    Backends, Event, ExecutionQuery, ExecutionRecord, Executor, ExecutorId, JobId, PageRequest,
    Scheduler, SchedulerConfig, Task, TaskId,
};
use tokio::sync::{Notify, broadcast};

/// Session timeout of the test cluster's coordinator.
pub const TTL: Duration = Duration::from_secs(10);

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// What the script handler saw start.
#[derive(Clone, Debug)]
pub struct Start {
    pub task_id: TaskId,
    pub attempt: u32,
    pub job_id: String,
    pub executor: String,
    pub at: DateTime<Utc>,
}

/// A handler driven by its command: `;`-separated steps
/// `sleep:MS`, `fail`, `fail_before:N` (fail attempts before N), `panic`, `abort`, `retry_after:MS`, `block` (until cancelled), `block_on:EXEC` (block only on
/// that executor), `out:TEXT`.
#[derive(Clone)]
pub struct Script {
    pub clock: SharedClock,
    pub starts: Arc<Mutex<Vec<Start>>>,
    pub started: Arc<Notify>,
}

impl Script {
    pub fn new(clock: SharedClock) -> Self {
        Script {
            clock,
            starts: Default::default(),
            started: Arc::new(Notify::new()),
        }
    }

    pub fn starts(&self) -> Vec<Start> {
        self.starts.lock().unwrap().clone()
    }

    /// Waits until `n` tasks have started in total.
    pub async fn wait_starts(&self, n: usize) -> Vec<Start> {
        loop {
            let notified = self.started.notified();
            let s = self.starts();
            if s.len() >= n {
                return s;
            }
            tokio::time::timeout(Duration::from_secs(24 * 3600), notified)
                .await
                .expect("tasks never started");
        }
    }
}

#[async_trait]
impl TaskHandler for Script {
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        self.starts.lock().unwrap().push(Start {
            task_id: task.task_id.clone(),
            attempt: task.attempt,
            job_id: task.job_id.to_string(),
            executor: ctx.executor_id.to_string(),
            at: self.clock.now(),
        });
        self.started.notify_waiters();
        let cancelled = || ExecError::Cancelled {
            output: String::new(),
            stderr: String::new(),
            exit_code: 130,
        };
        let mut out = String::new();
        for step in task
            .command
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (verb, arg) = step.split_once(':').unwrap_or((step, ""));
            match verb {
                "sleep" => {
                    let d = Duration::from_millis(arg.parse().unwrap());
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = ctx.cancelled() => return Err(cancelled()),
                    }
                }
                "fail" => return Err(ExecError::failed("scripted failure")),
                "panic" => panic!("scripted panic"),
                "fail_before" if task.attempt < arg.parse::<u32>().unwrap() => {
                    return Err(ExecError::failed(format!(
                        "scripted failure of attempt {}",
                        task.attempt
                    )));
                }
                "fail_before" => {}
                "abort" => return Err(ExecError::abort("scripted abort")),
                "retry_after" => {
                    return Err(ExecError::retry_after(
                        Duration::from_millis(arg.parse().unwrap()),
                        "later",
                    ));
                }
                "block" => {
                    ctx.cancelled().await;
                    return Err(cancelled());
                }
                "block_on" if ctx.executor_id.as_str() == arg => {
                    ctx.cancelled().await;
                    return Err(cancelled());
                }
                "block_on" => {}
                "out" => out.push_str(arg),
                other => return Err(ExecError::abort(format!("unknown step {other}"))),
            }
        }
        Ok(Outcome::success(out))
    }
}

/// An in-process cluster: one store, one dispatcher, one coordination hub, one paused clock.
pub struct Cluster {
    pub hub: LocalCoordinator,
    pub storage: Arc<dyn Storage>,
    pub dispatch: ChannelDispatcher,
    pub clock: SharedClock,
    pub script: Script,
}

impl Cluster {
    /// Call inside `#[tokio::test(start_paused = true)]`.
    pub fn new(start: &str) -> Self {
        Self::with_storage(start, Arc::new(MemoryStorage::new()))
    }

    pub fn with_storage(start: &str, storage: Arc<dyn Storage>) -> Self {
        let clock: SharedClock = Arc::new(TokioClock::starting_at(t(start)));
        Cluster {
            hub: LocalCoordinator::with_session_ttl(TTL),
            storage,
            dispatch: ChannelDispatcher::new(),
            script: Script::new(clock.clone()),
            clock,
        }
    }

    /// Backends with a new coordinator session (another "process").
    pub fn backends(&self) -> (Backends, Arc<LocalCoordinator>) {
        let session = Arc::new(self.hub.connect());
        (
            Backends {
                storage: self.storage.clone(),
                dispatcher: Arc::new(self.dispatch.clone()),
                coordinator: session.clone(),
            },
            session,
        )
    }

    pub fn config(id: &str) -> SchedulerConfig {
        SchedulerConfig::default().with_scheduler_id(id)
    }

    /// A scheduler in its own session, waited on until active if it is the first.
    pub async fn scheduler(&self, id: &str) -> (Scheduler, Arc<LocalCoordinator>) {
        let (b, session) = self.backends();
        let s = Scheduler::builder(b)
            .with_config(Self::config(id))
            .with_clock(self.clock.clone())
            .start()
            .await
            .expect("valid scheduler settings");
        (s, session)
    }

    /// An executor with the `script` and `shell` handlers, in its own session.
    pub async fn executor(&self, id: &str, capacity: u32) -> (Executor, Arc<LocalCoordinator>) {
        let (b, session) = self.backends();
        let mut handlers = HandlerRegistry::with_shell();
        handlers
            .register("script", Arc::new(self.script.clone()))
            .unwrap();
        let e = Executor::builder(ExecutorId::new(id).unwrap(), b)
            .with_capacity(capacity)
            .with_handlers(handlers)
            .with_clock(self.clock.clone())
            .with_shutdown_grace(Duration::from_secs(5))
            .start()
            .await
            .unwrap();
        (e, session)
    }
}

/// Collects `Finished` events until `n` arrived (virtual time, so the long timeout costs nothing).
pub async fn finished(
    events: &mut broadcast::Receiver<Event>,
    n: usize,
) -> Vec<Arc<ExecutionRecord>> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(7 * 24 * 3600), events.recv()).await {
            Ok(Ok(Event::Finished(rec))) => out.push(rec),
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(k))) => panic!("missed {k} events"),
            Ok(Err(e)) => panic!("events closed: {e}"),
            Err(_) => panic!("only {} of {n} tasks finished", out.len()),
        }
    }
    out
}

/// Collects `Finished` events of one task until one ends without a retry following it.
pub async fn finished_for(
    events: &mut broadcast::Receiver<Event>,
    task: &TaskId,
    attempts: usize,
) -> Vec<Arc<ExecutionRecord>> {
    let mut out = Vec::new();
    while out.len() < attempts {
        for rec in finished(events, 1).await {
            if rec.task_id == *task {
                out.push(rec);
            }
        }
    }
    out
}

/// A cluster with an active scheduler `s1`, one executor `e1` with `capacity` slots, and a subscription to the
/// scheduler's events: the start of most engine tests.
pub async fn started(
    start: &str,
    capacity: u32,
) -> (Cluster, Scheduler, Executor, broadcast::Receiver<Event>) {
    let c = Cluster::new(start);
    let (s, _) = c.scheduler("s1").await;
    let (e, _) = c.executor("e1", capacity).await;
    s.wait_active().await;
    let ev = s.subscribe();
    (c, s, e, ev)
}

/// The fire times recorded for a job, sorted; fails if one was recorded twice.
pub async fn recorded_fire_times(
    s: &Scheduler,
    job: &JobId,
) -> Vec<(DateTime<Utc>, ExecutionRecord)> {
    let hist = s
        .history(&ExecutionQuery {
            job_id: Some(job.clone()),
            page: PageRequest::new(1, 1000).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out: Vec<_> = hist
        .items
        .into_iter()
        .map(|r| (r.scheduled_time, r))
        .collect();
    out.sort_by_key(|(t, _)| *t);
    for w in out.windows(2) {
        assert_ne!(w[0].0, w[1].0, "fire time {} recorded twice", w[0].0);
    }
    out
}
