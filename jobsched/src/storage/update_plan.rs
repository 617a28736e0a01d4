//! The decision of a batch of conditional updates, written once for every store: the in-memory store
//! applies it to its own records, the SQL stores to the rows they read (and locked) in their transaction.
//! So every store has exactly the same semantics.

use super::{ExecutionUpdate, UpdateOutcome};
use crate::error::Result;
use crate::model::{ExecutionRecord, TaskId};

/// The stored attempts a batch of updates is decided on.
pub trait UpdateTarget {
    /// Where an attempt is held.
    type Slot: Copy;

    /// Finds attempt `attempt` of `task_id` (including one an earlier update of the batch inserted).
    fn find(&mut self, task_id: &TaskId, attempt: u32) -> Option<Self::Slot>;

    /// The attempt in `slot`.
    fn record(&mut self, slot: Self::Slot) -> &mut ExecutionRecord;

    /// Called before an update changes the attempt in `slot` (e.g. to keep an undo copy).
    fn changing(&mut self, _slot: Self::Slot) {}

    /// Called after an update changed the attempt in `slot`.
    fn changed(&mut self, slot: Self::Slot);

    /// Stores the next attempt an applied update planned and returns its id (`Some(0)` when the id is
    /// known only once the batch is written). Fails with `AlreadyExists` if that attempt exists; the caller
    /// then keeps nothing of the batch.
    fn insert_next(&mut self, next: &ExecutionRecord) -> Result<Option<i64>>;
}

/// Applies a batch of [`ExecutionUpdate`]s to `target` in order, each seeing the ones before it: an
/// update whose expectation holds is applied (with its next attempt inserted), one whose attempt is in
/// another state is `Stale`, one whose attempt does not exist is `NotFound`.
///
/// Fails with `AlreadyExists` if an applied update's next attempt exists already (or is repeated); the
/// caller must then undo (or not commit) what the batch changed.
pub fn apply_updates<T: UpdateTarget>(
    target: &mut T,
    updates: &[ExecutionUpdate],
) -> Result<Vec<UpdateOutcome>> {
    let mut out = Vec::with_capacity(updates.len());
    for u in updates {
        let Some(slot) = target.find(&u.task_id, u.attempt) else {
            out.push(UpdateOutcome::NotFound);
            continue;
        };
        let rec = target.record(slot);
        if !u.expectation_holds(rec) {
            out.push(UpdateOutcome::Stale {
                status: rec.status,
                executor_id: rec.executor_id.clone(),
            });
            continue;
        }
        target.changing(slot);
        u.apply_to(target.record(slot));
        target.changed(slot);
        let next_id = match &u.next_attempt {
            None => None,
            Some(next) => target.insert_next(next)?,
        };
        out.push(UpdateOutcome::Applied { next_id });
    }
    Ok(out)
}
