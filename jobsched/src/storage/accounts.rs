//! [`Accounts`]: users, API tokens, ended sessions and the audit log, kept by the same store as the jobs so
//! that every scheduler of a cluster sees the same users and an audit entry commits with its change.
//!
//! Every method has a default that fails with [`Error::Unsupported`]: a store that keeps no accounts says
//! so, and the daemons refuse to start on it. [`MemoryStorage`](super::MemoryStorage) and the SQL stores
//! implement all of them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::model::{ApiToken, AuditEntry, AuditQuery, Page, PageRequest, User};

fn unsupported<T>(operation: &'static str) -> Result<T> {
    Err(Error::Unsupported {
        operation,
        backend: "this store",
    })
}

/// Users, API tokens, ended sessions and the audit log.
///
/// Every write is atomic with the audit entries passed to it: the entries are stored in the same
/// transaction, so no change exists without its record (and no record of a change that rolled back).
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Stores a new user (version 1) with `audit`; `AlreadyExists` if the name is taken.
    async fn create_user(&self, user: &User, audit: &[AuditEntry]) -> Result<User> {
        let _ = (user, audit);
        unsupported("create_user")
    }

    /// Replaces a user (every field but `user_id`, `name` and `create_time`) if its stored version equals
    /// `user.version` (else `Conflict`; `NotFound` if absent), with `audit`. Returns it as stored
    /// (version + 1). **The last enabled administrator stays one**: a change that would leave no enabled
    /// admin fails with `Conflict`, decided inside the transaction (two admins demoting each other at
    /// once cannot both succeed).
    async fn update_user(&self, user: &User, audit: &[AuditEntry]) -> Result<User> {
        let _ = (user, audit);
        unsupported("update_user")
    }

    /// Deletes a user and every token of theirs, with `audit`; `NotFound` if absent, `Conflict` if they
    /// are the last enabled administrator.
    async fn delete_user(&self, user_id: &str, audit: &[AuditEntry]) -> Result<()> {
        let _ = (user_id, audit);
        unsupported("delete_user")
    }

    /// One user by id; `NotFound` if absent.
    async fn get_user(&self, user_id: &str) -> Result<User> {
        let _ = user_id;
        unsupported("get_user")
    }

    /// The user with this name, if any.
    async fn find_user(&self, name: &str) -> Result<Option<User>> {
        let _ = name;
        unsupported("find_user")
    }

    /// A page of users, by name.
    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        let _ = page;
        unsupported("list_users")
    }

    /// Stores a new API token with `audit`; `AlreadyExists` if its id is taken, `NotFound` if its user is
    /// absent.
    async fn create_token(&self, token: &ApiToken, audit: &[AuditEntry]) -> Result<ApiToken> {
        let _ = (token, audit);
        unsupported("create_token")
    }

    /// One token by id; `NotFound` if absent.
    async fn get_token(&self, token_id: &str) -> Result<ApiToken> {
        let _ = token_id;
        unsupported("get_token")
    }

    /// A page of tokens (of one user, or of all), newest first.
    async fn list_tokens(
        &self,
        user_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<ApiToken>> {
        let _ = (user_id, page);
        unsupported("list_tokens")
    }

    /// Marks a token revoked at `at` (idempotent: a revoked token keeps its first revocation time), with
    /// `audit`; returns it. `NotFound` if absent.
    async fn revoke_token(
        &self,
        token_id: &str,
        at: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<ApiToken> {
        let _ = (token_id, at, audit);
        unsupported("revoke_token")
    }

    /// Ends a login session (the id of its token) until `expire_time`, after which the token is refused
    /// anyway; idempotent. With `audit`.
    async fn end_session(
        &self,
        session_id: &str,
        expire_time: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<()> {
        let _ = (session_id, expire_time, audit);
        unsupported("end_session")
    }

    /// True if the session was ended.
    async fn session_ended(&self, session_id: &str) -> Result<bool> {
        let _ = session_id;
        unsupported("session_ended")
    }

    /// Forgets ended sessions whose tokens expired before `before`; returns how many.
    async fn purge_ended_sessions(&self, before: DateTime<Utc>) -> Result<u64> {
        let _ = before;
        unsupported("purge_ended_sessions")
    }

    /// Appends audit entries on their own (for what changes nothing in the store: logins, refusals, failed
    /// attempts, requests handed to the engine). The store assigns ids in order.
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<()> {
        let _ = entries;
        unsupported("append_audit")
    }

    /// A page of audit entries matching the query, newest first, with the total.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry>> {
        let _ = query;
        unsupported("list_audit")
    }

    /// Deletes up to `limit` audit entries older than `before`; returns how many.
    async fn purge_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        let _ = (before, limit);
        unsupported("purge_audit")
    }
}
