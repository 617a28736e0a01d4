//! The HTTP API (seed 4.1, SPEC R-6): jobs, tasks, executors, system, health, and the OpenAPI document
//! generated from the handlers' annotations (`/api/openapi.json`).
//!
//! Every request carries a [`Caller`] (request extension) that handlers consult for what it may see and
//! change; today one layer gives every request the admin caller, and the authentication issue replaces
//! that layer with one that reads a JWT — the handlers stay as they are.

mod caller;
mod error;
mod executors;
mod jobs;
mod system;
mod tasks;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jobsched::Scheduler;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use caller::{Caller, CallerRole};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use system::{ConfigView, Health, StatusView};
pub use tasks::TaskView;

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
}

/// Shared state of a handler.
pub type SharedState = Arc<AppState>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jobsched",
        description = "The jobsched HTTP API: jobs, their runs (tasks) and history, executors, and the system. \
            Field names are the design's column names; times are RFC 3339 UTC; errors are \
            `{\"error\": {\"code\", \"message\"}}`."
    ),
    tags(
        (name = "jobs", description = "Job definitions, running them, their history"),
        (name = "tasks", description = "One run of a job, with its attempts"),
        (name = "executors", description = "Executors: state, enable, disable"),
        (name = "system", description = "Status, central configuration, health")
    )
)]
struct ApiDoc;

/// Every route with its handler, documented: the router and the OpenAPI document come from the same list.
fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(jobs::create, jobs::list))
        .routes(routes!(jobs::get, jobs::update, jobs::delete))
        .routes(routes!(jobs::execute))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::history))
        .routes(routes!(jobs::next_fires))
        .routes(routes!(tasks::get))
        .routes(routes!(tasks::cancel))
        .routes(routes!(executors::list))
        .routes(routes!(executors::get))
        .routes(routes!(executors::enable))
        .routes(routes!(executors::disable))
        .routes(routes!(system::status))
        .routes(routes!(system::get_config, system::put_config))
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = routes().split_for_parts();
    doc.paths.paths.insert(
        "/api/openapi.json".to_owned(),
        utoipa::openapi::path::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .tag("system")
                .summary(Some("This document"))
                .response(
                    "200",
                    utoipa::openapi::Response::new("The OpenAPI document"),
                ),
        ),
    );
    doc
}

/// The router of an `executor` process: `/healthz` (alive), `/readyz` (its dispatch and coordination
/// answer) and `/api/executor` (who it is, its registration epoch, running tasks and the version of the
/// central configuration it applies). Jobs and tasks are managed through the schedulers' API.
pub fn executor_router(backends: jobsched::Backends, executor: Arc<jobsched::Executor>) -> Router {
    use axum::Json;
    use axum::routing::get;
    let ready = backends.clone();
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
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: "an executor serves /healthz, /readyz and /api/executor; jobs are managed through a scheduler".to_owned(),
            }
        })
        .layer(TraceLayer::new_for_http())
}

/// The API's router: the routes, the OpenAPI document, a JSON 404 for unknown paths, the caller layer,
/// a body limit (413 beyond `max_body_bytes`), tracing, and panics answered as 500 JSON.
pub fn router(state: SharedState, max_body_bytes: usize) -> Router {
    let (router, _) = routes().split_for_parts();
    let doc = Arc::new(openapi());
    router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: "no such endpoint; the API is described at /api/openapi.json".to_owned(),
            }
        })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "this endpoint does not take that method; see /api/openapi.json"
                    .to_owned(),
            }
        })
        .with_state(state)
        .layer(axum::middleware::from_fn(caller::admin_caller))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal",
                message: "the server failed on this request; it has been logged".to_owned(),
            }
            .into_response()
        }))
}
