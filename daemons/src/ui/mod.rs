//! The Web UI (docs/REQUIREMENTS.md, R-7): server-rendered pages at `/`, from the same listener, TLS and guard as the
//! API. Pages are askama templates (escaped by default) filled by calling the API's own handlers with
//! the page's [`Caller`](crate::api::Caller), so a page shows exactly what the API would answer that caller; actions are
//! sent by `assets/app.js` to the JSON API with the session's CSRF token, so the server checks them
//! the same way it checks the CLI's. Every page is a plain URL: back, bookmarks and reload work.

mod alerts;
mod assets;
mod chart;
mod dashboard;
mod executors;
mod format;
mod job_form;
mod jobs;
mod page;
mod system;
mod tasks;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::api::SharedState;

pub use dashboard::UiState;
pub use page::{Chrome, Html};

/// Paths of the UI anyone may fetch: the login page and the static assets.
pub fn is_public(path: &str) -> bool {
    path == "/login" || path.starts_with("/assets/")
}

/// True for a request of a page (not of the API): where an unauthenticated caller is sent to log in
/// instead of getting a JSON 401.
pub fn is_page(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::GET
        && !path.starts_with("/api/")
        && path != "/healthz"
        && path != "/readyz"
        && path != crate::metrics::PATH
}

/// The answer to an unauthenticated page request: the login page, coming back here afterwards.
pub fn to_login(path_and_query: &str) -> Response {
    let next = if path_and_query.starts_with('/') && !path_and_query.starts_with("//") {
        path_and_query
    } else {
        "/"
    };
    let target = format!("/login?next={}", format::url_encode(next));
    Redirect::to(&target).into_response()
}

/// True when the client asked for HTML (a browser), for choosing the 404 page.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The UI's routes.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/login", get(page::login))
        .route("/jobs", get(jobs::list))
        .route("/jobs/new", get(job_form::new))
        .route("/jobs/{id}", get(jobs::detail))
        .route("/jobs/{id}/edit", get(job_form::edit))
        .route("/ui/preview", get(job_form::preview))
        .route("/tasks/{id}", get(tasks::detail))
        .route("/executors", get(executors::list))
        .route("/system", get(system::page))
        .route("/system/audit", get(system::audit))
        .route("/system/users", get(system::users))
        .route("/system/alerts", get(alerts::page))
        .route("/assets/{file}", get(assets::serve))
}

/// The HTML 404 page for unknown paths asked for by a browser.
pub fn not_found() -> Response {
    page::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
    )
}
