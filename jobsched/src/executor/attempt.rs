//! One attempt's answer turned into its result: status, output and error (capped), exit code, and the
//! retry hints a handler gave.

use crate::clock::SharedClock;
use crate::handler::layers::capped;
use crate::handler::{ExecError, Outcome, TaskContext};
use crate::model::{CancelReason, Task, TaskResult, TaskStatus};

/// Turns a handler's answer (through the runtime's layers: timeout, capping, panics) into the attempt's
/// result `r`.
pub(super) fn into_result(
    outcome: Result<Outcome, ExecError>,
    ctx: &TaskContext,
    task: &Task,
    mut r: TaskResult,
    clock: &SharedClock,
) -> TaskResult {
    let cap = ctx.max_output_bytes;
    let capped = |s: String| capped(s, cap);
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
