//! What every page shares: the header with the caller's name and role ([`Chrome`]), rendering with the
//! pages' content security policy ([`Html`]), error pages, and the login page.

use askama::Template;
use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jobsched::Role;
use serde::Deserialize;

use crate::api::{ApiError, Caller};

/// The pages' policy: only this origin's scripts, styles and connections; nothing framed or embedded.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The version assets are cached under (`?v=`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The header of every page: who is logged in, what they may do, and which section is open.
#[derive(Clone, Debug)]
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// The section of the navigation that is current (`dashboard`, `jobs`, `executors`, `system`).
    pub section: &'static str,
    /// The user's name.
    pub user: String,
    /// The caller's role, as shown.
    pub role: &'static str,
    /// May change jobs (not read-only).
    pub can_write: bool,
    /// Is an administrator.
    pub is_admin: bool,
    /// The asset version.
    pub version: &'static str,
}

impl Chrome {
    /// The chrome of a page titled `title` in `section`, for `caller`.
    pub fn new(caller: &Caller, section: &'static str, title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            section,
            user: caller.user.clone(),
            role: caller.role.as_str(),
            can_write: caller.role != Role::ReadOnly,
            is_admin: caller.role == Role::Admin,
            version: VERSION,
        }
    }

    /// `aria-current` for the navigation link of `section`.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}

/// A rendered page (or fragment) with the UI's headers.
pub struct Html(pub StatusCode, pub String);

impl Html {
    /// Renders `t` as a 200 page.
    pub fn of<T: Template>(t: &T) -> Result<Html, UiError> {
        Self::with_status(StatusCode::OK, t)
    }

    /// Renders `t` with `status`.
    pub fn with_status<T: Template>(status: StatusCode, t: &T) -> Result<Html, UiError> {
        t.render()
            .map(|body| Html(status, body))
            .map_err(|e| UiError(ApiError::internal(format!("rendering a page failed: {e}"))))
    }
}

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut r = (self.0, self.1).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        r
    }
}

/// An API error shown as a page (404, 403, 400, 503 …), with the API's message.
pub struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError(e)
    }
}

impl From<jobsched::Error> for UiError {
    fn from(e: jobsched::Error) -> Self {
        UiError(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let title = match self.0.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::BAD_REQUEST => "Bad request",
            s if s.is_server_error() => "Server error",
            _ => "Error",
        };
        message(self.0.status, title, &self.0.message)
    }
}

/// What a page handler answers.
pub type PageResult = Result<Html, UiError>;

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    version: &'a str,
}

/// A page saying `message` under `title`, with `status`.
pub fn message(status: StatusCode, title: &str, message: &str) -> Response {
    match Html::with_status(
        status,
        &MessagePage {
            title,
            message,
            version: VERSION,
        },
    ) {
        Ok(h) => h.into_response(),
        Err(_) => (status, message.to_owned()).into_response(),
    }
}

/// `next` of the login page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    version: &'static str,
}

/// `GET /login`: the login form (it posts to `/api/auth/login` asking for a cookie session).
pub async fn login(Query(q): Query<LoginQuery>) -> PageResult {
    let next = q
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\"))
        .unwrap_or_else(|| "/".to_owned());
    Html::of(&LoginPage {
        next,
        version: VERSION,
    })
}
