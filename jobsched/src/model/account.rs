//! Users, API tokens and the audit log: what the daemons' authentication keeps in storage (docs/REQUIREMENTS.md, R-8).
//!
//! The core defines the records and the storage contract ([`Accounts`](crate::storage::Accounts)); the
//! daemons decide how passwords are hashed and tokens are made. Secrets kept here are only ever hashes, and
//! `Debug` shows none of them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::query::PageRequest;
use crate::error::{Error, Result};

/// What a caller may do, from least to most (so roles compare: `ReadOnly < User < Admin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Views jobs, runs, logs, executors and status; changes nothing.
    ReadOnly,
    /// Everything a read-only caller may, plus creating jobs and running, changing and deleting their own.
    User,
    /// Everything, for every job, plus executors, the system configuration, users and the audit log.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 3] = [Role::ReadOnly, Role::User, Role::Admin];

    /// Its name (`read_only`, `user`, `admin`), as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read_only",
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`; the error lists the names.
    pub fn parse(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!("'{s}' is not a role (admin, user or read_only)"),
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits of account fields, so stores can size their columns.
pub mod account_limits {
    /// Longest user name and token name, in bytes (the same as a job's `owner`).
    pub const NAME_BYTES: usize = 64;
    /// Longest stored password hash or token hash, in bytes.
    pub const HASH_BYTES: usize = 255;
    /// Longest id (user, token, session), in bytes.
    pub const ID_BYTES: usize = 64;
}

/// Checks a user or token name: 1–64 bytes of ASCII letters, digits, `.`, `_`, `-` and `@`, starting with a
/// letter or digit.
pub fn check_account_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= account_limits::NAME_BYTES
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "'{name}' is not a name: 1–{} bytes of letters, digits, '.', '_', '-' and '@', starting \
                 with a letter or digit",
                account_limits::NAME_BYTES
            ),
        ))
    }
}

/// A user account. `name` is unique and never changes (jobs name their owner by it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Generated, stable id (what tokens name).
    pub user_id: String,
    /// Unique login name; the `owner` of the jobs the user creates.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// The password hash (a PHC string such as `$argon2id$…`); never sent or logged.
    pub password_hash: String,
    /// A disabled user cannot log in, and every token of theirs is refused.
    pub disabled: bool,
    /// Sessions (login tokens) issued before this time are refused: set on a password change, so a change
    /// ends every other session.
    pub sessions_since: DateTime<Utc>,
    /// When the user was created.
    pub create_time: DateTime<Utc>,
    /// When the user was last changed.
    pub update_time: DateTime<Utc>,
    /// Optimistic-concurrency version: 1 on creation, +1 on every update.
    pub version: u64,
}

impl User {
    /// An enabled administrator (a store keeps at least one).
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && !self.disabled
    }

    /// This update applied to `stored`, the user as stored: `Conflict` unless made against its version;
    /// the name and creation time stay, the version grows by one. A store then checks
    /// [`User::needs_another_admin`] and writes the result.
    pub fn updated_from(&self, stored: &User) -> Result<User> {
        if stored.version != self.version {
            return Err(Error::conflict(format!(
                "user '{}' is at version {}, the update was made against version {}",
                stored.name, stored.version, self.version
            )));
        }
        let mut u = self.clone();
        u.name.clone_from(&stored.name);
        u.create_time = stored.create_time;
        u.version = stored.version + 1;
        Ok(u)
    }

    /// True if turning `stored` into `self` (`None`: deleting it) removes an enabled administrator, so
    /// the store must find another one first (else [`last_admin`]).
    pub fn needs_another_admin(stored: &User, new: Option<&User>) -> bool {
        stored.is_active_admin() && !new.is_some_and(User::is_active_admin)
    }
}

/// The refusal of a change that would leave no enabled administrator (`name`: the one it would remove).
pub fn last_admin(name: &str) -> Error {
    Error::conflict(format!(
        "'{name}' is the last enabled administrator: make another one first"
    ))
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"***")
            .field("disabled", &self.disabled)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// An API token for scripts and CI: acts as its user, with at most its `role`. Only a hash of its secret
/// is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Generated id (part of the token a client sends, so the token is found without a scan).
    pub token_id: String,
    /// What the token is for.
    pub name: String,
    /// The user it acts as.
    pub user_id: String,
    /// Its role (never above its user's: the lower of the two applies).
    pub role: Role,
    /// Hash of the secret part (hex SHA-256 of a 256-bit random secret); never sent or logged.
    pub secret_hash: String,
    /// When it was made.
    pub create_time: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expire_time: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoke_time: Option<DateTime<Utc>>,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("token_id", &self.token_id)
            .field("name", &self.name)
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .field("secret_hash", &"***")
            .field("expire_time", &self.expire_time)
            .field("revoke_time", &self.revoke_time)
            .finish_non_exhaustive()
    }
}

/// How an audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It took effect.
    Success,
    /// The caller was not allowed to do it.
    Denied,
    /// It was allowed but failed (invalid input, a conflict, a wrong password, a store error).
    Failed,
}

impl AuditOutcome {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Failed => "failed",
        }
    }

    /// The outcome named `s`.
    pub fn parse(s: &str) -> Result<AuditOutcome> {
        [
            AuditOutcome::Success,
            AuditOutcome::Denied,
            AuditOutcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| {
            Error::invalid(
                "outcome",
                format!("'{s}' is not an outcome (success, denied, failed)"),
            )
        })
    }
}

/// One entry of the audit log: who did what to what, from where, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Assigned by the store (0 before it is stored); grows with time.
    pub id: i64,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// The user's name (for a failed login: the name given).
    pub user: String,
    /// The caller's role, if known.
    pub role: Option<Role>,
    /// The client's address.
    pub client: String,
    /// What was done: `job.create`, `job.update`, `executor.disable`, `auth.login`, …
    pub action: String,
    /// What it was done to: `job:<id>`, `task:<id>`, `executor:<id>`, `user:<name>`, `token:<id>`,
    /// `config`.
    pub target: String,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Why it failed or was denied (empty on success).
    pub message: String,
    /// What changed: for jobs `{"before": …, "after": …}` with secret values redacted (null when
    /// nothing is recorded).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub detail: serde_json::Value,
}

/// Filters of the audit log (all optional, combined with AND). Newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    /// Only entries of this user (name).
    pub user: Option<String>,
    /// Only this action (`job.create`), or a family of them (`job.`: every action starting so).
    pub action: Option<String>,
    /// Only entries about this target (`job:nightly`).
    pub target: Option<String>,
    /// Only entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub to: Option<DateTime<Utc>>,
    /// Which page.
    pub page: PageRequest,
}

impl AuditQuery {
    /// True if `e` matches the filters (what every store applies).
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.user.as_ref().is_none_or(|u| e.user == *u)
            && self.action.as_ref().is_none_or(|a| {
                if a.ends_with('.') {
                    e.action.starts_with(a.as_str())
                } else {
                    e.action == *a
                }
            })
            && self.target.as_ref().is_none_or(|t| e.target == *t)
            && self.from.is_none_or(|f| e.time >= f)
            && self.to.is_none_or(|t| e.time < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_by_privilege_and_parse_by_name() {
        assert!(Role::ReadOnly < Role::User && Role::User < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::json!(r.as_str())
            );
        }
        let e = Role::parse("root").unwrap_err().to_string();
        assert!(e.contains("root") && e.contains("read_only"), "{e}");
    }

    #[test]
    fn names_are_checked_and_hashes_never_shown() {
        check_account_name("name", "alice.smith@example").unwrap();
        for bad in ["", "-x", "a b", "ä", &"x".repeat(65)] {
            assert!(check_account_name("name", bad).is_err(), "{bad:?}");
        }
        let t = chrono::Utc::now();
        let u = User {
            user_id: "u1".into(),
            name: "alice".into(),
            role: Role::User,
            password_hash: "$argon2id$secret".into(),
            disabled: false,
            sessions_since: t,
            create_time: t,
            update_time: t,
            version: 1,
        };
        assert!(!format!("{u:?}").contains("argon2id"));
    }
}
