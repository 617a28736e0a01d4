//! The decisions of a batch write, made in Rust on rows the store has read (and locked) in its
//! transaction, so that every SQL store applies exactly the semantics of the in-memory store.

use std::collections::HashMap;
use std::collections::HashSet;

use jobsched::storage::{ExecutionUpdate, UpdateOutcome, UpdateTarget, apply_updates};
use jobsched::{Error, ExecutionRecord, Result, TaskId};

use crate::text::cap_text;

/// Fails with `AlreadyExists` if the batch names an attempt twice.
pub fn check_distinct_attempts<'a>(
    keys: impl IntoIterator<Item = (&'a TaskId, u32)>,
) -> Result<()> {
    let mut seen = HashSet::new();
    for (task, attempt) in keys {
        if !seen.insert((task, attempt)) {
            return Err(taken(task, attempt));
        }
    }
    Ok(())
}

/// The `AlreadyExists` error of an attempt that is stored already.
pub fn taken(task: &TaskId, attempt: u32) -> Error {
    Error::AlreadyExists {
        kind: "task attempt",
        id: format!("{task}#{attempt}"),
    }
}

/// Caps a record's `output` and `error` to `max_bytes` each (see [`cap_text`]).
pub fn cap_record(rec: &mut ExecutionRecord, max_bytes: usize) {
    for text in [&mut rec.output, &mut rec.error] {
        if text.len() > max_bytes {
            *text = cap_text(text, max_bytes).into_owned();
        }
    }
}

/// What a batch of conditional updates does, decided on the stored rows.
#[derive(Debug, Default)]
pub struct UpdatePlan {
    /// One outcome per update, in order. `Applied { next_id }` carries `Some(0)` where a next attempt is
    /// to be inserted; the store fills in the id with [`UpdatePlan::set_next_ids`].
    pub outcomes: Vec<UpdateOutcome>,
    /// Stored rows that change, in their final state (each once, with its row id).
    pub changed: Vec<ExecutionRecord>,
    /// New attempts to insert, in order.
    pub inserts: Vec<ExecutionRecord>,
    /// For each entry of `inserts`, the update whose outcome gets its id.
    insert_for: Vec<usize>,
}

impl UpdatePlan {
    /// Puts the ids the store assigned to `inserts` (in the same order) into the outcomes.
    pub fn set_next_ids(&mut self, ids: &[i64]) {
        debug_assert_eq!(ids.len(), self.inserts.len());
        for (&update, &id) in self.insert_for.iter().zip(ids) {
            if let UpdateOutcome::Applied { next_id } = &mut self.outcomes[update] {
                *next_id = Some(id);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Slot {
    /// Index into `stored`.
    Stored(usize),
    /// Index into the plan's `inserts`.
    New(usize),
}

/// The rows a store read for a batch, as the target of the core's [`apply_updates`].
struct Rows<'a> {
    stored: &'a mut [ExecutionRecord],
    index: HashMap<(TaskId, u32), Slot>,
    dirty: Vec<bool>,
    inserts: Vec<ExecutionRecord>,
    max_output_bytes: usize,
}

impl UpdateTarget for Rows<'_> {
    type Slot = Slot;

    fn find(&mut self, task_id: &TaskId, attempt: u32) -> Option<Slot> {
        self.index.get(&(task_id.clone(), attempt)).copied()
    }

    fn record(&mut self, slot: Slot) -> &mut ExecutionRecord {
        match slot {
            Slot::Stored(s) => &mut self.stored[s],
            Slot::New(n) => &mut self.inserts[n],
        }
    }

    fn changed(&mut self, slot: Slot) {
        let max = self.max_output_bytes;
        cap_record(self.record(slot), max);
        if let Slot::Stored(s) = slot {
            self.dirty[s] = true;
        }
    }

    fn insert_next(&mut self, next: &ExecutionRecord) -> Result<Option<i64>> {
        let key = (next.task_id.clone(), next.attempt);
        if self.index.contains_key(&key) {
            return Err(taken(&next.task_id, next.attempt));
        }
        let mut next = next.clone();
        cap_record(&mut next, self.max_output_bytes);
        self.index.insert(key, Slot::New(self.inserts.len()));
        self.inserts.push(next);
        Ok(Some(0))
    }
}

/// Decides a batch of [`ExecutionUpdate`]s against `stored`: every stored attempt of every task the batch
/// names (read in the same transaction, locked). The decision is the core's [`apply_updates`], the one
/// [`MemoryStorage`](jobsched::storage::MemoryStorage) makes: updates apply in order, each seeing the ones
/// before it. Fails with `AlreadyExists`, deciding nothing, if an applied update's next attempt is stored
/// already or repeated. Output and error are capped to `max_output_bytes`.
pub fn plan_updates(
    updates: &[ExecutionUpdate],
    mut stored: Vec<ExecutionRecord>,
    max_output_bytes: usize,
) -> Result<UpdatePlan> {
    let index = stored
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.task_id.clone(), r.attempt), Slot::Stored(i)))
        .collect();
    let mut rows = Rows {
        dirty: vec![false; stored.len()],
        stored: &mut stored,
        index,
        inserts: Vec::new(),
        max_output_bytes,
    };
    let outcomes = apply_updates(&mut rows, updates)?;
    let (dirty, inserts) = (rows.dirty, rows.inserts);
    // Each applied update with a next attempt inserted one, in order.
    let insert_for = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, UpdateOutcome::Applied { next_id: Some(_) }))
        .map(|(i, _)| i)
        .collect();
    let changed = stored
        .into_iter()
        .zip(dirty)
        .filter_map(|(r, d)| d.then_some(r))
        .collect();
    Ok(UpdatePlan {
        outcomes,
        changed,
        inserts,
        insert_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobsched::storage::Expect;
    use jobsched::testing::{sample_job, sample_record, t0};
    use jobsched::{ExecutorId, TaskStatus, Trigger};

    fn stored(id: i64) -> ExecutionRecord {
        let mut r = sample_record(&sample_job("plan"), Trigger::Manual, t0());
        r.id = id;
        r
    }

    #[test]
    fn updates_apply_in_order_and_see_each_other() {
        let a = stored(1);
        let exec = ExecutorId::new("e").unwrap();
        let mut dispatch =
            ExecutionUpdate::new(a.task_id.clone(), 1, Expect::Queued, TaskStatus::Dispatched);
        dispatch.executor = Some((exec.clone(), 3));
        let mut fail = ExecutionUpdate::new(
            a.task_id.clone(),
            1,
            Expect::OnExecutor(exec.clone()),
            TaskStatus::Failed,
        );
        fail.output = Some("y".repeat(500));
        fail.next_attempt = Some(a.next_attempt(Trigger::Retry, t0(), t0()));
        let again =
            ExecutionUpdate::new(a.task_id.clone(), 1, Expect::Queued, TaskStatus::Cancelled);
        let start_retry =
            ExecutionUpdate::new(a.task_id.clone(), 2, Expect::Queued, TaskStatus::Cancelled);
        let ghost =
            ExecutionUpdate::new(TaskId::generate(), 1, Expect::Active, TaskStatus::Cancelled);
        let mut plan = plan_updates(
            &[dispatch, fail, again, start_retry, ghost],
            vec![a.clone()],
            100,
        )
        .unwrap();
        assert_eq!(plan.changed.len(), 1, "one stored row changed");
        let row = &plan.changed[0];
        assert_eq!(
            (row.id, row.status, row.executor_epoch),
            (1, TaskStatus::Failed, 3)
        );
        assert!(row.output.len() <= 100 && row.output.starts_with("[jobsched: "));
        assert_eq!(plan.inserts.len(), 1);
        assert_eq!(
            plan.inserts[0].status,
            TaskStatus::Cancelled,
            "a later update of the batch sees the new attempt"
        );
        plan.set_next_ids(&[77]);
        assert_eq!(plan.outcomes[0], UpdateOutcome::Applied { next_id: None });
        assert_eq!(
            plan.outcomes[1],
            UpdateOutcome::Applied { next_id: Some(77) }
        );
        assert!(matches!(
            plan.outcomes[2],
            UpdateOutcome::Stale {
                status: TaskStatus::Failed,
                ..
            }
        ));
        assert_eq!(plan.outcomes[3], UpdateOutcome::Applied { next_id: None });
        assert_eq!(plan.outcomes[4], UpdateOutcome::NotFound);
    }

    #[test]
    fn a_taken_next_attempt_fails_the_batch() {
        let a = stored(1);
        let mut second = a.next_attempt(Trigger::Retry, t0(), t0());
        second.id = 2;
        let mut u = ExecutionUpdate::new(a.task_id.clone(), 1, Expect::Queued, TaskStatus::Failed);
        u.next_attempt = Some(a.next_attempt(Trigger::Retry, t0(), t0()));
        let e = plan_updates(&[u.clone()], vec![a.clone(), second], 100).unwrap_err();
        assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
        // Not applied (stale), so its next attempt does not matter.
        let mut stale = u;
        stale.expect = Expect::OnExecutor(ExecutorId::new("x").unwrap());
        let plan = plan_updates(&[stale], vec![a], 100).unwrap();
        assert!(plan.inserts.is_empty() && plan.changed.is_empty());
    }

    #[test]
    fn repeated_attempts_in_a_batch_are_refused() {
        let t = TaskId::generate();
        assert!(check_distinct_attempts([(&t, 1), (&t, 2)]).is_ok());
        assert!(matches!(
            check_distinct_attempts([(&t, 1), (&t, 1)]),
            Err(Error::AlreadyExists { .. })
        ));
    }
}
