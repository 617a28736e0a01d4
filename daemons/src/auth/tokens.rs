//! API tokens as clients send them: `jst_<id>_<secret>`. The id finds the stored token without a scan;
//! only the SHA-256 of the 256-bit secret is stored, compared in constant time.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every API token starts with.
pub const PREFIX: &str = "jst_";

/// A new token: its id, the text to hand to the client once, and the hash to store.
pub struct NewToken {
    /// The token's id.
    pub id: String,
    /// `jst_<id>_<secret>`.
    pub text: String,
    /// Hex SHA-256 of the secret.
    pub hash: String,
}

/// Makes a new token.
pub fn generate() -> NewToken {
    let id = super::random_hex::<8>();
    let mut secret = [0u8; 32];
    super::random_bytes(&mut secret);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    NewToken {
        text: format!("{PREFIX}{id}_{secret}"),
        hash: hash(&secret),
        id,
    }
}

/// Hex SHA-256 of a secret.
pub fn hash(secret: &str) -> String {
    super::hex(&Sha256::digest(secret.as_bytes()))
}

/// The id and secret of a token's text, if it has the token's shape.
pub fn parse(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty();
    ok.then_some((id, secret))
}

/// True if `secret` hashes to `stored` (constant time).
pub fn matches(secret: &str, stored: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_match_their_hash_only() {
        let t = generate();
        let (id, secret) = parse(&t.text).unwrap();
        assert_eq!(id, t.id);
        assert!(matches(secret, &t.hash));
        assert!(!matches("other", &t.hash));
        assert!(!t.hash.contains(secret));
        for bad in ["jst_", "jst_xyz_abc", "Bearer", "jst_0123456789abcdef_"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
