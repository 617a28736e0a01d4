//! The audit log: recording what a request did (or tried to do), and `GET /api/audit`.
//!
//! A change the store makes (jobs, executors, configuration, users, tokens, logout) stores its entry in
//! the same transaction; what fails or is refused, logins, and the engine's operations (run now, cancel)
//! are appended with their outcome. Each mutating request leaves exactly one entry.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use jobsched::{AuditEntry, AuditOutcome, AuditQuery, Page};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiQuery;
use super::jobs::Paging;
use super::{ApiError, Caller, ErrorBody, SharedState};

/// Most characters of an entry's message.
const MESSAGE_CHARS: usize = 1000;

/// How an error ends an audited action: refused by a permission (403), or failed (a wrong password, bad
/// input, a conflict, a store error).
fn outcome_of(e: &ApiError) -> AuditOutcome {
    if e.status == StatusCode::FORBIDDEN {
        AuditOutcome::Denied
    } else {
        AuditOutcome::Failed
    }
}

/// `entry` as the record of a failure.
pub fn failed(mut entry: AuditEntry, e: &ApiError) -> AuditEntry {
    entry.outcome = outcome_of(e);
    entry.message = e.message.chars().take(MESSAGE_CHARS).collect();
    entry
}

/// Appends entries on their own; a store that refuses is logged (the request's answer stands).
pub async fn append(s: &SharedState, entries: &[AuditEntry]) {
    if let Err(e) = s.scheduler.storage().append_audit(entries).await {
        tracing::error!(error = %e, action = %entries.first().map_or("", |x| x.action.as_str()),
            "the audit log did not take an entry");
    }
}

/// Records `entry` if `result` failed (a successful change stored it with itself).
pub async fn on_failure<T>(s: &SharedState, entry: &AuditEntry, result: &Result<T, ApiError>) {
    if let Err(e) = result {
        append(s, &[failed(entry.clone(), e)]).await;
    }
}

/// Records `entry` with the outcome of `result` (for what the store did not record itself).
pub async fn outcome<T>(s: &SharedState, entry: AuditEntry, result: &Result<T, ApiError>) {
    let entry = match result {
        Ok(_) => entry,
        Err(e) => failed(entry, e),
    };
    append(s, &[entry]).await;
}

/// Filters of `GET /api/audit`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Only this user's entries (name).
    #[param(nullable = false)]
    pub user: Option<String>,
    /// Only this action (`job.create`), or every action of a family (`job.`).
    #[param(nullable = false)]
    pub action: Option<String>,
    /// Only entries about this target (`job:nightly`, `user:alice`, `executor:e1`, `config`).
    #[param(nullable = false)]
    pub target: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    #[param(nullable = false)]
    pub from: Option<DateTime<Utc>>,
    /// Only entries before this time (RFC 3339).
    #[param(nullable = false)]
    pub to: Option<DateTime<Utc>>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page: Option<u32>,
    /// Items per page, 1–1000 (default 50).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page_size: Option<u32>,
}

/// The audit log, newest first (administrators).
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditFilter),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(f): ApiQuery<AuditFilter>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    caller.may_administer()?;
    let q = AuditQuery {
        user: f.user,
        action: f.action,
        target: f.target,
        from: f.from,
        to: f.to,
        page: Paging {
            page: f.page,
            page_size: f.page_size,
        }
        .request()?,
    };
    Ok(Json(s.scheduler.storage().list_audit(&q).await?))
}
