//! A map that remembers at most a fixed number of entries, forgetting the oldest first: the executor's
//! memory of attempts it has taken (to drop redelivered copies) and of cancels that came before their task.

use std::collections::VecDeque;
use std::hash::Hash;

use crate::fastmap::FastMap;

/// At most `limit` entries; inserting one more forgets the oldest.
#[derive(Debug)]
pub(crate) struct BoundedMap<K, V> {
    map: FastMap<K, V>,
    order: VecDeque<K>,
    limit: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub fn new(limit: usize) -> Self {
        BoundedMap {
            map: FastMap::default(),
            order: VecDeque::new(),
            limit: limit.max(1),
        }
    }

    /// Inserts `key` unless it is there; returns whether it was new.
    pub fn insert(&mut self, key: K, value: V) -> bool {
        match self.map.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => return false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(value);
            }
        }
        self.order.push_back(key);
        if self.order.len() > self.limit {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        true
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Takes an entry out (its place in the order is dropped when it comes up).
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }
}

/// A [`BoundedMap`] without values.
pub(crate) type BoundedSet<K> = BoundedMap<K, ()>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_its_limit() {
        let mut seen: BoundedSet<u32> = BoundedMap::new(2);
        assert!(seen.insert(1, ()));
        assert!(!seen.insert(1, ()), "a repeat is not new");
        assert!(seen.insert(2, ()));
        assert!(seen.insert(3, ()));
        assert!(!seen.contains(&1) && seen.contains(&2) && seen.contains(&3));
    }

    #[test]
    fn removed_entries_are_gone_and_values_come_back() {
        let mut m = BoundedMap::new(10);
        m.insert("a", 7);
        assert_eq!(m.remove(&"a"), Some(7));
        assert!(!m.contains(&"a"));
        assert!(m.insert("a", 8), "it can be remembered again");
    }
}
