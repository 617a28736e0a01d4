//! Records and updates the active engine and a standby's `Scheduler` both write, built in one place so
//! the two paths cannot drift apart.

use chrono::{DateTime, Utc};

use crate::model::{CancelReason, ExecutionRecord, Job, Params, TaskId, TaskStatus, Trigger};
use crate::storage::{ExecutionUpdate, Expect};

/// The first attempt of a manual run of `job` at `now`, with `params` merged over the job's.
pub(crate) fn manual_run(
    job: &Job,
    task_id: TaskId,
    params: Option<Params>,
    now: DateTime<Utc>,
) -> ExecutionRecord {
    let mut rec = ExecutionRecord::first_attempt(job, task_id, Trigger::Manual, now, now);
    if let Some(p) = params {
        rec.params.extend(p);
    }
    rec
}

/// The update that records a queued attempt cancelled (it never reached an executor).
pub(crate) fn queued_cancel(
    task_id: &TaskId,
    attempt: u32,
    reason: CancelReason,
    now: DateTime<Utc>,
) -> ExecutionUpdate {
    let mut u = ExecutionUpdate::new(
        task_id.clone(),
        attempt,
        Expect::Queued,
        TaskStatus::Cancelled,
    );
    u.end_time = Some(now);
    u.error = Some(match reason {
        CancelReason::Replaced => {
            "cancelled: replaced by a newer fire (overlap_policy = replace)".into()
        }
        CancelReason::JobDeleted => "cancelled: job deleted".into(),
        CancelReason::JobDisabled => "cancelled: job disabled".into(),
        _ => "cancelled before it started".into(),
    });
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobSpec;

    #[test]
    fn a_manual_run_merges_params_and_a_queued_cancel_expects_queued() {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut own = Params::new();
        own.insert("a".into(), "1".into());
        own.insert("b".into(), "2".into());
        let job = JobSpec::manual("m", "true")
            .with_params(own)
            .build(now)
            .unwrap();
        let mut extra = Params::new();
        extra.insert("b".into(), "3".into());
        let rec = manual_run(&job, TaskId::generate(), Some(extra), now);
        assert_eq!((rec.trigger, rec.scheduled_time), (Trigger::Manual, now));
        assert_eq!(rec.params.get("a").and_then(|v| v.as_str()), Some("1"));
        assert_eq!(rec.params.get("b").and_then(|v| v.as_str()), Some("3"));
        let u = queued_cancel(&rec.task_id, 1, CancelReason::User, now);
        assert!(matches!(u.expect, Expect::Queued));
        assert_eq!(u.status, TaskStatus::Cancelled);
        assert_eq!(u.error.as_deref(), Some("cancelled before it started"));
    }
}
