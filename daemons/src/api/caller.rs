//! Who is calling, as the handlers see it. The guard middleware ([`crate::auth::guard`]) puts a [`Caller`]
//! into every authenticated request; handlers ask it what the request may see and change, and build the
//! request's audit entries from it.

use chrono::{DateTime, Utc};
use jobsched::{AuditEntry, AuditOutcome, Job, Role};

use super::ApiError;

/// How the caller authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A login token (JWT), from the `Authorization` header or the UI's session cookie.
    Session {
        /// The token's id (what logout ends).
        id: String,
        /// When it expires.
        expires: DateTime<Utc>,
        /// It came in the session cookie (so state-changing requests need the CSRF token).
        cookie: bool,
    },
    /// An API token.
    ApiToken {
        /// The token's id.
        id: String,
    },
}

/// The caller of a request (a request extension).
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user's id.
    pub user_id: String,
    /// The user's name (what jobs name as their `owner`).
    pub user: String,
    /// What the caller may do: the user's role (for an API token, the lower of its role and the user's).
    pub role: Role,
    /// The client's address.
    pub client: String,
    /// How the caller authenticated.
    pub credential: Credential,
}

/// The client address of a request, authenticated or not (a request extension).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub std::net::IpAddr);

impl Caller {
    /// The owner whose jobs alone this caller sees, if restricted.
    pub fn owner_scope(&self) -> Option<&str> {
        (self.role == Role::User).then_some(self.user.as_str())
    }

    /// Fails with 404 unless this caller may see `job`: another user's job does not exist for a `user`
    /// (so its id tells nothing about it).
    pub fn may_see(&self, job: &Job) -> Result<(), ApiError> {
        match self.owner_scope() {
            Some(owner) if job.owner != owner => {
                Err(jobsched::Error::not_found("job", job.job_id.as_str()).into())
            }
            _ => Ok(()),
        }
    }

    /// Fails with 403 for a read-only caller.
    pub fn may_write(&self) -> Result<(), ApiError> {
        if self.role == Role::ReadOnly {
            Err(ApiError::forbidden(format!(
                "user '{}' has read-only access",
                self.user
            )))
        } else {
            Ok(())
        }
    }

    /// Fails unless this caller may change `job` (or, with `None`, create jobs): 403 for read-only
    /// callers, 404 for another user's job.
    pub fn may_change(&self, job: Option<&Job>) -> Result<(), ApiError> {
        self.may_write()?;
        match job {
            Some(job) => self.may_see(job),
            None => Ok(()),
        }
    }

    /// Fails with 403 unless this caller is an administrator.
    pub fn may_administer(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "user '{}' is not an administrator",
                self.user
            )))
        }
    }

    /// A successful audit entry of `action` on `target` by this caller, now.
    pub fn audit(&self, action: &str, target: impl Into<String>) -> AuditEntry {
        AuditEntry {
            id: 0,
            time: Utc::now(),
            user: self.user.clone(),
            role: Some(self.role),
            client: self.client.clone(),
            action: action.to_owned(),
            // A target holds an id from the request; the log keeps 255 characters of it.
            target: target.into().chars().take(255).collect(),
            outcome: AuditOutcome::Success,
            message: String::new(),
            detail: serde_json::Value::Null,
        }
    }
}
