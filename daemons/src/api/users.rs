//! `/api/users…` (administrators): create, list, read, change role or disable, reset password, delete.
//! Users are addressed by name (unique, never changed). The last enabled administrator cannot be
//! disabled, demoted or deleted, and a user who owns jobs cannot be deleted.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use jobsched::{JobQuery, Page, PageRequest, Role, User, check_account_name};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit;
use super::error::{ApiJson, ApiQuery};
use super::jobs::Paging;
use super::{ApiError, Caller, ErrorBody, SharedState};
use crate::auth::{bootstrap, password};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// A disabled user cannot log in and their tokens are refused.
    pub disabled: bool,
    /// When the user was created.
    pub create_time: DateTime<Utc>,
    /// When the user was last changed.
    pub update_time: DateTime<Utc>,
    /// Increases with every change.
    pub version: u64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            user_id: u.user_id,
            name: u.name,
            role: u.role,
            disabled: u.disabled,
            create_time: u.create_time,
            update_time: u.update_time,
            version: u.version,
        }
    }
}

/// Body of `POST /api/users`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// A unique name: 1–64 bytes of letters, digits, `.`, `_`, `-`, `@` (kept in lower case).
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Their password (12–1024 bytes).
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// Body of `PUT /api/users/{name}`: the fields to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// A new role.
    pub role: Option<Role>,
    /// Disable (`true`) or enable (`false`).
    pub disabled: Option<bool>,
    /// Apply only if the user is still at this version (409 otherwise).
    pub version: Option<u64>,
}

/// Body of `POST /api/users/{name}/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// The new password (12–1024 bytes).
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// The user `name` (names are kept in lower case).
async fn named(s: &SharedState, name: &str) -> Result<User, ApiError> {
    let name = name.to_lowercase();
    s.scheduler
        .storage()
        .find_user(&name)
        .await?
        .ok_or_else(|| jobsched::Error::not_found("user", name.as_str()).into())
}

/// Users, by name.
#[utoipa::path(get, path = "/api/users", tag = "users", params(Paging),
    responses((status = 200, body = Page<UserView>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(p): ApiQuery<Paging>,
) -> Result<Json<Page<UserView>>, ApiError> {
    caller.may_administer()?;
    let page = s.scheduler.storage().list_users(p.request()?).await?;
    Ok(Json(page.map(UserView::from)))
}

/// Create a user.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The name is taken")))]
pub async fn create(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    // Names are kept in lower case: `Alice` and `alice` are one user (and one owner of jobs).
    let name = req.name.to_lowercase();
    let entry = caller.audit("user.create", format!("user:{name}"));
    let result = async {
        caller.may_administer()?;
        check_account_name("name", &name)?;
        password::check_new("password", &req.password)?;
        let now = Utc::now();
        let user = User {
            user_id: uuid::Uuid::now_v7().to_string(),
            name: name.clone(),
            role: req.role,
            password_hash: password::hash(req.password).await?,
            disabled: false,
            sessions_since: now,
            create_time: now,
            update_time: now,
            version: 0,
        };
        let mut entry = entry.clone();
        entry.detail = serde_json::json!({"after": {"name": user.name, "role": user.role}});
        Ok(s.scheduler.storage().create_user(&user, &[entry]).await?)
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    Ok((StatusCode::CREATED, Json(result?.into())))
}

/// One user.
#[utoipa::path(get, path = "/api/users/{name}", tag = "users",
    params(("name" = String, Path, description = "The user's name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    caller.may_administer()?;
    Ok(Json(named(&s, &name).await?.into()))
}

/// Change a user's role, or disable or enable them (their tokens stop or start working at once).
#[utoipa::path(put, path = "/api/users/{name}", tag = "users", request_body = UserChange,
    params(("name" = String, Path, description = "The user's name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")),
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Changed since `version`, or the last administrator")))]
pub async fn update(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UserChange>,
) -> Result<Json<UserView>, ApiError> {
    let entry = caller.audit("user.update", format!("user:{name}"));
    let result = async {
        caller.may_administer()?;
        let user = named(&s, &name).await?;
        if user.user_id == caller.user_id
            && (req.role.is_some_and(|r| r != user.role) || req.disabled == Some(true))
        {
            return Err(jobsched::Error::conflict(
                "you cannot change your own role or disable yourself: another administrator can",
            )
            .into());
        }
        if let Some(v) = req.version
            && v != user.version
        {
            return Err(jobsched::Error::conflict(format!(
                "user '{name}' is at version {}, the change was made against version {v}",
                user.version
            ))
            .into());
        }
        let mut changed = user.clone();
        if let Some(r) = req.role {
            changed.role = r;
        }
        if let Some(d) = req.disabled {
            changed.disabled = d;
        }
        changed.update_time = Utc::now();
        let mut entry = entry.clone();
        entry.detail = serde_json::json!({
            "before": {"role": user.role, "disabled": user.disabled},
            "after": {"role": changed.role, "disabled": changed.disabled},
        });
        Ok(s.scheduler
            .storage()
            .update_user(&changed, &[entry])
            .await?)
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    Ok(Json(result?.into()))
}

/// Set a user's password; every session of theirs ends.
#[utoipa::path(post, path = "/api/users/{name}/password", tag = "users", request_body = NewPassword,
    params(("name" = String, Path, description = "The user's name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")),
    responses((status = 204, description = "Changed"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The user changed meanwhile")))]
pub async fn reset_password(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    let entry = caller.audit("user.password_reset", format!("user:{name}"));
    let result = async {
        caller.may_administer()?;
        password::check_new("password", &req.password)?;
        let mut user = named(&s, &name).await?;
        let now = Utc::now();
        user.password_hash = password::hash(req.password).await?;
        user.sessions_since = now;
        user.update_time = now;
        s.scheduler
            .storage()
            .update_user(&user, std::slice::from_ref(&entry))
            .await?;
        if user.name == bootstrap::FIRST_ADMIN {
            bootstrap::forget_first_password(&s.data_dir);
        }
        Ok(())
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    result.map(|()| StatusCode::NO_CONTENT)
}

/// Delete a user and their API tokens. Refused while they own jobs, for yourself, and for the last
/// administrator.
#[utoipa::path(delete, path = "/api/users/{name}", tag = "users",
    params(("name" = String, Path, description = "The user's name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "They own jobs, or are the last administrator")))]
pub async fn delete(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let entry = caller.audit("user.delete", format!("user:{name}"));
    let result = async {
        caller.may_administer()?;
        let user = named(&s, &name).await?;
        if user.user_id == caller.user_id {
            return Err(jobsched::Error::conflict("you cannot delete yourself").into());
        }
        let owned = s
            .scheduler
            .list_jobs(&JobQuery {
                owner: Some(user.name.clone()),
                page: PageRequest::new(1, 1)?,
                ..JobQuery::default()
            })
            .await?
            .total;
        if owned > 0 {
            return Err(jobsched::Error::conflict(format!(
                "user '{name}' owns {owned} jobs: delete them or give them to another owner first"
            ))
            .into());
        }
        s.scheduler
            .storage()
            .delete_user(&user.user_id, std::slice::from_ref(&entry))
            .await?;
        Ok(())
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    result.map(|()| StatusCode::NO_CONTENT)
}
