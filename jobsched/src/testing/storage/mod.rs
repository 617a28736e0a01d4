//! Conformance of [`Storage`] implementations: jobs and the change feed, fires,
//! results, transitions and fencing (file `jobs.rs`); history, takeover, purge, executors, settings, text
//! and batches (file `records.rs`).

mod fences;
mod jobs;
mod records;
mod retention;
mod stats;

use std::sync::Arc;

pub use fences::*;
pub use jobs::*;
pub use records::*;
pub use retention::*;
pub use stats::*;

use crate::model::{ExecutorId, TaskStatus};
use crate::storage::{ExecutionUpdate, Expect, InsertOutcome, Storage};

use super::t0;
use chrono::TimeDelta;

pub(super) fn dispatched(
    mut rec: crate::model::ExecutionRecord,
    exec: &str,
) -> crate::model::ExecutionRecord {
    rec.status = TaskStatus::Dispatched;
    rec.executor_id = Some(ExecutorId::new(exec).unwrap());
    rec.executor_epoch = 1;
    rec
}

pub(super) fn finish(
    rec: &crate::model::ExecutionRecord,
    exec: &str,
    status: TaskStatus,
) -> ExecutionUpdate {
    let mut u = ExecutionUpdate::new(
        rec.task_id.clone(),
        rec.attempt,
        Expect::OnExecutor(ExecutorId::new(exec).unwrap()),
        status,
    );
    u.start_time = Some(t0());
    u.end_time = Some(t0() + TimeDelta::seconds(1));
    u.output = Some("out".into());
    u.error = Some(String::new());
    u.exit_code = Some(0);
    u
}

pub(super) async fn insert_one(s: &Arc<dyn Storage>, rec: &crate::model::ExecutionRecord) -> i64 {
    match s
        .insert_executions(std::slice::from_ref(rec), None)
        .await
        .unwrap()
        .remove(0)
    {
        InsertOutcome::Inserted { id } => id,
        other => panic!("insert of a new record returned {other:?}"),
    }
}

/// Every behaviour of this suite, by function name (for the coverage check in backend tests).
pub fn behaviours() -> Vec<&'static str> {
    let mut all = super::behaviours_in(include_str!("jobs.rs"));
    all.extend(super::behaviours_in(include_str!("records.rs")));
    all.extend(super::behaviours_in(include_str!("stats.rs")));
    all.extend(super::behaviours_in(include_str!("retention.rs")));
    all.extend(super::behaviours_in(include_str!("fences.rs")));
    all
}
