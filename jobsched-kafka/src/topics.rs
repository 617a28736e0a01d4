//! Topic names: an executor's id inside a topic name, encoded injectively into Kafka's alphabet.

/// An executor id as part of a topic name: letters, digits, `-` and `.` stay; `_` becomes `__` and any
/// other byte (`:`) becomes `_xx` (hex). Injective, so two executors never share a topic.
pub fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        match b {
            b'_' => out.push_str("__"),
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' => out.push(b as char),
            b => out.push_str(&format!("_{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_distinct_topic_names() {
        assert_eq!(encode("exec-1"), "exec-1");
        assert_eq!(encode("a:b"), "a_3ab");
        assert_eq!(encode("a_3ab"), "a__3ab");
        assert_ne!(encode("a:b"), encode("a_3ab"));
        assert!(
            encode("x:y_z.1")
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        );
    }
}
