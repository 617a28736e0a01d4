//! Login tokens: HS256 JWTs (`jsonwebtoken`) whose claims name the user, their role, when the token was
//! issued and expires, and its id (what logout ends). The signing key is one per cluster.

use std::fmt;

use base64::Engine;
use jobsched::Role;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// The issuer every token of jobsched carries.
pub const ISSUER: &str = "jobsched";
/// Fewest bytes of a signing key.
pub const MIN_KEY_BYTES: usize = 32;

/// What a login token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The user's name.
    pub name: String,
    /// The user's role when the token was issued (the stored role applies; see `Auth::authenticate`).
    pub role: Role,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Issued at, in milliseconds (what a password change compares with: sessions issued before it end).
    pub iat_ms: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// The token's id (the session it stands for).
    pub jti: String,
    /// Always [`ISSUER`].
    pub iss: String,
}

impl Claims {
    /// When the token expires.
    pub fn expires(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(self.exp, 0).unwrap_or_else(chrono::Utc::now)
    }
}

/// The cluster's key for login tokens (and the CSRF tokens derived from them). `Debug` shows nothing of
/// it.
#[derive(Clone)]
pub struct SigningKey {
    raw: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// A key from its bytes (at least 32).
    pub fn new(raw: Vec<u8>) -> Result<SigningKey, String> {
        if raw.len() < MIN_KEY_BYTES {
            return Err(format!(
                "a signing key needs at least {MIN_KEY_BYTES} bytes, this one has {}",
                raw.len()
            ));
        }
        Ok(SigningKey {
            encoding: EncodingKey::from_secret(&raw),
            decoding: DecodingKey::from_secret(&raw),
            raw,
        })
    }

    /// A new random key (as stored: base64).
    pub fn generate_base64() -> String {
        let mut raw = [0u8; 32];
        super::random_bytes(&mut raw);
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    /// A key from its stored base64 form.
    pub fn from_base64(text: &str) -> Result<SigningKey, String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("the stored signing key is not base64: {e}"))?;
        SigningKey::new(raw)
    }

    /// The raw bytes (for HMACs derived from the key).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("signing a token failed: {e}")))
    }

    /// The claims of a token this cluster signed and that has not expired; otherwise a 401 that says
    /// what is wrong with it.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| {
                let (code, message) = match e.kind() {
                    ErrorKind::ExpiredSignature => (
                        "token_expired",
                        "the token has expired: log in again".to_owned(),
                    ),
                    ErrorKind::InvalidSignature => (
                        "token_invalid",
                        "the token's signature does not match: it was not issued by this cluster"
                            .to_owned(),
                    ),
                    ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => (
                        "token_invalid",
                        "the token is not signed with HS256, the only algorithm accepted"
                            .to_owned(),
                    ),
                    ErrorKind::InvalidIssuer => (
                        "token_invalid",
                        "the token was not issued by jobsched".to_owned(),
                    ),
                    ErrorKind::MissingRequiredClaim(c) => {
                        ("token_invalid", format!("the token lacks the '{c}' claim"))
                    }
                    _ => ("token_invalid", format!("the token is malformed: {e}")),
                };
                ApiError::unauthorized(code, message)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "u1".into(),
            name: "alice".into(),
            role: Role::User,
            iat: now,
            iat_ms: now * 1000,
            exp: now + exp,
            jti: "s1".into(),
            iss: ISSUER.into(),
        }
    }

    #[test]
    fn tokens_verify_only_with_their_key_and_before_expiry() {
        let key = SigningKey::from_base64(&SigningKey::generate_base64()).unwrap();
        let t = key.sign(&claims(60)).unwrap();
        assert_eq!(key.verify(&t).unwrap(), claims(60));
        let other = SigningKey::new(vec![7; 32]).unwrap();
        let e = other.verify(&t).unwrap_err();
        assert_eq!(e.code, "token_invalid");
        assert!(e.message.contains("signature"), "{}", e.message);
        let old = key.sign(&claims(-3600)).unwrap();
        assert_eq!(key.verify(&old).unwrap_err().code, "token_expired");
        assert!(format!("{key:?}").contains("***"));
        assert!(SigningKey::new(vec![1; 8]).is_err());
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let key = SigningKey::new(vec![3; 32]).unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let body = serde_json::to_string(&claims(60)).unwrap();
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&body));
        let e = key.verify(&none).unwrap_err();
        assert_eq!(e.code, "token_invalid");
        let e = key.verify("not a token").unwrap_err();
        assert!(e.message.contains("malformed"), "{}", e.message);
    }
}
