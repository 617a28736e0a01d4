//! The HTTP API (design §4.1, docs/REQUIREMENTS.md R-6): jobs, tasks, executors, system, users, tokens, audit, health, and
//! the OpenAPI document generated from the handlers' annotations (`/api/openapi.json`).
//!
//! Every request passes one middleware ([`crate::auth::guard`]) that decides who the caller is; handlers
//! consult the [`Caller`] for what it may see and change, and record what they change in the audit log.

pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod auth;
mod bulk;
mod caller;
mod document;
pub(crate) mod error;
pub(crate) mod executors;
pub(crate) mod jobs;
pub(crate) mod logs;
pub(crate) mod system;
pub(crate) mod tasks;
pub(crate) mod tokens;
pub(crate) mod users;
mod view;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jobsched::{Params, Scheduler};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{LoginAnswer, Me};
pub use bulk::{BulkAnswer, MAX_JOBS as MAX_BULK_JOBS};
pub use caller::{Caller, ClientIp, Credential};
pub use document::openapi;
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use system::{ConfigView, Health, StatusView};
pub use tasks::TaskView;
pub use tokens::{NewTokenView, TokenView};
pub use users::UserView;

use crate::secrets::{self, Keyring};

/// What the handlers share.
pub struct AppState {
    /// The scheduler handle (active or standby).
    pub scheduler: Scheduler,
    /// The roles this process runs.
    pub roles: Vec<&'static str>,
    /// When the process started.
    pub started: Instant,
    /// The built-in executor's id, if any.
    pub executor_id: Option<String>,
    /// Authentication: users, tokens, the signing key, the limits.
    pub auth: Arc<crate::auth::Auth>,
    /// The keyring secret params are sealed with (none: secret params are refused).
    pub keyring: Option<Arc<Keyring>>,
    /// The data directory (where a generated first password is kept until the administrator changes it).
    pub data_dir: std::path::PathBuf,
    /// What the Web UI keeps between requests.
    pub ui: crate::ui::UiState,
    /// The live output of running tasks, collected from the executors.
    pub output: Arc<jobsched::OutputBuffers>,
    /// The metrics registry `/metrics` answers from.
    pub telemetry: Arc<crate::metrics::Telemetry>,
}

impl AppState {
    /// Seals the secret inputs of job `job`'s `params`, keeping `stored` sealed values for `"***"`.
    pub fn seal(
        &self,
        job: &jobsched::JobId,
        params: &mut Params,
        stored: Option<&Params>,
    ) -> Result<(), ApiError> {
        Ok(secrets::seal_params(
            self.keyring.as_deref(),
            "params",
            job.as_str(),
            params,
            stored,
        )?)
    }
}

/// Shared state of a handler.
pub type SharedState = Arc<AppState>;

/// Every route with its handler, documented: the router and the OpenAPI document come from the same list.
fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::with_openapi(document::base())
        .routes(routes!(jobs::create, jobs::list))
        .routes(routes!(jobs::get, jobs::update, jobs::delete))
        .routes(routes!(jobs::execute))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::history))
        .routes(routes!(jobs::next_fires))
        .routes(routes!(tasks::get))
        .routes(routes!(tasks::cancel))
        .routes(routes!(logs::log))
        .routes(routes!(logs::stream))
        .routes(routes!(executors::list))
        .routes(routes!(executors::get))
        .routes(routes!(executors::enable))
        .routes(routes!(executors::disable))
        .routes(routes!(system::status))
        .routes(routes!(system::get_config, system::put_config))
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::reset_password))
        .routes(routes!(tokens::create, tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(alerts::get_config, alerts::put_config))
        .routes(routes!(alerts::firing))
        .routes(routes!(alerts::history))
        .routes(routes!(audit::list))
}

/// The bulk route, with its larger body limit.
fn bulk_routes(max_bulk_body_bytes: usize) -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(bulk::import))
        .layer(DefaultBodyLimit::max(max_bulk_body_bytes))
}

/// Headers every answer carries: no sniffing, no caching, no framing, no referrer, no active content.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    r
}

/// The router of an `executor` process: `/healthz` (alive), `/readyz` (its dispatch and coordination
/// answer), `/api/executor` (who it is, its registration epoch, running tasks and the version of the
/// central configuration it applies; needs a login token, checked with `--jwt-secret-file`) and
/// `/metrics` (the metrics token, or a login token). Jobs and tasks are managed through the schedulers'
/// API.
pub fn executor_router(
    backends: jobsched::ExecutorBackends,
    executor: Arc<jobsched::Executor>,
    key: Option<crate::auth::jwt::SigningKey>,
    telemetry: Arc<crate::metrics::Telemetry>,
    capacity: u32,
) -> Router {
    use axum::Json;
    use axum::routing::get;
    let ready = backends.clone();
    let key = Arc::new(key);
    let scrape = {
        let (executor, key, t) = (executor.clone(), key.clone(), telemetry.clone());
        let b = backends.clone();
        move |headers: axum::http::HeaderMap| {
            let (executor, key, t, b) = (executor.clone(), key.clone(), t.clone(), b.clone());
            async move {
                if !t.is_scrape(&headers) {
                    if let Err(e) =
                        crate::auth::guard::executor_token(key.as_ref().as_ref(), &headers)
                    {
                        return e.into_response();
                    }
                }
                let m = &t.metrics;
                m.observe_backend(
                    "dispatch",
                    crate::metrics::answers(b.dispatcher.ping()).await,
                );
                m.observe_backend(
                    "coordinator",
                    crate::metrics::answers(b.coordinator.ping()).await,
                );
                t.metrics.observe_executor(executor.running(), capacity);
                t.metrics.observe_dispatch(executor.dispatch_stats());
                t.answer()
            }
        }
    };
    let info = Router::new()
        .route(
            "/api/executor",
            get(move || {
                let e = executor.clone();
                async move {
                    Json(serde_json::json!({
                        "executor_id": e.id(),
                        "roles": ["executor"],
                        "epoch": e.epoch(),
                        "running": e.running(),
                        "config_version": e.config_version(),
                        "poison_messages": e.dispatch_stats().poison,
                    }))
                }
            }),
        )
        .route_layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let key = key.clone();
                async move {
                    match crate::auth::guard::executor_token(key.as_ref().as_ref(), req.headers()) {
                        Ok(()) => next.run(req).await,
                        Err(e) => e.into_response(),
                    }
                }
            },
        ));
    Router::new()
        .route("/healthz", get(system::healthz))
        .route(
            "/readyz",
            get(move || {
                let b = ready.clone();
                async move {
                    let checks = async {
                        b.dispatcher.ping().await?;
                        b.coordinator.ping().await
                    };
                    match checks.await {
                        Ok(()) => (StatusCode::OK, Json(Health { status: "ok".to_owned() })),
                        Err(e) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json(Health { status: e.to_string() }),
                        ),
                    }
                }
            }),
        )
        .merge(info)
        .route(crate::metrics::PATH, get(scrape))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: "an executor serves /healthz, /readyz and /api/executor; jobs are managed through a scheduler".to_owned(),
            }
        })
        .layer(axum::middleware::from_fn_with_state(
            telemetry,
            crate::metrics::track,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(TraceLayer::new_for_http())
}

/// The API's router: the routes, the OpenAPI document, a JSON 404 for unknown paths, the guard (who the
/// caller is, and whether the request may go on), body limits (413 beyond `max_body_bytes`, or
/// `max_bulk_body_bytes` for the bulk route), security headers, tracing, and panics answered as 500 JSON.
pub fn router(state: SharedState, max_body_bytes: usize, max_bulk_body_bytes: usize) -> Router {
    let (router, _) = routes()
        .merge(bulk_routes(max_bulk_body_bytes))
        .split_for_parts();
    let doc = Arc::new(openapi());
    router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route(crate::metrics::PATH, axum::routing::get(system::metrics))
        .merge(crate::ui::routes())
        .fallback(
            |headers: axum::http::HeaderMap, uri: axum::http::Uri| async move {
                if !uri.path().starts_with("/api/") && crate::ui::wants_html(&headers) {
                    return crate::ui::not_found();
                }
                ApiError {
                    status: StatusCode::NOT_FOUND,
                    code: "not_found",
                    message: "no such endpoint; the API is described at /api/openapi.json"
                        .to_owned(),
                }
                .into_response()
            },
        )
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "this endpoint does not take that method; see /api/openapi.json"
                    .to_owned(),
            }
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::guard::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.telemetry.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(),
                user = tracing::field::Empty)
        }))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal",
                message: "the server failed on this request; it has been logged".to_owned(),
            }
            .into_response()
        }))
}
