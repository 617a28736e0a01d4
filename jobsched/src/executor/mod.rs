//! The executor runtime: registers an executor, takes the tasks sent to it, runs them through the handler
//! registry under a concurrency limit, and reports results.
//!
//! Delivery guarantees on the executor side:
//! * A task is acknowledged to the dispatcher only after its `running` result is sent, so a task is either
//!   redelivered (the executor died before taking it) or known to the scheduler as started (and failed over
//!   if the executor dies while running it). An attempt already seen is never run again.
//! * A task addressed to an older registration epoch is dropped: the scheduler has given it to someone
//!   else after this executor's session ended.
//! * When its session ends, the executor stops (kills) what it runs and registers again with a new epoch.
//!
//! Liveness: the executor's heartbeat is its coordination session (the service expires a session whose
//! client stops answering); the scheduler marks the executor offline when its registration disappears.

mod attempt;
mod bounded;
mod drain;
mod queue;
mod runtime;
mod session;
mod spawn;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Backends;
use crate::clock::{SharedClock, SystemClock};
use crate::coord::Coordinator;
use crate::dispatch::Dispatcher;
use crate::error::{Error, Result};
use crate::handler::{HandlerRegistry, TaskHandler};
use crate::model::{ExecutorId, ExecutorInfo, SystemConfig};

/// Builds and starts an [`Executor`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> jobsched::Result<()> {
/// use std::sync::Arc;
/// use jobsched::{Backends, Executor, ExecutorId, handler::NoopHandler};
///
/// let backends = Backends::in_memory();
/// let executor = Executor::builder(ExecutorId::new("worker-1")?, backends)
///     .with_capacity(4)
///     .with_handler("noop", Arc::new(NoopHandler))
///     .start()
///     .await?;
/// executor.shutdown().await;
/// # Ok(()) }
/// ```
pub struct ExecutorBuilder {
    id: ExecutorId,
    backends: ExecutorBackends,
    capacity: u32,
    group: String,
    labels: BTreeMap<String, String>,
    host: String,
    port: u16,
    handlers: HandlerRegistry,
    clock: SharedClock,
    shutdown_grace: Duration,
    /// The first invalid setting given (reported by `start`).
    invalid: Option<Error>,
}

/// A running executor.
#[derive(Debug)]
pub struct Executor {
    id: ExecutorId,
    shutdown: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    state: Arc<runtime::State>,
    dispatcher: Arc<dyn crate::dispatch::Dispatcher>,
}

impl Executor {
    /// A builder for executor `id` on `backends` (its storage is not used: executors only talk to the
    /// dispatcher and the coordinator).
    pub fn builder(id: ExecutorId, backends: impl Into<ExecutorBackends>) -> ExecutorBuilder {
        ExecutorBuilder {
            id,
            backends: backends.into(),
            capacity: 8,
            group: String::new(),
            labels: BTreeMap::new(),
            host: hostname(),
            port: 0,
            handlers: HandlerRegistry::with_shell(),
            clock: Arc::new(SystemClock),
            shutdown_grace: Duration::from_secs(30),
            invalid: None,
        }
    }

    /// Its id.
    pub fn id(&self) -> &ExecutorId {
        &self.id
    }

    /// Attempts running now.
    pub fn running(&self) -> usize {
        self.state.running()
    }

    /// Its dispatcher's counters: poison messages skipped on its task and control topics, redeliveries.
    pub fn dispatch_stats(&self) -> crate::dispatch::DispatchStats {
        self.dispatcher.stats()
    }

    /// Its current registration epoch (0 while not registered).
    pub fn epoch(&self) -> u64 {
        self.state.epoch()
    }

    /// The version of the central configuration it applies (0: its built-in defaults, none published).
    pub fn config_version(&self) -> u64 {
        self.state.config_version()
    }

    /// Stops taking tasks, lets running ones finish within the shutdown grace, stops the rest (they are
    /// reported `lost`, so the scheduler runs them elsewhere), and deregisters.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.join().await;
    }

    /// Stops the runtime abruptly, like a crash: running processes are killed, nothing is reported and
    /// the registration stays until its session expires. For failure tests.
    pub async fn kill(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }

    async fn join(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

/// What an executor is built from: the transport its tasks and results travel on, and the coordinator it
/// registers with. (An executor keeps no storage; a [`Backends`] converts, dropping its storage.)
#[derive(Clone, Debug)]
pub struct ExecutorBackends {
    /// Task and result transport.
    pub dispatcher: Arc<dyn Dispatcher>,
    /// Membership and settings.
    pub coordinator: Arc<dyn Coordinator>,
}

impl From<Backends> for ExecutorBackends {
    fn from(b: Backends) -> Self {
        ExecutorBackends {
            dispatcher: b.dispatcher,
            coordinator: b.coordinator,
        }
    }
}

impl From<&Backends> for ExecutorBackends {
    fn from(b: &Backends) -> Self {
        b.clone().into()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl ExecutorBuilder {
    /// How many tasks it runs at once (default 8).
    pub fn with_capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Its group.
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Adds a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The host and port it announces.
    pub fn with_address(mut self, host: impl Into<String>, port: u16) -> Self {
        self.host = host.into();
        self.port = port;
        self
    }

    /// Adds a handler for tasks of `type = name`.
    pub fn with_handler(mut self, name: &str, handler: Arc<dyn TaskHandler>) -> Self {
        if let Err(e) = self.handlers.register(name, handler) {
            self.invalid.get_or_insert(e);
        }
        self
    }

    /// Replaces the whole handler registry (the default has `shell`).
    pub fn with_handlers(mut self, handlers: HandlerRegistry) -> Self {
        self.handlers = handlers;
        self
    }

    /// Uses another clock.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How long running tasks may take to finish at shutdown (default 30 s).
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Registers the executor and starts taking tasks.
    pub async fn start(self) -> Result<Executor> {
        if let Some(e) = self.invalid {
            return Err(e);
        }
        if self.capacity == 0 {
            return Err(Error::invalid("capacity", "must be at least 1"));
        }
        if self.handlers.names().is_empty() {
            return Err(Error::invalid(
                "handlers",
                "an executor needs at least one handler",
            ));
        }
        let info = ExecutorInfo {
            executor_id: self.id.clone(),
            host: self.host,
            port: self.port,
            capacity: self.capacity,
            group: self.group,
            labels: self.labels,
            handlers: self.handlers.names(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let shutdown = CancellationToken::new();
        let state = Arc::new(runtime::State::default());
        let dispatcher = self.backends.dispatcher.clone();
        let rt = runtime::Runtime::start(runtime::RuntimeParts {
            info,
            backends: self.backends,
            handlers: self.handlers,
            clock: self.clock,
            sys: SystemConfig::default(),
            shutdown_grace: self.shutdown_grace,
            state: state.clone(),
        })
        .await?;
        let task = tokio::spawn(rt.run(shutdown.clone()));
        Ok(Executor {
            id: self.id,
            shutdown,
            task: std::sync::Mutex::new(Some(task)),
            state,
            dispatcher,
        })
    }
}
