//! [`Accounts`] in memory: users, tokens, ended sessions and the audit log, under the store's one lock (so
//! an audit entry is stored atomically with the change it records).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStorage, page};
use crate::error::{Error, Result};
use crate::model::{ApiToken, AuditEntry, AuditQuery, Page, PageRequest, User, last_admin};
use crate::storage::Accounts;

/// What the in-memory store keeps for [`Accounts`].
#[derive(Debug, Default)]
pub(super) struct AccountData {
    users: HashMap<String, User>,
    /// User ids by name (names are unique).
    names: BTreeMap<String, String>,
    tokens: HashMap<String, ApiToken>,
    /// Ended sessions and when their tokens expire.
    ended: HashMap<String, DateTime<Utc>>,
    /// The audit log by id (ids grow).
    audit: BTreeMap<i64, AuditEntry>,
    next_audit_id: i64,
}

impl AccountData {
    /// Appends entries with the next ids.
    pub(super) fn append_audit(&mut self, entries: &[AuditEntry]) {
        for e in entries {
            self.next_audit_id += 1;
            let mut e = e.clone();
            e.id = self.next_audit_id;
            self.audit.insert(e.id, e);
        }
    }

    fn user(&self, user_id: &str) -> Result<&User> {
        self.users
            .get(user_id)
            .ok_or_else(|| Error::not_found("user", user_id))
    }

    /// Fails unless an enabled administrator other than `user_id` exists.
    fn another_admin(&self, user_id: &str, name: &str) -> Result<()> {
        if self
            .users
            .values()
            .any(|u| u.user_id != user_id && u.is_active_admin())
        {
            Ok(())
        } else {
            Err(last_admin(name))
        }
    }
}

#[async_trait]
impl Accounts for MemoryStorage {
    async fn create_user(&self, user: &User, audit: &[AuditEntry]) -> Result<User> {
        let mut g = self.lock();
        let a = &mut g.accounts;
        if a.names.contains_key(&user.name) || a.users.contains_key(&user.user_id) {
            return Err(Error::AlreadyExists {
                kind: "user",
                id: user.name.clone(),
            });
        }
        let mut u = user.clone();
        u.version = 1;
        a.names.insert(u.name.clone(), u.user_id.clone());
        a.users.insert(u.user_id.clone(), u.clone());
        a.append_audit(audit);
        Ok(u)
    }

    async fn update_user(&self, user: &User, audit: &[AuditEntry]) -> Result<User> {
        let mut g = self.lock();
        let a = &mut g.accounts;
        let stored = a.user(&user.user_id)?;
        let u = user.updated_from(stored)?;
        if User::needs_another_admin(stored, Some(&u)) {
            a.another_admin(&user.user_id, &stored.name)?;
        }
        a.users.insert(u.user_id.clone(), u.clone());
        a.append_audit(audit);
        Ok(u)
    }

    async fn delete_user(&self, user_id: &str, audit: &[AuditEntry]) -> Result<()> {
        let mut g = self.lock();
        let a = &mut g.accounts;
        let stored = a.user(user_id)?;
        let name = stored.name.clone();
        if User::needs_another_admin(stored, None) {
            a.another_admin(user_id, &name)?;
        }
        a.users.remove(user_id);
        a.names.remove(&name);
        a.tokens.retain(|_, t| t.user_id != user_id);
        a.append_audit(audit);
        Ok(())
    }

    async fn get_user(&self, user_id: &str) -> Result<User> {
        self.lock().accounts.user(user_id).cloned()
    }

    async fn find_user(&self, name: &str) -> Result<Option<User>> {
        let g = self.lock();
        Ok(g.accounts
            .names
            .get(name)
            .and_then(|id| g.accounts.users.get(id))
            .cloned())
    }

    async fn list_users(&self, req: PageRequest) -> Result<Page<User>> {
        let g = self.lock();
        let a = &g.accounts;
        Ok(page(
            a.names.values().filter_map(|id| a.users.get(id)).cloned(),
            req,
        ))
    }

    async fn create_token(&self, token: &ApiToken, audit: &[AuditEntry]) -> Result<ApiToken> {
        let mut g = self.lock();
        let a = &mut g.accounts;
        a.user(&token.user_id)?;
        if a.tokens.contains_key(&token.token_id) {
            return Err(Error::AlreadyExists {
                kind: "token",
                id: token.token_id.clone(),
            });
        }
        a.tokens.insert(token.token_id.clone(), token.clone());
        a.append_audit(audit);
        Ok(token.clone())
    }

    async fn get_token(&self, token_id: &str) -> Result<ApiToken> {
        self.lock()
            .accounts
            .tokens
            .get(token_id)
            .cloned()
            .ok_or_else(|| Error::not_found("token", token_id))
    }

    async fn list_tokens(&self, user_id: Option<&str>, req: PageRequest) -> Result<Page<ApiToken>> {
        let g = self.lock();
        let mut v: Vec<&ApiToken> = g
            .accounts
            .tokens
            .values()
            .filter(|t| user_id.is_none_or(|u| t.user_id == u))
            .collect();
        v.sort_by(|a, b| (b.create_time, &b.token_id).cmp(&(a.create_time, &a.token_id)));
        Ok(page(v.into_iter().cloned(), req))
    }

    async fn revoke_token(
        &self,
        token_id: &str,
        at: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<ApiToken> {
        let mut g = self.lock();
        let a = &mut g.accounts;
        let t = a
            .tokens
            .get_mut(token_id)
            .ok_or_else(|| Error::not_found("token", token_id))?;
        t.revoke_time.get_or_insert(at);
        let out = t.clone();
        a.append_audit(audit);
        Ok(out)
    }

    async fn end_session(
        &self,
        session_id: &str,
        expire_time: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<()> {
        let mut g = self.lock();
        let a = &mut g.accounts;
        a.ended.insert(session_id.to_owned(), expire_time);
        a.append_audit(audit);
        Ok(())
    }

    async fn session_ended(&self, session_id: &str) -> Result<bool> {
        Ok(self.lock().accounts.ended.contains_key(session_id))
    }

    async fn purge_ended_sessions(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut g = self.lock();
        let n = g.accounts.ended.len();
        g.accounts.ended.retain(|_, exp| *exp >= before);
        Ok((n - g.accounts.ended.len()) as u64)
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<()> {
        self.lock().accounts.append_audit(entries);
        Ok(())
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Page<AuditEntry>> {
        let g = self.lock();
        Ok(page(
            g.accounts
                .audit
                .values()
                .rev()
                .filter(|e| q.matches(e))
                .cloned(),
            q.page,
        ))
    }

    async fn purge_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        let mut g = self.lock();
        let victims: Vec<i64> = g
            .accounts
            .audit
            .values()
            .filter(|e| e.time < before)
            .take(limit)
            .map(|e| e.id)
            .collect();
        for id in &victims {
            g.accounts.audit.remove(id);
        }
        Ok(victims.len() as u64)
    }
}
