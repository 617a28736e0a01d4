//! Znode names and paths under the root: `/groups/<group>/<member>`, `/elections/<name>/c-<seq>`,
//! `/locks/<name>/c-<seq>`, `/kv/<key>`.

/// A name as one znode name: ASCII letters, digits and `-_.:` stay, any other byte (a `/` included)
/// becomes `%XX`, as does a leading dot (so `.` and `..` cannot be names). Injective, so two names never
/// share a node.
pub(crate) fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let keep =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':') || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

/// The name `encode` made `name` from.
pub(crate) fn decode(node: &str) -> String {
    let bytes = node.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&node[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn group_dir(group: &str) -> String {
    format!("/groups/{}", encode(group))
}

pub(crate) fn election_dir(name: &str) -> String {
    format!("/elections/{}", encode(name))
}

pub(crate) fn lock_dir(name: &str) -> String {
    format!("/locks/{}", encode(name))
}

pub(crate) fn kv_path(key: &str) -> String {
    format!("/kv/{}", encode(key))
}

/// The sequence number of a sequential node `c-0000000042`.
pub(crate) fn sequence(node: &str) -> Option<i64> {
    node.rsplit('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_stay_one_node() {
        for n in ["exec-1", "a:b", "a/b", "..", ".x", "50%", "emoji🚀", ""] {
            let e = encode(n);
            assert!(
                !e.contains('/') && e != "." && e != ".." && !e.is_empty(),
                "{n} -> {e}"
            );
            if !n.is_empty() {
                assert_eq!(decode(&e), n);
            }
        }
        assert_ne!(encode("a/b"), encode("a%2Fb"));
        assert_eq!(sequence("c-0000000042"), Some(42));
    }
}
