//! Passwords: Argon2id hashes (the `argon2` crate's defaults: 19 MiB, 2 passes, PHC strings), the policy
//! for new passwords, and generated ones. Hashing is slow on purpose, so it runs on the blocking pool.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::api::ApiError;

/// Fewest characters of a new password.
pub const MIN_CHARS: usize = 12;
/// Most bytes of any password (hashing a megabyte would be a cheap way to load the server).
pub const MAX_BYTES: usize = 1024;

/// Checks the length of a password given to log in (a 1 MB password is refused before any hashing).
pub fn check_length(field: &str, password: &str) -> Result<(), ApiError> {
    if password.len() > MAX_BYTES {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_BYTES} bytes, got {}", password.len()),
        ));
    }
    Ok(())
}

/// Checks a new password: 12 to 1024 bytes, not only whitespace.
pub fn check_new(field: &str, password: &str) -> Result<(), ApiError> {
    check_length(field, password)?;
    let n = password.chars().count();
    if n < MIN_CHARS || password.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("must be at least {MIN_CHARS} characters, got {n}"),
        ));
    }
    Ok(())
}

/// Hashes at once at most: each takes 19 MiB and a core for tens of milliseconds, so a flood of logins
/// waits here instead of exhausting memory.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// The Argon2id hash of `password` (a PHC string with its salt).
pub async fn hash(password: String) -> Result<String, ApiError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::internal(format!("hashing the password failed: {e}")))?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(format!("hashing the password failed: {e}")))
    })
    .await
    .map_err(|e| ApiError::internal(format!("hashing the password failed: {e}")))?
}

/// True if `password` matches `hash`. With no hash (an unknown user) it does the same work against a
/// fixed hash and answers false, so the answer's timing does not tell whether the user exists.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    let Ok(_permit) = HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY.to_owned());
        let ok = PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        known && ok
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password nobody knows, with the default parameters.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8n5o9Ne+8Ok4MFhaoQuJQxYTCAVt5/yNiSGvZh1tWGE";

/// A new random password: 24 characters of letters and digits without look-alikes (about 140 bits).
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    // Bytes at or above the largest multiple of the alphabet's size are dropped, so every character is
    // equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        let mut bytes = [0u8; 32];
        super::random_bytes(&mut bytes);
        for b in bytes {
            if usize::from(b) < limit && out.len() < 24 {
                out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_policy_names_the_field() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(h)).await);
        assert!(!verify("anything".into(), None).await);
        let e = check_new("password", "short").unwrap_err();
        assert!(e.message.contains("at least 12"), "{}", e.message);
        let e = check_length("password", &"x".repeat(1 << 20)).unwrap_err();
        assert!(e.message.contains("at most 1024 bytes"), "{}", e.message);
        let p = generate();
        assert_eq!(p.len(), 24);
        assert_ne!(p, generate());
    }

    #[test]
    fn the_dummy_hash_parses() {
        PasswordHash::new(DUMMY).unwrap();
    }
}
