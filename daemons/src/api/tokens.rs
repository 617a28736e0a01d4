//! `/api/tokens…`: API tokens for scripts and CI. A token acts as its user with at most its role; its
//! secret is shown once, at creation, and only its hash is kept. Tokens are made from a login session
//! (a leaked token cannot mint more), listed and revoked by their user or an administrator.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use jobsched::{ApiToken, Page, Role, check_account_name};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::audit;
use super::error::{ApiJson, ApiQuery};
use super::jobs::Paging;
use super::{ApiError, Caller, Credential, ErrorBody, SharedState};
use crate::auth::{Auth, tokens};

/// A token as the API shows it (never its secret or hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// The token's id.
    pub token_id: String,
    /// What it is for.
    pub name: String,
    /// The user it acts as.
    pub user: String,
    /// Its role.
    pub role: Role,
    /// When it was made.
    pub create_time: DateTime<Utc>,
    /// When it expires, if ever.
    pub expire_time: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoke_time: Option<DateTime<Utc>>,
}

impl TokenView {
    fn of(t: ApiToken, user: String) -> Self {
        TokenView {
            token_id: t.token_id,
            name: t.name,
            user,
            role: t.role,
            create_time: t.create_time,
            expire_time: t.expire_time,
            revoke_time: t.revoke_time,
        }
    }
}

/// A new token, with its secret (shown only now). `Debug` leaves the secret out.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewTokenView {
    /// The token.
    #[serde(flatten)]
    pub view: TokenView,
    /// The secret to send as `Authorization: Bearer <token>`; not shown again.
    pub token: String,
}

impl std::fmt::Debug for NewTokenView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTokenView")
            .field("view", &self.view)
            .field("token", &"***")
            .finish()
    }
}

/// Body of `POST /api/tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it is for: 1–64 bytes of letters, digits, `.`, `_`, `-`, `@`.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
    pub name: String,
    /// Its role, at most the caller's (default: the caller's).
    pub role: Option<Role>,
    /// Days until it expires, 1–3650 (default: never).
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// Filters of `GET /api/tokens`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TokenFilter {
    /// Only this user's tokens (administrators; others see only their own).
    #[param(nullable = false)]
    pub user: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page: Option<u32>,
    /// Items per page, 1–1000 (default 50).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page_size: Option<u32>,
}

/// Make an API token.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = NewTokenView), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<NewTokenView>), ApiError> {
    let new = tokens::generate();
    let entry = caller.audit("token.create", format!("token:{}", new.id));
    let result = async {
        if !matches!(caller.credential, Credential::Session { .. }) {
            return Err(ApiError::forbidden(
                "API tokens are made from a login session (jobsched login), not with another token",
            ));
        }
        check_account_name("name", &req.name)?;
        let role = req.role.unwrap_or(caller.role);
        Auth::check_grant(&caller, role)?;
        let now = Utc::now();
        let expire_time = match req.expires_in_days {
            Some(d) if !(1..=3650).contains(&d) => {
                return Err(ApiError::invalid(
                    "expires_in_days",
                    format!("must be between 1 and 3650, got {d}"),
                ));
            }
            Some(d) => Some(now + TimeDelta::days(i64::from(d))),
            None => None,
        };
        let token = ApiToken {
            token_id: new.id.clone(),
            name: req.name.clone(),
            user_id: caller.user_id.clone(),
            role,
            secret_hash: new.hash.clone(),
            create_time: now,
            expire_time,
            revoke_time: None,
        };
        let mut entry = entry.clone();
        entry.detail = serde_json::json!({"after": {"name": token.name, "role": role,
            "expire_time": expire_time}});
        Ok(s.scheduler.storage().create_token(&token, &[entry]).await?)
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    let view = TokenView::of(result?, caller.user.clone());
    Ok((
        StatusCode::CREATED,
        Json(NewTokenView {
            view,
            token: new.text,
        }),
    ))
}

/// The caller's tokens (an administrator's: everyone's, or one user's), newest first.
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", params(TokenFilter),
    responses((status = 200, body = Page<TokenView>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such user")))]
pub async fn list(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(f): ApiQuery<TokenFilter>,
) -> Result<Json<Page<TokenView>>, ApiError> {
    let page = Paging {
        page: f.page,
        page_size: f.page_size,
    }
    .request()?;
    let st = s.scheduler.storage();
    let user_id = match (&f.user, caller.role) {
        (Some(name), Role::Admin) => Some(
            st.find_user(&name.to_lowercase())
                .await?
                .ok_or_else(|| jobsched::Error::not_found("user", name.as_str()))?
                .user_id,
        ),
        (None, Role::Admin) => None,
        (Some(name), _) if name.to_lowercase() != caller.user => {
            return Err(ApiError::forbidden(
                "only administrators list other users' tokens",
            ));
        }
        _ => Some(caller.user_id.clone()),
    };
    let tokens = st.list_tokens(user_id.as_deref(), page).await?;
    let mut names = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(tokens.items.len());
    for t in tokens.items {
        let name = match names.get(&t.user_id) {
            Some(n) => String::clone(n),
            None => {
                let n = st
                    .get_user(&t.user_id)
                    .await
                    .map_or_else(|_| t.user_id.clone(), |u| u.name);
                names.insert(t.user_id.clone(), n.clone());
                n
            }
        };
        items.push(TokenView::of(t, name));
    }
    Ok(Json(Page {
        items,
        total: tokens.total,
        total_capped: tokens.total_capped,
        page: tokens.page,
        page_size: tokens.page_size,
    }))
}

/// Revoke a token: it stops working at once (yours, or anyone's for an administrator).
#[utoipa::path(delete, path = "/api/tokens/{tokenId}", tag = "tokens",
    params(("tokenId" = String, Path, description = "The token's id (16 hex digits)", pattern = "^[0-9a-f]{16}$")),
    responses((status = 200, body = TokenView), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    let entry = caller.audit("token.revoke", format!("token:{id}"));
    let result = async {
        let st = s.scheduler.storage();
        let token = st.get_token(&id).await?;
        if caller.role != Role::Admin && token.user_id != caller.user_id {
            // Another user's token does not exist for this caller.
            return Err(jobsched::Error::not_found("token", id.as_str()).into());
        }
        Ok(st
            .revoke_token(&id, Utc::now(), std::slice::from_ref(&entry))
            .await?)
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    let t = result?;
    let user = s
        .scheduler
        .storage()
        .get_user(&t.user_id)
        .await
        .map_or_else(|_| t.user_id.clone(), |u| u.name);
    Ok(Json(TokenView::of(t, user)))
}
