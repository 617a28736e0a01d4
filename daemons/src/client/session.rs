//! The client's session: `jobsched login` asks for the password (no echo) and keeps the login token in a
//! file only the user can read (`~/.config/jobsched/tokens.json`, one token per server); `jobsched
//! logout` ends the session on the server and forgets it. `JOBSCHED_TOKEN` overrides the file.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;

use super::Client;
use crate::api::{LoginAnswer, Me};
use crate::cli::LoginArgs;
use crate::error::DaemonError;

/// The tokens `jobsched login` kept, by server.
pub struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    /// `$XDG_CONFIG_HOME/jobsched/tokens.json`, else `~/.config/jobsched/tokens.json`.
    pub fn default_location() -> Option<TokenStore> {
        let dir = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(TokenStore {
            path: dir.join("jobsched").join("tokens.json"),
        })
    }

    fn read(&self) -> BTreeMap<String, String> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The token kept for `server`.
    pub fn get(&self, server: &str) -> Option<String> {
        self.read().get(server).cloned()
    }

    /// Keeps (or, with `None`, forgets) the token of `server`, in a file readable by its owner only.
    pub fn set(&self, server: &str, token: Option<&str>) -> Result<(), DaemonError> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let mut all = self.read();
        match token {
            Some(t) => all.insert(server.to_owned(), t.to_owned()),
            None => all.remove(server),
        };
        let dir = self.path.parent().expect("a file in a directory");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&serde_json::to_vec_pretty(&all).expect("a map serialises"))?;
        Ok(())
    }

    /// Where the tokens are kept.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Reads a password: one line of standard input (`from_stdin`), else asked for on the terminal without
/// echo.
pub fn read_password(prompt: &str, from_stdin: bool) -> Result<String, DaemonError> {
    let line = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    } else {
        rpassword::prompt_password(prompt).map_err(|e| {
            DaemonError::Config(format!(
                "cannot ask for the password ({e}); use --password-stdin"
            ))
        })?
    };
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

impl Client {
    /// `jobsched login`
    pub async fn login(&mut self, a: LoginArgs) -> Result<(), DaemonError> {
        let password = read_password(&format!("password for {}: ", a.user), a.password_stdin)?;
        self.token = None;
        let body = serde_json::json!({ "name": a.user, "password": password });
        let answer: LoginAnswer = self
            .call(Method::POST, "/api/auth/login", Some(&body))
            .await?;
        let token = answer.token.clone().unwrap_or_default();
        let store = TokenStore::default_location().ok_or_else(|| {
            DaemonError::Config(
                "no home directory to keep the token in: set JOBSCHED_TOKEN instead".into(),
            )
        })?;
        store.set(&self.base, Some(&token))?;
        self.show(&answer.user, |u| {
            format!(
                "logged in to {} as {} ({}) until {}; the token is kept in {}",
                self.base,
                u.name,
                u.role,
                answer.expires_at.format("%Y-%m-%d %H:%M UTC"),
                store.path().display()
            )
        });
        Ok(())
    }

    /// `jobsched logout`
    pub async fn logout(&self) -> Result<(), DaemonError> {
        let store = TokenStore::default_location();
        let ended = self
            .call::<Value>(Method::POST, "/api/auth/logout", None)
            .await;
        if let Some(store) = &store {
            store.set(&self.base, None)?;
        }
        ended?;
        self.show(&Value::Null, |_| format!("logged out of {}", self.base));
        Ok(())
    }

    /// Who the token belongs to.
    pub async fn me(&self) -> Result<Me, DaemonError> {
        self.get("/api/auth/me").await
    }
}
