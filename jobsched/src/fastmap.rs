//! Hash maps keyed by ids on hot paths use foldhash: ids are not attacker-chosen hash-flooding material
//! inside one process, and SipHash was a measurable share of the per-task cost.

/// A `HashMap` with a fast hasher.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A `HashSet` with a fast hasher.
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
