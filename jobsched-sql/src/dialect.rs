//! The few places where MySQL and SQLite SQL differ, as fixed text.

use crate::binds::assignments;

/// How one database spells what the shared statements need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    /// The backend's name, for messages.
    pub backend: &'static str,
    /// `ON CONFLICT (…) DO UPDATE SET c = excluded.c` (SQLite) rather than
    /// `ON DUPLICATE KEY UPDATE c = VALUES(c)` (MySQL).
    pub conflict_clause: bool,
    /// Appended to a read that decides a write (`FOR UPDATE`; nothing in SQLite, whose write transactions
    /// hold the database lock from their start).
    pub for_update: &'static str,
    /// Appended to a read that must see the latest committed row and keep it from changing until commit
    /// (`LOCK IN SHARE MODE`; nothing in SQLite).
    pub for_share: &'static str,
    /// The larger-of-two function (`GREATEST` / `MAX`).
    pub greatest: &'static str,
}

/// MySQL and MariaDB.
pub const MYSQL: Dialect = Dialect {
    backend: "mysql",
    conflict_clause: false,
    for_update: " FOR UPDATE",
    for_share: " LOCK IN SHARE MODE",
    greatest: "GREATEST",
};

/// SQLite.
pub const SQLITE: Dialect = Dialect {
    backend: "sqlite",
    conflict_clause: true,
    for_update: "",
    for_share: "",
    greatest: "MAX",
};

impl Dialect {
    /// The upsert clause that, on a duplicate `key`, sets `columns` to the new row's values.
    pub fn upsert<'a>(&self, key: &str, columns: impl IntoIterator<Item = &'a str>) -> String {
        let set = assignments(columns, self.conflict_clause);
        if self.conflict_clause {
            format!(" ON CONFLICT ({key}) DO UPDATE SET {set}")
        } else {
            format!(" ON DUPLICATE KEY UPDATE {set}")
        }
    }

    /// `new` as an upsert assignment's value for column `c`.
    pub fn new_value(&self, c: &str) -> String {
        if self.conflict_clause {
            format!("excluded.{c}")
        } else {
            format!("VALUES({c})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_in_both_dialects() {
        assert_eq!(
            MYSQL.upsert("id", ["a", "b"]),
            " ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b)"
        );
        assert_eq!(
            SQLITE.upsert("id", ["a"]),
            " ON CONFLICT (id) DO UPDATE SET a = excluded.a"
        );
    }
}
