//! One attempt on the executor: the handler run under the task's timeout, and its answer turned into
//! the attempt's result (status, capped output and error, exit code, retry hints).

use std::time::Duration;

use crate::clock::{SharedClock, secs};
use crate::handler::{CappedBuffer, ExecError, TaskContext};
use crate::model::{CancelReason, Task, TaskResult, TaskStatus};

/// Runs one attempt with its timeout, and turns the handler's answer into a result.
pub(super) async fn run_one(
    handler: &dyn crate::handler::TaskHandler,
    ctx: &TaskContext,
    task: &Task,
    mut r: TaskResult,
    clock: &SharedClock,
) -> TaskResult {
    let fut = handler.execute(ctx, task);
    tokio::pin!(fut);
    let outcome = if task.timeout > 0 {
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
    } else {
        fut.await
    };
    let cap = ctx.max_output_bytes;
    let capped = |s: String| {
        if s.len() <= cap {
            s
        } else {
            let mut b = CappedBuffer::new(cap);
            b.push(s.as_bytes());
            b.into_text()
        }
    };
    let join = |stderr: String, message: String| {
        if stderr.is_empty() {
            message
        } else if stderr.ends_with('\n') {
            format!("{stderr}{message}")
        } else {
            format!("{stderr}\n{message}")
        }
    };
    r.end_time = Some(clock.now());
    match outcome {
        Ok(o) => {
            r.status = TaskStatus::Succeeded;
            r.output = capped(o.output);
            r.error = capped(o.stderr);
            r.exit_code = o.exit_code;
        }
        Err(ExecError::Failed {
            message,
            output,
            stderr,
            exit_code,
        }) => {
            r.status = TaskStatus::Failed;
            r.output = capped(output);
            r.error = capped(join(stderr, message));
            r.exit_code = exit_code;
        }
        Err(ExecError::RetryAfter { delay, message }) => {
            r.status = TaskStatus::Failed;
            r.error = capped(message);
            r.exit_code = 1;
            r.retry_after_ms = Some(delay.as_millis() as u64);
        }
        Err(ExecError::Abort { message }) => {
            r.status = TaskStatus::Failed;
            r.error = capped(message);
            r.exit_code = 1;
            r.no_retry = true;
        }
        Err(ExecError::Cancelled {
            output,
            stderr,
            exit_code,
        }) => {
            let reason = ctx.cancel_reason();
            let (status, why) = match reason {
                Some(CancelReason::Timeout) => (
                    TaskStatus::TimedOut,
                    format!("timed out after {}s; process group killed", task.timeout),
                ),
                Some(CancelReason::Shutdown) => (
                    TaskStatus::Lost,
                    "interrupted: the executor shut down; it will run elsewhere".to_owned(),
                ),
                Some(CancelReason::Replaced) => (
                    TaskStatus::Cancelled,
                    "cancelled: replaced by a newer fire".to_owned(),
                ),
                _ => (TaskStatus::Cancelled, "cancelled".to_owned()),
            };
            r.status = status;
            r.output = capped(output);
            r.error = capped(join(stderr, why));
            r.exit_code = exit_code;
        }
    }
    r
}
