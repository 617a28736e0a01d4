//! Task handlers: the one narrow trait custom executors implement, and the registry that picks a handler
//! by a task's `type`.
//!
//! A handler only runs a task. Timeouts, the concurrency limit, cancellation delivery and retries are the
//! executor runtime's and the scheduler's business: they wrap the handler instead of being flags inside it.
//! A handler must stop promptly once its context is cancelled (see [`TaskContext::cancelled`]).

mod contain;
pub mod layers;
mod live;
mod output;
mod registry;
mod shell;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use live::LiveOutput;
pub use output::{CappedBuffer, cap_text};
pub use registry::HandlerRegistry;
pub use shell::{DEFAULT_ENV_ALLOW, ShellHandler, TaskUser};

use crate::model::{CancelReason, ExecutorId, Task};

/// What a handler gets besides the task: who runs it, limits, and the cancellation signal.
#[derive(Clone, Debug)]
pub struct TaskContext {
    /// The executor running the task.
    pub executor_id: ExecutorId,
    /// Keep at most this many bytes of output per stream (the tail).
    pub max_output_bytes: usize,
    /// How long to wait between a polite stop (SIGTERM) and a forced one (SIGKILL).
    pub kill_grace: Duration,
    cancel: CancellationToken,
    reason: Arc<Mutex<Option<CancelReason>>>,
    live: Option<Arc<LiveOutput>>,
}

impl TaskContext {
    /// A context with the given limits, not cancelled.
    pub fn new(executor_id: ExecutorId, max_output_bytes: usize, kill_grace: Duration) -> Self {
        TaskContext {
            executor_id,
            max_output_bytes,
            kill_grace,
            cancel: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
            live: None,
        }
    }

    /// This context, sending what the handler writes with [`write_output`](Self::write_output) to
    /// `live` as the task runs.
    pub fn with_live_output(mut self, live: Arc<LiveOutput>) -> Self {
        self.live = Some(live);
        self
    }

    /// Hands output to the live view while the task runs (nothing without one). Handlers call it with
    /// what they also return as output; the shell handler calls it with both streams as they are read.
    pub fn write_output(&self, bytes: &[u8]) {
        if let Some(l) = &self.live {
            l.write(bytes);
        }
    }

    /// Ends the live view (the executor runtime calls it when the handler returns).
    pub fn end_output(&self) {
        if let Some(l) = &self.live {
            l.close();
        }
    }

    /// Resolves when the task must stop (cancelled by a user, timed out, or the executor is shutting down).
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// True once the task must stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Why the task must stop, once it must.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the task to stop (the first reason given wins).
    pub fn cancel(&self, reason: CancelReason) {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
        self.cancel.cancel();
    }
}

/// A successful run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// What the task printed (or returns as its output).
    pub output: String,
    /// What it printed on its error stream.
    pub stderr: String,
    /// Its exit code (0 for handlers without a process).
    pub exit_code: i32,
}

impl Outcome {
    /// A success with this output.
    pub fn success(output: impl Into<String>) -> Self {
        Outcome {
            output: output.into(),
            ..Outcome::default()
        }
    }
}

/// An unsuccessful run, typed by what the scheduler should do next.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The task failed; the scheduler retries it per the job's retry policy.
    #[error("{message}")]
    Failed {
        /// Why, in one line.
        message: String,
        /// Output produced before failing.
        output: String,
        /// Error stream produced.
        stderr: String,
        /// Exit code (1 for handlers without a process).
        exit_code: i32,
    },
    /// The task failed and should be retried after `delay` (overrides the job's retry interval; still
    /// counts against `retry_count`).
    #[error("retry after {delay:?}: {message}")]
    RetryAfter {
        /// Wait before the retry.
        delay: Duration,
        /// Why.
        message: String,
    },
    /// The task failed permanently: do not retry.
    #[error("aborted: {message}")]
    Abort {
        /// Why.
        message: String,
    },
    /// The task stopped because its context was cancelled.
    #[error("stopped on request")]
    Cancelled {
        /// Output produced before stopping.
        output: String,
        /// Error stream produced.
        stderr: String,
        /// Exit code (`128 + signal` for a killed process).
        exit_code: i32,
    },
}

impl ExecError {
    /// A retryable failure with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        ExecError::Failed {
            message: message.into(),
            output: String::new(),
            stderr: String::new(),
            exit_code: 1,
        }
    }

    /// A permanent failure.
    pub fn abort(message: impl Into<String>) -> Self {
        ExecError::Abort {
            message: message.into(),
        }
    }

    /// A failure to retry after `delay`.
    pub fn retry_after(delay: Duration, message: impl Into<String>) -> Self {
        ExecError::RetryAfter {
            delay,
            message: message.into(),
        }
    }
}

/// Runs tasks of one `type`. Implement this to add a custom executor.
///
/// ```
/// use jobsched::handler::{ExecError, Outcome, TaskContext, TaskHandler};
/// use jobsched::Task;
///
/// struct Greeter;
///
/// #[async_trait::async_trait]
/// impl TaskHandler for Greeter {
///     async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
///         if task.command.is_empty() {
///             return Err(ExecError::abort("nobody to greet"));
///         }
///         tokio::select! {
///             _ = ctx.cancelled() => Err(ExecError::Cancelled {
///                 output: String::new(), stderr: String::new(), exit_code: 130 }),
///             _ = tokio::task::yield_now() => Ok(Outcome::success(format!("hello {}", task.command))),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait TaskHandler: Send + Sync + 'static {
    /// Runs one attempt of `task`. Must return soon after `ctx` is cancelled (with
    /// [`ExecError::Cancelled`]); the runtime drops a handler that does not stop within the kill grace.
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError>;
}

/// A handler that succeeds at once with no output (benchmarks, tests, heartbeat jobs).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopHandler;

#[async_trait]
impl TaskHandler for NoopHandler {
    async fn execute(&self, _ctx: &TaskContext, _task: &Task) -> Result<Outcome, ExecError> {
        Ok(Outcome::default())
    }
}
