//! The in-memory store's execution records by id.

use std::collections::VecDeque;

use crate::model::ExecutionRecord;

/// Records by id. Ids are assigned in sequence, so a deque indexed by `id - first` replaces a tree.
/// Boxed: growing the deque then moves pointers, not ~450-byte records.
#[derive(Debug, Default)]
pub(super) struct Records {
    first: i64,
    slots: VecDeque<Option<Box<ExecutionRecord>>>,
}

impl Records {
    pub(super) fn insert(&mut self, id: i64, rec: ExecutionRecord) {
        if self.slots.is_empty() {
            self.first = id;
        }
        debug_assert_eq!(
            id,
            self.first + self.slots.len() as i64,
            "ids are sequential"
        );
        self.slots.push_back(Some(Box::new(rec)));
    }

    fn slot(&self, id: i64) -> Option<usize> {
        usize::try_from(id - self.first)
            .ok()
            .filter(|i| *i < self.slots.len())
    }

    pub(super) fn get(&self, id: i64) -> Option<&ExecutionRecord> {
        self.slots.get(self.slot(id)?)?.as_deref()
    }

    pub(super) fn get_mut(&mut self, id: i64) -> Option<&mut ExecutionRecord> {
        let i = self.slot(id)?;
        self.slots.get_mut(i)?.as_deref_mut()
    }

    pub(super) fn remove(&mut self, id: i64) -> Option<ExecutionRecord> {
        let i = self.slot(id)?;
        let rec = self.slots.get_mut(i)?.take().map(|b| *b);
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.first += 1;
        }
        rec
    }

    /// Oldest first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &ExecutionRecord> {
        self.slots.iter().filter_map(Option::as_deref)
    }
}
