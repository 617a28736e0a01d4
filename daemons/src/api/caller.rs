//! Who is calling, as the handlers see it: the seam where authentication plugs in.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use jobsched::Job;

use super::ApiError;

/// What a caller may do (SPEC ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerRole {
    /// Everything.
    Admin,
    /// Only the jobs they own.
    User,
    /// Read jobs and history.
    ReadOnly,
}

/// The caller of a request (a request extension).
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user id.
    pub user: String,
    /// The role.
    pub role: CallerRole,
}

impl Caller {
    /// The owner whose jobs alone this caller sees, if restricted.
    pub fn owner_scope(&self) -> Option<&str> {
        (self.role == CallerRole::User).then_some(self.user.as_str())
    }

    /// Fails with 403 unless this caller may see `job`.
    pub fn may_see(&self, job: &Job) -> Result<(), ApiError> {
        match self.owner_scope() {
            Some(owner) if job.owner != owner => Err(ApiError::forbidden(format!(
                "job '{}' belongs to another user",
                job.job_id
            ))),
            _ => Ok(()),
        }
    }

    /// Fails with 403 unless this caller may change `job` (or, with `None`, create jobs and change the
    /// system).
    pub fn may_change(&self, job: Option<&Job>) -> Result<(), ApiError> {
        match (self.role, job) {
            (CallerRole::ReadOnly, _) => Err(ApiError::forbidden(format!(
                "user '{}' has read-only access",
                self.user
            ))),
            (CallerRole::User, Some(job)) => self.may_see(job),
            _ => Ok(()),
        }
    }

    /// Fails with 403 unless this caller may change executors and the system configuration.
    pub fn may_administer(&self) -> Result<(), ApiError> {
        if self.role == CallerRole::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "user '{}' is not an administrator",
                self.user
            )))
        }
    }
}

/// Until authentication is configured, every request is the administrator's.
pub async fn admin_caller(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(Caller {
        user: "admin".to_owned(),
        role: CallerRole::Admin,
    });
    next.run(req).await
}
