//! Behaviours the executor runtime puts around every handler, one layer each (the tower idea): the
//! task's timeout, panic containment, and output capping. A handler only runs its task.
//!
//! Each layer is a function over the handler's answer ([`timeout`], [`catch_panic`], [`cap_output`]);
//! [`run`] stacks them, outermost first `Timeout(CatchPanic(handler))` with the answer capped, and is what
//! the runtime calls for every attempt. Stacked as plain futures they cost nothing per task beyond the
//! handler's own future (a `TaskHandler` object per layer would box a future per layer per task). The
//! same layers as `TaskHandler` wrappers ([`Timeout`], [`CatchPanic`], [`CapOutput`]) are for runtimes of
//! one's own.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;

use super::output::cap_text;
use super::{ExecError, Outcome, TaskContext, TaskHandler};
use crate::clock::secs;
use crate::guard::Guarded;
use crate::model::{CancelReason, Task};

/// One attempt of `task` by `handler` through every layer the runtime applies.
pub async fn run(
    handler: &dyn TaskHandler,
    ctx: &TaskContext,
    task: &Task,
) -> Result<Outcome, ExecError> {
    let answer = timeout(catch_panic(handler, ctx, task), ctx, task).await;
    cap_output(answer, ctx.max_output_bytes)
}

/// Ends `answer` at the task's `timeout` (seconds; 0: none) by cancelling the context with
/// [`CancelReason::Timeout`], and bounds every cancel, whatever its reason (timeout, a user's cancel,
/// the executor's shutdown or lost session): the handler gets the kill grace plus a second to stop, and
/// is abandoned after that with exit code 137 — a handler that ignores cancellation cannot hold an
/// executor's slot, its re-registration or its shutdown.
pub async fn timeout(
    answer: impl Future<Output = Result<Outcome, ExecError>>,
    ctx: &TaskContext,
    task: &Task,
) -> Result<Outcome, ExecError> {
    tokio::pin!(answer);
    let limit = async {
        if task.timeout == 0 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(secs(task.timeout)).await;
        ctx.cancel(CancelReason::Timeout);
    };
    tokio::select! {
        o = &mut answer => return o,
        () = limit => {}
        () = ctx.cancelled() => {}
    }
    match tokio::time::timeout(ctx.kill_grace + Duration::from_secs(1), &mut answer).await {
        Ok(o) => o,
        Err(_) => {
            warn!(reason = ?ctx.cancel_reason(), "the handler did not stop within the kill grace: abandoned");
            Err(ExecError::Cancelled {
                output: String::new(),
                stderr: "the handler did not stop within the kill grace and was abandoned".into(),
                exit_code: 137,
            })
        }
    }
}

/// Runs `handler`, turning a panic in it into a failed attempt (exit code 101) instead of a dead
/// executor loop.
pub async fn catch_panic(
    handler: &dyn TaskHandler,
    ctx: &TaskContext,
    task: &Task,
) -> Result<Outcome, ExecError> {
    // The handler's future is boxed already (`async_trait`): guarding it allocates nothing more.
    match Guarded(handler.execute(ctx, task)).await {
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

/// `s`, capped to `cap` bytes (see [`cap_text`]).
pub(crate) fn capped(s: String, cap: usize) -> String {
    match cap_text(&s, cap) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(c) => c,
    }
}

/// Caps the output and standard error of an answer to `cap` bytes each.
pub fn cap_output(answer: Result<Outcome, ExecError>, cap: usize) -> Result<Outcome, ExecError> {
    match answer {
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

/// [`timeout`] as a handler wrapper.
#[derive(Clone)]
pub struct Timeout(pub Arc<dyn TaskHandler>);

#[async_trait]
impl TaskHandler for Timeout {
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        timeout(self.0.execute(ctx, task), ctx, task).await
    }
}

/// [`catch_panic`] as a handler wrapper.
#[derive(Clone)]
pub struct CatchPanic(pub Arc<dyn TaskHandler>);

#[async_trait]
impl TaskHandler for CatchPanic {
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        catch_panic(self.0.as_ref(), ctx, task).await
    }
}

/// [`cap_output`] (to the context's `max_output_bytes`) as a handler wrapper.
#[derive(Clone)]
pub struct CapOutput(pub Arc<dyn TaskHandler>);

#[async_trait]
impl TaskHandler for CapOutput {
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        cap_output(self.0.execute(ctx, task).await, ctx.max_output_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExecutionRecord, ExecutorId, JobSpec, TaskId, Trigger};

    struct Wild;

    #[async_trait]
    impl TaskHandler for Wild {
        async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
            match task.command.as_str() {
                "panic" => panic!("boom"),
                "loud" => Ok(Outcome::success("x".repeat(10_000))),
                _ => {
                    // Ignores cancellation: only the kill grace ends it.
                    let _ = ctx;
                    std::future::pending().await
                }
            }
        }
    }

    fn task(command: &str, timeout: u32) -> Task {
        let now = "2026-01-01T00:00:00Z".parse().unwrap();
        let job = JobSpec::manual("l", command).build(now).unwrap();
        let mut rec =
            ExecutionRecord::first_attempt(&job, TaskId::generate(), Trigger::Manual, now, now);
        rec.timeout = timeout;
        rec.to_task()
    }

    fn ctx() -> TaskContext {
        TaskContext::new(ExecutorId::new("e").unwrap(), 100, Duration::from_secs(2))
    }

    #[tokio::test(start_paused = true)]
    async fn each_layer_does_its_one_thing() {
        let panicked = run(&Wild, &ctx(), &task("panic", 0)).await.unwrap_err();
        assert!(
            matches!(&panicked, ExecError::Failed { exit_code: 101, message, .. } if message.contains("boom")),
            "{panicked:?}"
        );
        let loud = run(&Wild, &ctx(), &task("loud", 0)).await.unwrap();
        assert!(loud.output.len() <= 200, "capped: {}", loud.output.len());
        let c = ctx();
        let stuck = run(&Wild, &c, &task("hang", 5)).await.unwrap_err();
        assert!(
            matches!(stuck, ExecError::Cancelled { exit_code: 137, .. }),
            "{stuck:?}"
        );
        assert_eq!(c.cancel_reason(), Some(CancelReason::Timeout));
        // Any cancel, not only the timeout, ends a handler that ignores it after the kill grace.
        let c = ctx();
        let cancel = {
            let c = c.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                c.cancel(CancelReason::User);
            }
        };
        let started = tokio::time::Instant::now();
        let hang = task("hang", 0);
        let (stuck, ()) = tokio::join!(run(&Wild, &c, &hang), cancel);
        assert!(
            matches!(stuck, Err(ExecError::Cancelled { exit_code: 137, .. })),
            "{stuck:?}"
        );
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(4),
            "1 s, then the 2 s grace and 1 s"
        );
        let wrapped = CatchPanic(Arc::new(Wild));
        assert!(wrapped.execute(&ctx(), &task("panic", 0)).await.is_err());
    }
}
