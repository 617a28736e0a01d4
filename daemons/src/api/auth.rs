//! `/api/auth…`: logging in and out, who the caller is, changing one's own password.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use jobsched::{AuditEntry, AuditOutcome, Role, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit;
use super::error::ApiJson;
use super::{ApiError, Caller, ClientIp, Credential, ErrorBody, SharedState};
use crate::auth::{CSRF_COOKIE, SESSION_COOKIE, Session, bootstrap, password};
use jobsched::check_account_name;

/// How a login hands over its token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// In the answer, to send as `Authorization: Bearer <token>` (scripts, the command line).
    #[default]
    Token,
    /// In an `HttpOnly`, `SameSite=Strict` cookie (the Web UI); the answer carries the CSRF token that
    /// state-changing requests repeat in `X-CSRF-Token`.
    Cookie,
}

/// Body of `POST /api/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user's name.
    #[schema(max_length = 64)]
    pub name: String,
    /// The password.
    #[schema(max_length = 1024)]
    pub password: String,
    /// `token` (default) or `cookie`.
    #[serde(default)]
    pub session: SessionKind,
}

/// Who a caller is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub name: String,
    /// What the caller may do.
    pub role: Role,
    /// `session` (a login token) or `api_token`.
    pub via: String,
    /// When the credential expires, if it does.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Answer of a login. `Debug` leaves the token out.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LoginAnswer {
    /// The login token (absent for a cookie session: it is in the cookie only).
    pub token: Option<String>,
    /// `Bearer`.
    pub token_type: String,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
    /// The CSRF token of a cookie session.
    pub csrf_token: Option<String>,
    /// Who logged in.
    pub user: Me,
}

/// Body of `PUT /api/auth/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    #[schema(max_length = 1024)]
    pub current_password: String,
    /// The new one (12–1024 bytes).
    #[schema(min_length = 12, max_length = 1024)]
    pub new_password: String,
}

impl std::fmt::Debug for LoginAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAnswer")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Me {
    /// The user of a new login session.
    fn of_session(user: &User, session: &Session) -> Me {
        Me {
            user_id: user.user_id.clone(),
            name: user.name.clone(),
            role: user.role,
            via: "session".into(),
            expires_at: Some(session.claims.expires()),
        }
    }
}

fn cookie_header(
    name: &str,
    value: &str,
    max_age_secs: i64,
    http_only: bool,
    secure: bool,
) -> HeaderValue {
    let mut c = cookie::Cookie::build((name.to_owned(), value.to_owned()))
        .path("/")
        .same_site(cookie::SameSite::Strict)
        .http_only(http_only)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    if max_age_secs <= 0 {
        c.make_removal();
    }
    HeaderValue::from_str(&c.to_string()).expect("a cookie is a valid header")
}

/// The answer of a new session: the token in the body, or in cookies.
fn session_answer(s: &SharedState, session: Session, kind: SessionKind, user: Me) -> Response {
    let expires_at = session.claims.expires();
    let ttl = (expires_at - Utc::now()).num_seconds().max(1);
    match kind {
        SessionKind::Token => Json(LoginAnswer {
            token: Some(session.token),
            token_type: "Bearer".into(),
            expires_at,
            csrf_token: None,
            user,
        })
        .into_response(),
        SessionKind::Cookie => {
            let csrf = s.auth.csrf_token(&session.claims.jti);
            let secure = s.auth.settings.secure_cookies;
            let mut r = Json(LoginAnswer {
                token: None,
                token_type: "Bearer".into(),
                expires_at,
                csrf_token: Some(csrf.clone()),
                user,
            })
            .into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                cookie_header(SESSION_COOKIE, &session.token, ttl, true, secure),
            );
            h.append(
                header::SET_COOKIE,
                cookie_header(CSRF_COOKIE, &csrf, ttl, false, secure),
            );
            r
        }
    }
}

/// Log in with a name and password; returns a login token (or sets the session cookie).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    security(()),
    responses((status = 200, body = LoginAnswer),
        (status = 401, body = ErrorBody, description = "Wrong name or password, or a disabled user"),
        (status = 429, body = ErrorBody, description = "Too many failed logins; see Retry-After")))]
pub async fn login(
    State(s): State<SharedState>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Response {
    // Names are kept in lower case; a login compares the same way.
    let name: String = req.name.chars().take(64).collect::<String>().to_lowercase();
    let mut entry = AuditEntry {
        id: 0,
        time: Utc::now(),
        user: name.clone(),
        role: None,
        client: client.to_string(),
        action: "auth.login".into(),
        target: format!("user:{name}"),
        outcome: AuditOutcome::Success,
        message: String::new(),
        detail: serde_json::Value::Null,
    };
    let attempt = match s.auth.limits.login_attempt(&name, client) {
        Ok(a) => a,
        Err(r) => {
            // One entry per blocked window, not one per refused try: a flood does not flood the log.
            if r.first {
                let denied = AuditEntry {
                    outcome: AuditOutcome::Denied,
                    message: r.message.clone(),
                    ..entry
                };
                audit::append(&s, &[denied]).await;
            }
            return r.into_response();
        }
    };
    let result = async {
        password::check_length("password", &req.password)?;
        let user = if check_account_name("name", &name).is_ok() {
            s.scheduler.storage().find_user(&name).await?
        } else {
            None
        };
        let ok = password::verify(
            req.password.clone(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await;
        let wrong = || ApiError::unauthorized("login_failed", "wrong user name or password");
        let user = user.filter(|_| ok).ok_or_else(wrong)?;
        if user.disabled {
            return Err(ApiError::unauthorized(
                "user_disabled",
                format!("user '{}' is disabled", user.name),
            ));
        }
        Ok(user)
    }
    .await;
    match result.and_then(|user| Ok((s.auth.issue(&user, Utc::now())?, user))) {
        Ok((session, user)) => {
            s.auth.limits.login_succeeded(attempt);
            entry.role = Some(user.role);
            entry.detail = serde_json::json!({"session": req.session == SessionKind::Cookie});
            audit::append(&s, &[entry]).await;
            let me = Me::of_session(&user, &session);
            session_answer(&s, session, req.session, me)
        }
        Err(e) => {
            if e.status != StatusCode::UNAUTHORIZED {
                // Not a wrong password (bad input, an unavailable store): no failure to count.
                s.auth.limits.login_succeeded(attempt);
            }
            audit::append(&s, &[audit::failed(entry, &e)]).await;
            e.into_response()
        }
    }
}

fn me_of(caller: &Caller) -> Me {
    let (via, expires_at) = match &caller.credential {
        Credential::Session { expires, .. } => ("session", Some(*expires)),
        Credential::ApiToken { .. } => ("api_token", None),
    };
    Me {
        user_id: caller.user_id.clone(),
        name: caller.user.clone(),
        role: caller.role,
        via: via.into(),
        expires_at,
    }
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", responses((status = 200, body = Me)))]
pub async fn me(Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(me_of(&caller))
}

/// End this session: its token stops working at once (and the session cookie is cleared).
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out"),
        (status = 403, body = ErrorBody, description = "An API token is revoked, not logged out")))]
pub async fn logout(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let Credential::Session {
        id,
        expires,
        cookie,
    } = &caller.credential
    else {
        let e = ApiError::forbidden(
            "an API token is not logged out: revoke it with DELETE /api/tokens/{tokenId}",
        );
        audit::append(
            &s,
            &[audit::failed(caller.audit("auth.logout", "session"), &e)],
        )
        .await;
        return Err(e);
    };
    let entry = caller.audit("auth.logout", format!("session:{id}"));
    let result = s
        .scheduler
        .storage()
        .end_session(id, *expires, std::slice::from_ref(&entry))
        .await
        .map_err(ApiError::from);
    audit::on_failure(&s, &entry, &result).await;
    result?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    if *cookie {
        let secure = s.auth.settings.secure_cookies;
        for name in [SESSION_COOKIE, CSRF_COOKIE] {
            r.headers_mut().append(
                header::SET_COOKIE,
                cookie_header(name, "", 0, name == SESSION_COOKIE, secure),
            );
        }
    }
    Ok(r)
}

/// Change your own password: every other session of yours ends; the answer is a new login token.
#[utoipa::path(put, path = "/api/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 200, body = LoginAnswer),
        (status = 400, body = ErrorBody, description = "The new password is too short or too long"),
        (status = 403, body = ErrorBody, description = "The current password is wrong, or an API token is used"),
        (status = 409, body = ErrorBody, description = "The user changed meanwhile")))]
pub async fn change_password(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    let entry = caller.audit("user.password_change", format!("user:{}", caller.user));
    let result = async {
        if !matches!(caller.credential, Credential::Session { .. }) {
            return Err(ApiError::forbidden(
                "a password is changed from a login session, not with an API token",
            ));
        }
        password::check_length("current_password", &req.current_password)?;
        password::check_new("new_password", &req.new_password)?;
        let mut user = s.scheduler.storage().get_user(&caller.user_id).await?;
        // A wrong current password counts as a failed login: this is no way around the login limits.
        let attempt = s
            .auth
            .limits
            .login_attempt(&caller.user, client)
            .map_err(|r| ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "rate_limited",
                message: r.message,
            })?;
        if !password::verify(req.current_password, Some(user.password_hash.clone())).await {
            return Err(ApiError::forbidden("the current password is wrong"));
        }
        s.auth.limits.login_succeeded(attempt);
        let now = Utc::now();
        user.password_hash = password::hash(req.new_password).await?;
        user.sessions_since = now;
        user.update_time = now;
        let user = s
            .scheduler
            .storage()
            .update_user(&user, std::slice::from_ref(&entry))
            .await?;
        let session = s.auth.issue(&user, now)?;
        Ok((user, session))
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    let (user, session) = result?;
    if user.name == bootstrap::FIRST_ADMIN {
        bootstrap::forget_first_password(&s.data_dir);
    }
    // A cookie session gets its new token as cookies, a header one in the answer.
    let kind = match caller.credential {
        Credential::Session { cookie: true, .. } => SessionKind::Cookie,
        _ => SessionKind::Token,
    };
    let me = Me::of_session(&user, &session);
    Ok(session_answer(&s, session, kind, me))
}
