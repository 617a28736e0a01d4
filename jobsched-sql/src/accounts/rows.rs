//! The rows of the account tables and their conversions, and the audit listing's filters.

use chrono::NaiveDateTime;
use jobsched::{ApiToken, AuditEntry, AuditOutcome, AuditQuery, Error, Result, Role, User};
use sqlx::QueryBuilder;

use crate::error::DbError;
use crate::rows::{naive, utc};

/// A `jobsched_users` row.
#[derive(Debug, Clone, sqlx::FromRow)]
#[allow(missing_docs)] // Each field is the column of the same name.
pub struct UserRow {
    pub user_id: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub disabled: bool,
    pub sessions_since: NaiveDateTime,
    pub create_time: NaiveDateTime,
    pub update_time: NaiveDateTime,
    pub version: i64,
}

pub(super) const USER_COLUMNS: &str = "user_id, name, role, password_hash, disabled, sessions_since, create_time, \
     update_time, version";

fn stored<T>(backend: &'static str, what: &str, r: Result<T>) -> Result<T, DbError> {
    r.map_err(|e| Error::backend(backend, format!("stored {what} is invalid: {e}")).into())
}

impl UserRow {
    pub(super) fn into_user(self, backend: &'static str) -> Result<User, DbError> {
        Ok(User {
            role: stored(backend, "user role", Role::parse(&self.role))?,
            user_id: self.user_id,
            name: self.name,
            password_hash: self.password_hash,
            disabled: self.disabled,
            sessions_since: utc(self.sessions_since),
            create_time: utc(self.create_time),
            update_time: utc(self.update_time),
            version: self.version.max(0) as u64,
        })
    }
}

/// A `jobsched_tokens` row.
#[derive(Debug, Clone, sqlx::FromRow)]
#[allow(missing_docs)] // Each field is the column of the same name.
pub struct TokenRow {
    pub token_id: String,
    pub name: String,
    pub user_id: String,
    pub role: String,
    pub secret_hash: String,
    pub create_time: NaiveDateTime,
    pub expire_time: Option<NaiveDateTime>,
    pub revoke_time: Option<NaiveDateTime>,
}

pub(super) const TOKEN_COLUMNS: &str =
    "token_id, name, user_id, role, secret_hash, create_time, expire_time, revoke_time";

impl TokenRow {
    pub(super) fn into_token(self, backend: &'static str) -> Result<ApiToken, DbError> {
        Ok(ApiToken {
            role: stored(backend, "token role", Role::parse(&self.role))?,
            token_id: self.token_id,
            name: self.name,
            user_id: self.user_id,
            secret_hash: self.secret_hash,
            create_time: utc(self.create_time),
            expire_time: self.expire_time.map(utc),
            revoke_time: self.revoke_time.map(utc),
        })
    }
}

/// A `jobsched_audit` row.
#[derive(Debug, Clone, sqlx::FromRow)]
#[allow(missing_docs)] // Each field is the column of the same name.
pub struct AuditRow {
    pub id: i64,
    pub event_time: NaiveDateTime,
    pub user_name: String,
    pub role: Option<String>,
    pub client: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub message: String,
    pub detail: String,
}

pub(super) const AUDIT_COLUMNS: &str =
    "id, event_time, user_name, role, client, action, target, outcome, message, detail";

impl AuditRow {
    pub(super) fn into_entry(self, backend: &'static str) -> Result<AuditEntry, DbError> {
        Ok(AuditEntry {
            id: self.id,
            time: utc(self.event_time),
            role: match self.role {
                Some(r) => Some(stored(backend, "audit role", Role::parse(&r))?),
                None => None,
            },
            user: self.user_name,
            client: self.client,
            action: self.action,
            target: self.target,
            outcome: stored(backend, "audit outcome", AuditOutcome::parse(&self.outcome))?,
            message: self.message,
            detail: stored(
                backend,
                "audit detail",
                serde_json::from_str(&self.detail)
                    .map_err(|e| Error::backend(backend, e.to_string())),
            )?,
        })
    }
}

pub(super) fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Appends ` WHERE …` for an audit listing.
pub(super) fn push_audit_where<DB>(qb: &mut QueryBuilder<DB>, q: &AuditQuery)
where
    DB: sqlx::Database,
    String: crate::binds::Bind<DB>,
    i64: crate::binds::Bind<DB>,
    NaiveDateTime: crate::binds::Bind<DB>,
{
    qb.push(" WHERE 1 = 1");
    if let Some(u) = &q.user {
        qb.push(" AND user_name = ").push_bind(u.clone());
    }
    match &q.action {
        // A family (`job.`): compared by prefix, so no LIKE wildcard in a name can widen it.
        Some(a) if a.ends_with('.') => {
            qb.push(" AND SUBSTR(action, 1, ")
                .push_bind(a.chars().count() as i64)
                .push(") = ")
                .push_bind(a.clone());
        }
        Some(a) => {
            qb.push(" AND action = ").push_bind(a.clone());
        }
        None => {}
    }
    if let Some(t) = &q.target {
        qb.push(" AND target = ").push_bind(t.clone());
    }
    if let Some(f) = q.from {
        qb.push(" AND event_time >= ").push_bind(naive(f));
    }
    if let Some(t) = q.to {
        qb.push(" AND event_time < ").push_bind(naive(t));
    }
}
