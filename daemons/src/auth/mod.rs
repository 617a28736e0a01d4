//! Authentication (docs/REQUIREMENTS.md, R-8): who a request's caller is, from a login token (JWT, in the
//! `Authorization: Bearer` header or the UI's session cookie) or an API token, checked against the store
//! on every request so that a disabled user, an ended session or a revoked token stops working at once.
//!
//! * [`password`]: Argon2id hashes and the password policy.
//! * [`jwt`]: login tokens and the cluster's signing key.
//! * [`tokens`]: API tokens (`jst_…`), stored as hashes.
//! * [`origin`]: the client's address, `Host` and `Origin` checks.
//! * [`limits`]: rate limits and failed-login limits.
//! * [`guard`]: the one middleware that applies all of it to every request.
//! * [`bootstrap`]: the signing key and the first administrator.

pub mod bootstrap;
pub mod guard;
pub mod jwt;
pub mod limits;
pub mod origin;
pub mod password;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{KeyInit, Mac};
use jobsched::storage::Storage;
use jobsched::{Error, Role, User};

use crate::api::{ApiError, Caller, Credential};
use jwt::{Claims, SigningKey};

/// Fills `buf` from the operating system's random source (keys, token secrets, passwords, salts).
pub fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random source is readable");
}

/// `bytes` as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// `N` random bytes as hex.
pub fn random_hex<const N: usize>() -> String {
    let mut buf = [0u8; N];
    random_bytes(&mut buf);
    hex(&buf)
}

/// The name of the UI's session cookie (the login token; `HttpOnly`, `SameSite=Strict`).
pub const SESSION_COOKIE: &str = "jobsched_session";
/// The name of the cookie that carries the CSRF token for the UI's scripts (readable by them).
pub const CSRF_COOKIE: &str = "jobsched_csrf";
/// The header a cookie-authenticated state-changing request repeats the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Longest credential accepted (a token of this server is a few hundred bytes).
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Settings of authentication.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// How long a login token is valid.
    pub session_ttl: TimeDelta,
    /// Addresses of proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// The names the server answers to.
    pub hosts: origin::Hosts,
    /// Origins besides the server's own that may make state-changing requests.
    pub allowed_origins: Vec<String>,
    /// Served over TLS (the own origin is `https://…`).
    pub tls: bool,
    /// Session cookies get `Secure` (served over TLS, or behind an `https` public URL).
    pub secure_cookies: bool,
}

/// What authenticates requests: the store (users, tokens, ended sessions), the signing key and the
/// limits.
pub struct Auth {
    storage: Arc<dyn Storage>,
    key: SigningKey,
    /// The settings.
    pub settings: AuthSettings,
    /// The rate limits.
    pub limits: limits::Limits,
}

/// A new login session: the token and what it says. `Debug` leaves the token out.
pub struct Session {
    /// The signed token.
    pub token: String,
    /// Its claims.
    pub claims: Claims,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"***")
            .field("claims", &self.claims)
            .finish()
    }
}

impl Auth {
    /// Authentication on `storage` with `key`.
    pub fn new(
        storage: Arc<dyn Storage>,
        key: SigningKey,
        settings: AuthSettings,
        limits: limits::Limits,
    ) -> Auth {
        Auth {
            storage,
            key,
            settings,
            limits,
        }
    }

    /// The store.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// `https` under TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.settings.tls { "https" } else { "http" }
    }

    /// A new login token for `user`.
    pub fn issue(&self, user: &User, now: DateTime<Utc>) -> Result<Session, ApiError> {
        let claims = Claims {
            sub: user.user_id.clone(),
            name: user.name.clone(),
            role: user.role,
            iat: now.timestamp(),
            iat_ms: now.timestamp_millis(),
            exp: (now + self.settings.session_ttl).timestamp(),
            jti: random_hex::<16>(),
            iss: jwt::ISSUER.to_owned(),
        };
        Ok(Session {
            token: self.key.sign(&claims)?,
            claims,
        })
    }

    /// The CSRF token of a session: an HMAC of its id under the signing key, so it needs no storage and
    /// is worthless without the session.
    pub fn csrf_token(&self, session_id: &str) -> String {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(self.key.raw()).expect("any key size");
        mac.update(b"jobsched-csrf:");
        mac.update(session_id.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The caller a credential stands for, checked against the store: 401 with what is wrong otherwise.
    pub async fn authenticate(
        &self,
        credential: &str,
        client: IpAddr,
        via_cookie: bool,
    ) -> Result<Caller, ApiError> {
        if credential.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::unauthorized(
                "token_invalid",
                format!(
                    "the token is {} bytes, longer than any token this server issues",
                    credential.len()
                ),
            ));
        }
        if credential.starts_with(tokens::PREFIX) {
            if via_cookie {
                return Err(ApiError::unauthorized(
                    "token_invalid",
                    "an API token goes in the Authorization header",
                ));
            }
            return self.api_token(credential, client).await;
        }
        let claims = self.key.verify(credential)?;
        let user = self.user(&claims.sub).await?;
        if claims.iat_ms < user.sessions_since.timestamp_millis() {
            return Err(ApiError::unauthorized(
                "token_revoked",
                "this session ended when the password was changed: log in again",
            ));
        }
        if self.storage.session_ended(&claims.jti).await? {
            return Err(ApiError::unauthorized(
                "token_revoked",
                "this session was logged out: log in again",
            ));
        }
        Ok(Caller {
            user_id: user.user_id,
            user: user.name,
            // The stored role applies at once: a demoted user's old tokens lose the rights too.
            role: user.role,
            client: client.to_string(),
            credential: Credential::Session {
                expires: claims.expires(),
                id: claims.jti,
                cookie: via_cookie,
            },
        })
    }

    async fn api_token(&self, text: &str, client: IpAddr) -> Result<Caller, ApiError> {
        let invalid = || ApiError::unauthorized("token_invalid", "the API token is not valid");
        let (id, secret) = tokens::parse(text).ok_or_else(invalid)?;
        let token = match self.storage.get_token(id).await {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => return Err(invalid()),
            Err(e) => return Err(e.into()),
        };
        if !tokens::matches(secret, &token.secret_hash) {
            return Err(invalid());
        }
        if token.revoke_time.is_some() {
            return Err(ApiError::unauthorized(
                "token_revoked",
                format!("the API token '{}' was revoked", token.name),
            ));
        }
        if token.expire_time.is_some_and(|t| t <= Utc::now()) {
            return Err(ApiError::unauthorized(
                "token_expired",
                format!("the API token '{}' has expired: make a new one", token.name),
            ));
        }
        let user = self.user(&token.user_id).await?;
        Ok(Caller {
            role: token.role.min(user.role),
            user_id: user.user_id,
            user: user.name,
            client: client.to_string(),
            credential: Credential::ApiToken { id: token.token_id },
        })
    }

    /// The user a credential names, if they still exist and are enabled.
    async fn user(&self, user_id: &str) -> Result<User, ApiError> {
        let user = match self.storage.get_user(user_id).await {
            Ok(u) => u,
            Err(Error::NotFound { .. }) => {
                return Err(ApiError::unauthorized(
                    "token_invalid",
                    "the token's user no longer exists",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if user.disabled {
            return Err(ApiError::unauthorized(
                "user_disabled",
                format!("user '{}' is disabled", user.name),
            ));
        }
        Ok(user)
    }

    /// Fails with 403 unless `role` is at most the caller's: nobody hands out more than they have.
    pub fn check_grant(caller: &Caller, role: Role) -> Result<(), ApiError> {
        if role > caller.role {
            return Err(ApiError::forbidden(format!(
                "a '{}' cannot grant the role '{role}'",
                caller.role
            )));
        }
        Ok(())
    }
}
