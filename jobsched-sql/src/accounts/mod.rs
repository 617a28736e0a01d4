//! Users, API tokens, ended sessions and the audit log on either database: the rows, the statements, and
//! [`Accounts`] for [`SqlStore`]. Every write runs in one transaction with the audit entries it is given
//! (`insert_audit`), which the job, executor and setting writes use too.

use chrono::{DateTime, Utc};
use jobsched::storage::Accounts;
use jobsched::{ApiToken, AuditEntry, AuditQuery, Error, Page, PageRequest, Result, User};
use sqlx::{AssertSqlSafe, Executor, QueryBuilder};

mod rows;

use rows::{AUDIT_COLUMNS, TOKEN_COLUMNS, USER_COLUMNS, limit_of, push_audit_where};
pub use rows::{AuditRow, TokenRow, UserRow};

use crate::error::DbError;
use crate::filters::push_page;
use crate::rows::naive;
use crate::store::SqlStore;

sql_methods! {
    /// Appends audit entries (multi-row inserts) inside the caller's transaction.
    pub(crate) async fn insert_audit(
        &self,
        conn: &mut DB::Connection,
        entries: &[AuditEntry],
    ) -> Result<(), DbError> {
        for chunk in entries.chunks(self.limits.max_batch_rows.clamp(1, 500)) {
            let mut qb = QueryBuilder::<DB>::new(
                "INSERT INTO jobsched_audit (event_time, user_name, role, client, action, target, outcome, \
                 message, detail) ",
            );
            qb.push_values(chunk, |mut v, e| {
                v.push_bind(naive(e.time))
                    .push_bind(e.user.clone())
                    .push_bind(e.role.map(|r| r.as_str().to_owned()))
                    .push_bind(e.client.clone())
                    .push_bind(e.action.clone())
                    .push_bind(e.target.clone())
                    .push_bind(e.outcome.as_str().to_owned())
                    .push_bind(e.message.clone())
                    .push_bind(e.detail.to_string());
            });
            qb.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// One user by a column (`user_id` or `name`).
    async fn user_by<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        column: &'static str,
        value: &str,
        lock: bool,
    ) -> Result<Option<User>, DbError> {
        let row: Option<UserRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM jobsched_users WHERE {column} = ?{}",
            if lock { self.dialect.for_update } else { "" }
        )))
        .bind(value.to_owned())
        .fetch_optional(e)
        .await?;
        row.map(|r| r.into_user(self.dialect.backend)).transpose()
    }

    /// Inserts a user row (`replace`: or replaces the row of its `user_id`). A new row's name or id that
    /// is taken fails with `AlreadyExists` through the unique keys, so concurrent creates cannot both win.
    async fn write_user(
        &self,
        conn: &mut DB::Connection,
        u: &User,
        replace: bool,
    ) -> Result<(), DbError> {
        let mut qb = QueryBuilder::<DB>::new(format!("INSERT INTO jobsched_users ({USER_COLUMNS}) "));
        qb.push_values([u], |mut v, u| {
            v.push_bind(u.user_id.clone())
                .push_bind(u.name.clone())
                .push_bind(u.role.as_str().to_owned())
                .push_bind(u.password_hash.clone())
                .push_bind(u.disabled)
                .push_bind(naive(u.sessions_since))
                .push_bind(naive(u.create_time))
                .push_bind(naive(u.update_time))
                .push_bind(u.version as i64);
        });
        if replace {
            qb.push(self.dialect.upsert(
                "user_id",
                ["role", "password_hash", "disabled", "sessions_since", "update_time", "version"],
            ));
        }
        match qb.build().execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = DbError::from(e);
                if !replace && self.is_duplicate_on(&e, "") {
                    return Err(Error::AlreadyExists { kind: "user", id: u.name.clone() }.into());
                }
                Err(e)
            }
        }
    }

    async fn create_user_tx(
        &self,
        conn: &mut DB::Connection,
        user: &User,
        audit: &[AuditEntry],
    ) -> Result<User, DbError> {
        let mut u = user.clone();
        u.version = 1;
        self.write_user(conn, &u, false).await?;
        self.insert_audit(conn, audit).await?;
        Ok(u)
    }

    /// Fails with `Conflict` unless an enabled administrator other than `user_id` exists (locked until
    /// commit, so a concurrent change of that one waits or deadlocks and runs again).
    async fn another_admin(
        &self,
        conn: &mut DB::Connection,
        user_id: &str,
        name: &str,
    ) -> Result<(), DbError> {
        let others: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT user_id FROM jobsched_users WHERE role = 'admin' AND disabled = ? AND user_id <> ?{}",
            self.dialect.for_update
        )))
        .bind(false)
        .bind(user_id.to_owned())
        .fetch_all(&mut *conn)
        .await?;
        if others.is_empty() {
            return Err(jobsched::last_admin(name).into());
        }
        Ok(())
    }

    async fn update_user_tx(
        &self,
        conn: &mut DB::Connection,
        user: &User,
        audit: &[AuditEntry],
    ) -> Result<User, DbError> {
        let Some(current) = self.user_by(&mut *conn, "user_id", &user.user_id, true).await? else {
            return Err(Error::not_found("user", user.user_id.as_str()).into());
        };
        let u = user.updated_from(&current)?;
        if User::needs_another_admin(&current, Some(&u)) {
            self.another_admin(&mut *conn, &user.user_id, &current.name).await?;
        }
        self.write_user(conn, &u, true).await?;
        self.insert_audit(conn, audit).await?;
        Ok(u)
    }

    async fn delete_user_tx(
        &self,
        conn: &mut DB::Connection,
        user_id: &str,
        audit: &[AuditEntry],
    ) -> Result<(), DbError> {
        let Some(current) = self.user_by(&mut *conn, "user_id", user_id, true).await? else {
            return Err(Error::not_found("user", user_id).into());
        };
        if User::needs_another_admin(&current, None) {
            self.another_admin(&mut *conn, user_id, &current.name).await?;
        }
        // The row is locked and found above: the delete takes it.
        sqlx::query("DELETE FROM jobsched_users WHERE user_id = ?")
            .bind(user_id.to_owned())
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM jobsched_tokens WHERE user_id = ?")
            .bind(user_id.to_owned())
            .execute(&mut *conn)
            .await?;
        self.insert_audit(conn, audit).await
    }

    async fn token_by_id<'e, E: Executor<'e, Database = DB>>(
        &self,
        e: E,
        token_id: &str,
    ) -> Result<Option<ApiToken>, DbError> {
        let row: Option<TokenRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM jobsched_tokens WHERE token_id = ?"
        )))
        .bind(token_id.to_owned())
        .fetch_optional(e)
        .await?;
        row.map(|r| r.into_token(self.dialect.backend)).transpose()
    }

    async fn create_token_tx(
        &self,
        conn: &mut DB::Connection,
        t: &ApiToken,
        audit: &[AuditEntry],
    ) -> Result<ApiToken, DbError> {
        if self.user_by(&mut *conn, "user_id", &t.user_id, true).await?.is_none() {
            return Err(Error::not_found("user", t.user_id.as_str()).into());
        }
        if self.token_by_id(&mut *conn, &t.token_id).await?.is_some() {
            return Err(Error::AlreadyExists { kind: "token", id: t.token_id.clone() }.into());
        }
        let mut qb = QueryBuilder::<DB>::new(format!("INSERT INTO jobsched_tokens ({TOKEN_COLUMNS}) "));
        qb.push_values([t], |mut v, t| {
            v.push_bind(t.token_id.clone())
                .push_bind(t.name.clone())
                .push_bind(t.user_id.clone())
                .push_bind(t.role.as_str().to_owned())
                .push_bind(t.secret_hash.clone())
                .push_bind(naive(t.create_time))
                .push_bind(t.expire_time.map(naive))
                .push_bind(t.revoke_time.map(naive));
        });
        qb.build().execute(&mut *conn).await?;
        self.insert_audit(conn, audit).await?;
        Ok(t.clone())
    }

    async fn revoke_token_tx(
        &self,
        conn: &mut DB::Connection,
        token_id: &str,
        at: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<ApiToken, DbError> {
        sqlx::query("UPDATE jobsched_tokens SET revoke_time = ? WHERE token_id = ? AND revoke_time IS NULL")
            .bind(naive(at))
            .bind(token_id.to_owned())
            .execute(&mut *conn)
            .await?;
        let Some(t) = self.token_by_id(&mut *conn, token_id).await? else {
            return Err(Error::not_found("token", token_id).into());
        };
        self.insert_audit(conn, audit).await?;
        Ok(t)
    }

    async fn end_session_tx(
        &self,
        conn: &mut DB::Connection,
        session_id: &str,
        expire: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<(), DbError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO jobsched_ended_sessions (session_id, expire_time) VALUES (?, ?){}",
            self.dialect.upsert("session_id", ["expire_time"])
        )))
        .bind(session_id.to_owned())
        .bind(naive(expire))
        .execute(&mut *conn)
        .await?;
        self.insert_audit(conn, audit).await
    }
}

sql_impl! {
    [#[async_trait::async_trait] impl<DB> Accounts for SqlStore<DB>]
    async fn create_user(&self, user: &User, audit: &[AuditEntry]) -> Result<User> {
        let s = self.inner();
        in_tx!(self, "create_user", |c| s.create_user_tx(c, user, audit))
    }

    async fn update_user(&self, user: &User, audit: &[AuditEntry]) -> Result<User> {
        let s = self.inner();
        in_tx!(self, "update_user", |c| s.update_user_tx(c, user, audit))
    }

    async fn delete_user(&self, user_id: &str, audit: &[AuditEntry]) -> Result<()> {
        let s = self.inner();
        in_tx!(self, "delete_user", |c| s.delete_user_tx(c, user_id, audit))
    }

    async fn get_user(&self, user_id: &str) -> Result<User> {
        let s = self.inner();
        self.retry("get_user", || async {
            s.user_by(&s.read, "user_id", user_id, false)
                .await?
                .ok_or_else(|| Error::not_found("user", user_id).into())
        })
        .await
    }

    async fn find_user(&self, name: &str) -> Result<Option<User>> {
        let s = self.inner();
        self.retry("find_user", || s.user_by(&s.read, "name", name, false)).await
    }

    async fn list_users(&self, req: PageRequest) -> Result<Page<User>> {
        let s = self.inner();
        self.retry("list_users", || async {
            let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobsched_users")
                .fetch_one(&s.read)
                .await?;
            let mut qb = QueryBuilder::<DB>::new(format!(
                "SELECT {USER_COLUMNS} FROM jobsched_users ORDER BY name"
            ));
            push_page(&mut qb, req);
            let rows: Vec<UserRow> = qb.build_query_as().fetch_all(&s.read).await?;
            let items = rows
                .into_iter()
                .map(|r| r.into_user(s.dialect.backend))
                .collect::<Result<Vec<_>, DbError>>()?;
            Ok(crate::reads::page_of(items, total, req))
        })
        .await
    }

    async fn create_token(&self, token: &ApiToken, audit: &[AuditEntry]) -> Result<ApiToken> {
        let s = self.inner();
        in_tx!(self, "create_token", |c| s.create_token_tx(c, token, audit))
    }

    async fn get_token(&self, token_id: &str) -> Result<ApiToken> {
        let s = self.inner();
        self.retry("get_token", || async {
            s.token_by_id(&s.read, token_id)
                .await?
                .ok_or_else(|| Error::not_found("token", token_id).into())
        })
        .await
    }

    async fn list_tokens(&self, user_id: Option<&str>, req: PageRequest) -> Result<Page<ApiToken>> {
        let s = self.inner();
        self.retry("list_tokens", || async {
            let filter = |qb: &mut QueryBuilder<DB>| {
                if let Some(u) = user_id {
                    qb.push(" WHERE user_id = ").push_bind(u.to_owned());
                }
            };
            let mut count = crate::reads::capped_count("jobsched_tokens", filter);
            let (total,): (i64,) = count.build_query_as().fetch_one(&s.read).await?;
            let mut qb =
                QueryBuilder::<DB>::new(format!("SELECT {TOKEN_COLUMNS} FROM jobsched_tokens"));
            filter(&mut qb);
            qb.push(" ORDER BY create_time DESC, token_id DESC");
            push_page(&mut qb, req);
            let rows: Vec<TokenRow> = qb.build_query_as().fetch_all(&s.read).await?;
            let items = rows
                .into_iter()
                .map(|r| r.into_token(s.dialect.backend))
                .collect::<Result<Vec<_>, DbError>>()?;
            Ok(crate::reads::page_of(items, total, req))
        })
        .await
    }

    async fn revoke_token(
        &self,
        token_id: &str,
        at: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<ApiToken> {
        let s = self.inner();
        in_tx!(self, "revoke_token", |c| s.revoke_token_tx(c, token_id, at, audit))
    }

    async fn end_session(
        &self,
        session_id: &str,
        expire_time: DateTime<Utc>,
        audit: &[AuditEntry],
    ) -> Result<()> {
        let s = self.inner();
        in_tx!(self, "end_session", |c| {
            s.end_session_tx(c, session_id, expire_time, audit)
        })
    }

    async fn session_ended(&self, session_id: &str) -> Result<bool> {
        let s = self.inner();
        self.retry("session_ended", || async {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM jobsched_ended_sessions WHERE session_id = ?")
                    .bind(session_id.to_owned())
                    .fetch_one(&s.read)
                    .await?;
            Ok(n > 0)
        })
        .await
    }

    async fn purge_ended_sessions(&self, before: DateTime<Utc>) -> Result<u64> {
        let s = self.inner();
        self.retry("purge_ended_sessions", || async {
            let done = sqlx::query("DELETE FROM jobsched_ended_sessions WHERE expire_time < ?")
                .bind(naive(before))
                .execute(&s.write)
                .await?;
            Ok((s.rows_affected)(&done))
        })
        .await
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let s = self.inner();
        in_tx!(self, "append_audit", |c| s.insert_audit(c, entries))
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Page<AuditEntry>> {
        let s = self.inner();
        self.retry("list_audit", || async {
            let mut count = crate::reads::capped_count("jobsched_audit", |qb| push_audit_where(qb, q));
            let (total,): (i64,) = count.build_query_as().fetch_one(&s.read).await?;
            let mut qb =
                QueryBuilder::<DB>::new(format!("SELECT {AUDIT_COLUMNS} FROM jobsched_audit"));
            push_audit_where(&mut qb, q);
            qb.push(" ORDER BY id DESC");
            push_page(&mut qb, q.page);
            let rows: Vec<AuditRow> = qb.build_query_as().fetch_all(&s.read).await?;
            let items = rows
                .into_iter()
                .map(|r| r.into_entry(s.dialect.backend))
                .collect::<Result<Vec<_>, DbError>>()?;
            Ok(crate::reads::page_of(items, total, q.page))
        })
        .await
    }

    async fn purge_audit(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        let s = self.inner();
        self.retry("purge_audit", || async {
            // The ids are chosen in a derived table, a form both databases accept for `DELETE … LIMIT`.
            let done = sqlx::query(
                "DELETE FROM jobsched_audit WHERE id IN (SELECT id FROM (SELECT id FROM jobsched_audit \
                 WHERE event_time < ? ORDER BY id LIMIT ?) AS victims)",
            )
            .bind(naive(before))
            .bind(limit_of(limit))
            .execute(&s.write)
            .await?;
            Ok((s.rows_affected)(&done))
        })
        .await
    }
}
