//! Behaviours the executor runtime wraps around every handler, one layer each (the tower idea): the
//! task's timeout, output capping, and panic containment. A handler only runs its task; the runtime
//! builds `CatchPanic(Timeout(CapOutput(handler)))` once per registered handler ([`layered`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;

use super::{CappedBuffer, ExecError, Outcome, TaskContext, TaskHandler};
use crate::clock::secs;
use crate::guard::Guarded;
use crate::model::{CancelReason, Task};

/// Wraps a handler in every layer the runtime applies, outermost first: [`CatchPanic`], [`Timeout`],
/// [`CapOutput`].
pub fn layered(handler: Arc<dyn TaskHandler>) -> Arc<dyn TaskHandler> {
    Arc::new(CatchPanic(Arc::new(Timeout(Arc::new(CapOutput(handler))))))
}

/// Ends an attempt at the task's `timeout` (seconds; 0: none): cancels the context with
/// [`CancelReason::Timeout`], gives the handler the kill grace (plus a second) to stop, and abandons it
/// after that with exit code 137.
#[derive(Clone)]
pub struct Timeout(pub Arc<dyn TaskHandler>);

#[async_trait]
impl TaskHandler for Timeout {
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        let fut = self.0.execute(ctx, task);
        if task.timeout == 0 {
            return fut.await;
        }
        tokio::pin!(fut);
        tokio::select! {
            o = &mut fut => o,
            _ = tokio::time::sleep(secs(task.timeout)) => {
                ctx.cancel(CancelReason::Timeout);
                match tokio::time::timeout(ctx.kill_grace + Duration::from_secs(1), &mut fut).await {
                    Ok(o) => o,
                    Err(_) => Err(ExecError::Cancelled {
                        output: String::new(),
                        stderr: "the handler did not stop within the kill grace and was abandoned".into(),
                        exit_code: 137,
                    }),
                }
            }
        }
    }
}

/// Caps the output and standard error a handler returns to the context's `max_output_bytes` each (the
/// head and tail are kept, see [`CappedBuffer`]).
#[derive(Clone)]
pub struct CapOutput(pub Arc<dyn TaskHandler>);

/// `s`, capped to `cap` bytes.
pub(crate) fn capped(s: String, cap: usize) -> String {
    if s.len() <= cap {
        s
    } else {
        let mut b = CappedBuffer::new(cap);
        b.push(s.as_bytes());
        b.into_text()
    }
}

#[async_trait]
impl TaskHandler for CapOutput {
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        let cap = ctx.max_output_bytes;
        match self.0.execute(ctx, task).await {
            Ok(o) => Ok(Outcome {
                output: capped(o.output, cap),
                stderr: capped(o.stderr, cap),
                exit_code: o.exit_code,
            }),
            Err(ExecError::Failed {
                message,
                output,
                stderr,
                exit_code,
            }) => Err(ExecError::Failed {
                message,
                output: capped(output, cap),
                stderr: capped(stderr, cap),
                exit_code,
            }),
            Err(ExecError::Cancelled {
                output,
                stderr,
                exit_code,
            }) => Err(ExecError::Cancelled {
                output: capped(output, cap),
                stderr: capped(stderr, cap),
                exit_code,
            }),
            Err(other) => Err(other),
        }
    }
}

/// Turns a panic in the handler into a failed attempt (exit code 101) instead of a dead executor loop.
#[derive(Clone)]
pub struct CatchPanic(pub Arc<dyn TaskHandler>);

#[async_trait]
impl TaskHandler for CatchPanic {
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        match Guarded(self.0.execute(ctx, task)).await {
            Ok(r) => r,
            Err(panic) => {
                warn!(%panic, "the handler panicked");
                Err(ExecError::Failed {
                    message: format!("the '{}' handler panicked: {panic}", task.task_type),
                    output: String::new(),
                    stderr: String::new(),
                    exit_code: 101,
                })
            }
        }
    }
}
