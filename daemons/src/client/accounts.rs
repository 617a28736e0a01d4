//! The client's account commands: `jobsched users …`, `jobsched tokens …`, `jobsched audit`.

use jobsched::{AuditEntry, Page};
use reqwest::Method;
use serde_json::{Value, json};

use super::session::{TokenStore, read_password};
use super::{Client, enc, page_query, render};
use crate::api::{LoginAnswer, NewTokenView, TokenView, UserView};
use crate::cli::{AuditArgs, TokensCommand, UsersCommand};
use crate::error::DaemonError;

impl Client {
    /// `jobsched users …`
    pub async fn users(&self, cmd: UsersCommand) -> Result<(), DaemonError> {
        match cmd {
            UsersCommand::List { page } => {
                let p: Page<UserView> = self
                    .get(&format!("/api/users{}", page_query(&[], &page)))
                    .await?;
                self.show(&p, |p| render::users(&p.items));
            }
            UsersCommand::Get { name } => {
                let u: UserView = self.get(&format!("/api/users/{}", enc(&name))).await?;
                self.show(&u, |u| render::users(std::slice::from_ref(u)));
            }
            UsersCommand::Create {
                name,
                role,
                password_stdin,
            } => {
                let password = read_password(&format!("password for {name}: "), password_stdin)?;
                let body = json!({ "name": name, "role": role, "password": password });
                let u: UserView = self.call(Method::POST, "/api/users", Some(&body)).await?;
                self.show(&u, |u| render::users(std::slice::from_ref(u)));
            }
            UsersCommand::Update {
                name,
                role,
                disabled,
            } => {
                let mut body = json!({});
                if let Some(r) = role {
                    body["role"] = json!(r);
                }
                if let Some(d) = disabled {
                    body["disabled"] = json!(d);
                }
                let u: UserView = self
                    .call(
                        Method::PUT,
                        &format!("/api/users/{}", enc(&name)),
                        Some(&body),
                    )
                    .await?;
                self.show(&u, |u| render::users(std::slice::from_ref(u)));
            }
            UsersCommand::ResetPassword {
                name,
                password_stdin,
            } => {
                let password =
                    read_password(&format!("new password for {name}: "), password_stdin)?;
                let v: Value = self
                    .call(
                        Method::POST,
                        &format!("/api/users/{}/password", enc(&name)),
                        Some(&json!({ "password": password })),
                    )
                    .await?;
                self.show(&v, |_| {
                    format!("the password of {name} is changed; their sessions ended")
                });
            }
            UsersCommand::Delete { name } => {
                let v: Value = self
                    .call(Method::DELETE, &format!("/api/users/{}", enc(&name)), None)
                    .await?;
                self.show(&v, |_| format!("deleted user {name}"));
            }
            UsersCommand::Password { password_stdin } => {
                let current = read_password("current password: ", password_stdin)?;
                let new = read_password("new password: ", password_stdin)?;
                let body = json!({ "current_password": current, "new_password": new });
                let answer: LoginAnswer = self
                    .call(Method::PUT, "/api/auth/password", Some(&body))
                    .await?;
                let kept = TokenStore::default_location()
                    .filter(|s| s.get(&self.base) == self.token)
                    .filter(|_| self.token.is_some());
                if let (Some(store), Some(t)) = (kept, &answer.token) {
                    store.set(&self.base, Some(t))?;
                }
                self.show(&answer.user, |_| {
                    "password changed; your other sessions ended".to_owned()
                });
            }
            UsersCommand::Me => {
                let me = self.me().await?;
                self.show(&me, |m| {
                    format!(
                        "{} ({}), by {}{}",
                        m.name,
                        m.role,
                        m.via,
                        m.expires_at
                            .map(|t| format!(", until {}", t.format("%Y-%m-%d %H:%M UTC")))
                            .unwrap_or_default()
                    )
                });
            }
        }
        Ok(())
    }

    /// `jobsched tokens …`
    pub async fn tokens(&self, cmd: TokensCommand) -> Result<(), DaemonError> {
        match cmd {
            TokensCommand::List { user, page } => {
                let p: Page<TokenView> = self
                    .get(&format!(
                        "/api/tokens{}",
                        page_query(&[("user", user)], &page)
                    ))
                    .await?;
                self.show(&p, |p| render::tokens(&p.items));
            }
            TokensCommand::Create {
                name,
                role,
                expires_in_days,
            } => {
                let mut body = json!({ "name": name });
                if let Some(r) = role {
                    body["role"] = json!(r);
                }
                if let Some(d) = expires_in_days {
                    body["expires_in_days"] = json!(d);
                }
                let t: NewTokenView = self.call(Method::POST, "/api/tokens", Some(&body)).await?;
                self.show(&t, |t| {
                    format!(
                        "{}\n\nThe token above is shown once: keep it secret (e.g. in JOBSCHED_TOKEN).",
                        t.token
                    )
                });
            }
            TokensCommand::Revoke { token_id } => {
                let t: TokenView = self
                    .call(
                        Method::DELETE,
                        &format!("/api/tokens/{}", enc(&token_id)),
                        None,
                    )
                    .await?;
                self.show(&t, |t| render::tokens(std::slice::from_ref(t)));
            }
        }
        Ok(())
    }

    /// `jobsched audit`
    pub async fn audit(&self, a: AuditArgs) -> Result<(), DaemonError> {
        let q = page_query(
            &[
                ("user", a.user),
                ("action", a.action),
                ("target", a.target),
                ("from", a.from),
                ("to", a.to),
            ],
            &a.page,
        );
        let p: Page<AuditEntry> = self.get(&format!("/api/audit{q}")).await?;
        self.show(&p, render::audit);
        Ok(())
    }
}
