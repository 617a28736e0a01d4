//! One attempt's answer turned into its result: status, output and error (capped), exit code, and the
//! retry hints a handler gave.

use crate::clock::SharedClock;
use crate::handler::layers::capped;
use crate::handler::{ExecError, Outcome, TaskContext};
use crate::model::{CancelReason, Task, TaskResult, TaskStatus};

/// Room a result's fields other than `output` and `error` take, serialised, at most (ids, times, status).
const RESULT_FIELDS_BYTES: usize = 4_096;
/// A truncation marker's length at most, with room to spare.
const MARKER_BYTES: usize = 64;

/// Cuts a result's `output` and `error` (the longer first, keeping their tails) until the result,
/// serialised, fits the transport's `max` bytes: a result too big to send would never reach the scheduler.
pub(super) fn fit_message(r: &mut TaskResult, max: usize) {
    // JSON escapes a byte into at most six: below this the result surely fits, unmeasured.
    if (r.output.len() + r.error.len())
        .saturating_mul(6)
        .saturating_add(RESULT_FIELDS_BYTES)
        <= max
    {
        return;
    }
    loop {
        let len = serde_json::to_vec(&*r).map_or(usize::MAX, |v| v.len());
        if len <= max {
            return;
        }
        // Each raw byte cut removes at least one serialised byte; the marker adds at most MARKER_BYTES.
        let cut = len - max + MARKER_BYTES;
        let field = if r.output.len() >= r.error.len() {
            &mut r.output
        } else {
            &mut r.error
        };
        if field.len() <= MARKER_BYTES {
            return;
        }
        let keep = field.len().saturating_sub(cut).max(MARKER_BYTES);
        *field = capped(std::mem::take(field), keep);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExecutorId, JobId, TaskId};

    fn result(output: String, error: String) -> TaskResult {
        TaskResult {
            task_id: TaskId::generate(),
            job_id: JobId::new("j").unwrap(),
            executor_id: ExecutorId::new("e").unwrap(),
            status: TaskStatus::Succeeded,
            start_time: chrono::Utc::now(),
            end_time: Some(chrono::Utc::now()),
            output,
            error,
            exit_code: 0,
            attempt: 1,
            executor_epoch: 1,
            no_retry: false,
            retry_after_ms: None,
        }
    }

    #[test]
    fn a_result_is_cut_to_fit_its_transport_and_keeps_its_tails() {
        // Control characters serialise six times longer: the worst case of JSON escaping.
        let output = format!("{}END", "\u{1}".repeat(300_000));
        let mut r = result(output.clone(), format!("{}WHY", "e".repeat(90_000)));
        fit_message(&mut r, 100_000);
        let len = serde_json::to_vec(&r).unwrap().len();
        assert!(len <= 100_000, "{len} bytes");
        assert!(len > 90_000, "cut no more than needed: {len} bytes");
        assert!(r.output.ends_with("END") && r.output.starts_with("[jobsched: "));
        assert!(r.error.ends_with("WHY"));
        let small = result("fine".into(), String::new());
        let mut r = small.clone();
        fit_message(&mut r, 100_000);
        assert_eq!(r, small);
        fit_message(&mut r, usize::MAX);
        assert_eq!(r, small);
    }
}
