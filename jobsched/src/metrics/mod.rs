//! Metrics of the engine, the executor runtime and the backends, in the Prometheus model
//! ([`prometheus_client`], which keeps no global state: every [`Metrics`] is its own set, so several
//! schedulers and executors can run in one process and each report their own).
//!
//! A [`Metrics`] is cheap to clone; every clone records into the same series. Give one to a scheduler
//! ([`SchedulerBuilder::with_metrics`](crate::SchedulerBuilder::with_metrics)), wrap the dispatcher
//! ([`MeteredDispatcher`]), hand it to a SQL store (`SqlStore::record_into`), set the gauges from the
//! handles' statistics when scraped ([`Metrics::observe_engine`], [`Metrics::observe_dispatch`],
//! [`Metrics::observe_executor`]), and [`register`](Metrics::register) it in the registry a `/metrics`
//! endpoint encodes:
//!
//! ```
//! use jobsched::metrics::{Metrics, encode};
//! use jobsched::prometheus_client::registry::Registry;
//!
//! let metrics = Metrics::new();
//! let mut registry = Registry::default();
//! metrics.register(&mut registry);
//! metrics.store_call("insert_executions", std::time::Duration::from_millis(3), true);
//! let text = encode(&registry);
//! assert!(text.contains("jobsched_store_call_seconds_count{operation=\"insert_executions\"} 1"));
//! ```
//!
//! Label cardinality is bounded: operations and outcomes are fixed sets; the per-job series
//! (`jobsched_job_*`) exist only for jobs that ask for them (`metrics: true`), and at most
//! [`MAX_JOB_SERIES`] of them per process — more opted-in jobs are counted in the overall series only.

mod metered;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use metered::MeteredDispatcher;
pub use tasks::MAX_JOB_SERIES;

use crate::dispatch::DispatchStats;
use crate::engine::EngineStats;

/// One label with a value from a fixed set (an operation, an outcome, a stream).
pub type Label = [(&'static str, &'static str); 1];
/// Labels naming a job.
pub(crate) type JobLabel = [(&'static str, String); 1];
/// Labels naming a job and an outcome.
pub(crate) type JobOutcome = [(&'static str, String); 2];

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets of calls to a backend: 0.25 ms to about 16 s.
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 17))
}

/// Buckets of task durations and waits: 5 ms to about 2 hours.
pub(crate) fn task_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.5, 16))
}

/// The metrics of one scheduler, executor or both (see the module documentation).
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

struct Inner {
    tasks: tasks::TaskMetrics,
    leader: Gauge,
    leader_term: Gauge,
    leader_acquired: Counter,
    jobs: Gauge,
    jobs_scheduled: Gauge,
    tasks_active: Gauge,
    tasks_on_executors: Gauge,
    tasks_waiting: Gauge,
    queue_length: Family<[(&'static str, String); 1], Gauge>,
    executors_online: Gauge,
    store_calls: Histograms<Label>,
    store_errors: Family<Label, Counter>,
    dispatch_calls: Histograms<Label>,
    dispatch_errors: Family<Label, Counter>,
    dispatch_received: Family<Label, Counter>,
    poison: Counter,
    redelivered: Counter,
    seen: std::sync::Mutex<DispatchStats>,
    executor_running: Gauge,
    executor_capacity: Gauge,
    backend_up: Family<Label, Gauge>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            tasks: tasks::TaskMetrics::default(),
            leader: Gauge::default(),
            leader_term: Gauge::default(),
            leader_acquired: Counter::default(),
            jobs: Gauge::default(),
            jobs_scheduled: Gauge::default(),
            tasks_active: Gauge::default(),
            tasks_on_executors: Gauge::default(),
            tasks_waiting: Gauge::default(),
            queue_length: Family::default(),
            executors_online: Gauge::default(),
            store_calls: Family::new_with_constructor(call_buckets),
            store_errors: Family::default(),
            dispatch_calls: Family::new_with_constructor(call_buckets),
            dispatch_errors: Family::default(),
            dispatch_received: Family::default(),
            poison: Counter::default(),
            redelivered: Counter::default(),
            seen: Default::default(),
            executor_running: Gauge::default(),
            executor_capacity: Gauge::default(),
            backend_up: Family::default(),
        }
    }
}

impl Metrics {
    /// A new, empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers every series under the prefix `jobsched_` (names and meanings: `docs/OPERATIONS.md`).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("jobsched");
        let i = &self.inner;
        i.tasks.register(r);
        r.register(
            "leader",
            "1 while this scheduler leads (runs the engine), else 0",
            i.leader.clone(),
        );
        r.register(
            "leader_term",
            "The fencing token of this scheduler's current leadership (0 while it does not lead)",
            i.leader_term.clone(),
        );
        r.register(
            "leader_acquired",
            "Times this scheduler became the leader",
            i.leader_acquired.clone(),
        );
        r.register("jobs", "Jobs the leader holds", i.jobs.clone());
        r.register(
            "jobs_scheduled",
            "Jobs with a next fire time",
            i.jobs_scheduled.clone(),
        );
        r.register(
            "tasks_active",
            "Attempts not ended: queued, waiting for a retry, dispatched or running",
            i.tasks_active.clone(),
        );
        r.register(
            "tasks_on_executors",
            "Attempts dispatched to or running on an executor",
            i.tasks_on_executors.clone(),
        );
        r.register(
            "tasks_waiting",
            "Attempts waiting for a retry time or held by their job's overlap policy",
            i.tasks_waiting.clone(),
        );
        r.register(
            "queue_length",
            "Attempts ready and waiting for an executor with room, by priority",
            i.queue_length.clone(),
        );
        r.register(
            "executors_online",
            "Executors registered and online",
            i.executors_online.clone(),
        );
        r.register(
            "store_call_seconds",
            "Duration of storage calls by operation (retries included)",
            i.store_calls.clone(),
        );
        r.register(
            "store_errors",
            "Storage calls that failed, by operation",
            i.store_errors.clone(),
        );
        r.register(
            "dispatch_call_seconds",
            "Duration of sends to the task transport (Kafka produce, or in-process), by operation",
            i.dispatch_calls.clone(),
        );
        r.register(
            "dispatch_errors",
            "Sends to and reads from the task transport that failed, by operation",
            i.dispatch_errors.clone(),
        );
        r.register(
            "dispatch_received",
            "Messages received from the task transport, by stream",
            i.dispatch_received.clone(),
        );
        r.register(
            "poison_messages",
            "Messages skipped: undecodable, unsigned, forged, altered or too old",
            i.poison.clone(),
        );
        r.register(
            "redelivered_messages",
            "Messages delivered again after a consumer left without acknowledging them",
            i.redelivered.clone(),
        );
        r.register(
            "executor_tasks_running",
            "Tasks this executor runs now",
            i.executor_running.clone(),
        );
        r.register(
            "backend_up",
            "1 if the backend answered its ping at the scrape, else 0: `store`, `dispatch` (Kafka), \
             `coordinator` (ZooKeeper: the session is connected)",
            i.backend_up.clone(),
        );
        r.register(
            "executor_capacity",
            "Tasks this executor runs at once at most",
            i.executor_capacity.clone(),
        );
    }

    /// Records a storage call (store crates call this around every operation).
    pub fn store_call(&self, operation: &'static str, elapsed: Duration, ok: bool) {
        let l = [("operation", operation)];
        self.inner
            .store_calls
            .get_or_create(&l)
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.inner.store_errors.get_or_create(&l).inc();
        }
    }

    /// Records a send to the task transport.
    pub fn dispatch_call(&self, operation: &'static str, elapsed: Duration, ok: bool) {
        let l = [("operation", operation)];
        self.inner
            .dispatch_calls
            .get_or_create(&l)
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.inner.dispatch_errors.get_or_create(&l).inc();
        }
    }

    /// Records `n` messages received from `stream` (`tasks`, `results`, `control`), or a failed read.
    pub fn dispatch_received(&self, stream: &'static str, n: usize, ok: bool) {
        if ok {
            self.inner
                .dispatch_received
                .get_or_create(&[("stream", stream)])
                .inc_by(n as u64);
        } else {
            self.inner
                .dispatch_errors
                .get_or_create(&[("operation", stream)])
                .inc();
        }
    }

    /// Sets the engine's gauges from its statistics (an endpoint calls this before encoding); a standby
    /// passes `None` and reports zeros.
    pub fn observe_engine(&self, stats: Option<&EngineStats>) {
        let i = &self.inner;
        let d = EngineStats::default();
        let s = stats.unwrap_or(&d);
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        i.jobs.set(g(s.jobs));
        i.jobs_scheduled.set(g(s.scheduled));
        i.tasks_active.set(g(s.active_tasks));
        i.tasks_waiting.set(g(s.waiting));
        i.tasks_on_executors
            .set(g(s.active_tasks.saturating_sub(s.ready + s.waiting)));
        i.executors_online.set(g(s.executors_online));
        i.queue_length.clear();
        for (priority, n) in &s.ready_by_priority {
            i.queue_length
                .get_or_create(&[("priority", priority.to_string())])
                .set(g(*n));
        }
    }

    /// Adds what a dispatcher counted since the last call (its counters only grow).
    pub fn observe_dispatch(&self, stats: DispatchStats) {
        let mut seen = self.inner.seen.lock().unwrap_or_else(|e| e.into_inner());
        self.inner
            .poison
            .inc_by(stats.poison.saturating_sub(seen.poison));
        self.inner
            .redelivered
            .inc_by(stats.redelivered.saturating_sub(seen.redelivered));
        *seen = stats;
    }

    /// Sets whether `backend` (`store`, `dispatch`, `coordinator`) answered.
    pub fn observe_backend(&self, backend: &'static str, up: bool) {
        self.inner
            .backend_up
            .get_or_create(&[("backend", backend)])
            .set(i64::from(up));
    }

    /// Sets an executor's gauges.
    pub fn observe_executor(&self, running: usize, capacity: u32) {
        self.inner.executor_running.set(running as i64);
        self.inner.executor_capacity.set(i64::from(capacity));
    }

    /// Records that this scheduler leads with fencing token `term`, or (`None`) that it stopped leading.
    pub(crate) fn leadership(&self, term: Option<u64>) {
        let i = &self.inner;
        match term {
            Some(t) => {
                i.leader.set(1);
                i.leader_term.set(i64::try_from(t).unwrap_or(i64::MAX));
                i.leader_acquired.inc();
            }
            None => {
                i.leader.set(0);
                i.leader_term.set(0);
            }
        }
    }

    pub(crate) fn tasks(&self) -> &tasks::TaskMetrics {
        &self.inner.tasks
    }
}

/// The registry's series in the OpenMetrics text format (`application/openmetrics-text;
/// version=1.0.0`), which Prometheus reads.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}
