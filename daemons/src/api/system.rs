//! `/api/system…` (status, central configuration) and the health endpoints.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use jobsched::{SystemConfig, SystemStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::audit;
use super::error::{ApiJson, ApiQuery};
use super::{ApiError, Caller, ErrorBody, SharedState};

/// `GET /api/system/status`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    /// What this process runs (`standalone`, `scheduler`, `executor`).
    pub roles: Vec<String>,
    /// Seconds since this process started.
    pub process_uptime_secs: u64,
    /// The built-in executor's id, if this process runs one.
    pub executor_id: Option<String>,
    /// The scheduler's view of the system.
    #[serde(flatten)]
    pub status: SystemStatus,
}

/// The central configuration with its version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigView {
    /// Increases with every change (0: never changed, defaults).
    pub version: u64,
    /// The settings.
    pub config: SystemConfig,
}

/// `expected_version` of `PUT /api/system/config`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExpectedVersion {
    /// Apply only if the configuration is still at this version (409 otherwise).
    #[param(nullable = false)]
    pub expected_version: Option<u64>,
}

/// Health of one check.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or what failed.
    pub status: String,
}

/// Version, uptime, roles, counts of jobs, online executors, running and queued tasks, and the last
/// hour's outcomes and success rate.
#[utoipa::path(get, path = "/api/system/status", tag = "system",
    responses((status = 200, body = StatusView), (status = 503, body = ErrorBody)))]
pub async fn status(State(s): State<SharedState>) -> Result<Json<StatusView>, ApiError> {
    Ok(Json(StatusView {
        roles: s.roles.iter().map(|r| (*r).to_owned()).collect(),
        process_uptime_secs: s.started.elapsed().as_secs(),
        executor_id: s.executor_id.clone(),
        status: s.scheduler.status().await?,
    }))
}

/// The central configuration.
#[utoipa::path(get, path = "/api/system/config", tag = "system",
    responses((status = 200, body = ConfigView)))]
pub async fn get_config(State(s): State<SharedState>) -> Result<Json<ConfigView>, ApiError> {
    let v = s.scheduler.config().await?;
    Ok(Json(ConfigView {
        version: v.version,
        config: v.value,
    }))
}

/// Replace the central configuration (absent fields take their defaults); every scheduler and executor
/// applies it.
#[utoipa::path(put, path = "/api/system/config", tag = "system", request_body = SystemConfig,
    params(ExpectedVersion),
    responses((status = 200, body = ConfigView), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Changed since `expected_version`")))]
pub async fn put_config(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<ExpectedVersion>,
    ApiJson(config): ApiJson<SystemConfig>,
) -> Result<Json<ConfigView>, ApiError> {
    let mut entry = caller.audit("config.update", "config");
    let result = async {
        caller.may_administer()?;
        let before = s.scheduler.config().await?;
        entry.detail = serde_json::json!({"before": before.value, "after": config});
        Ok(s.scheduler
            .audited(std::slice::from_ref(&entry))
            .update_config(config.clone(), q.expected_version)
            .await?)
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    Ok(Json(ConfigView {
        version: result?,
        config,
    }))
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Ready: every backend answers.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(s): State<SharedState>) -> (StatusCode, Json<Health>) {
    match s.scheduler.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok".to_owned(),
            }),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: e.to_string(),
            }),
        ),
    }
}

/// `GET /metrics`: every series in the Prometheus text format, for the metrics token or an
/// administrator's or read-only user's credential (a `user` sees only its own jobs, and the series
/// cover every job).
pub async fn metrics(
    State(s): State<SharedState>,
    scrape: Option<Extension<crate::metrics::Scrape>>,
    caller: Option<Extension<Caller>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if scrape.is_none() {
        match caller {
            Some(Extension(c)) if c.owner_scope().is_none() => {}
            Some(Extension(c)) => {
                return ApiError::forbidden(format!(
                    "user '{}' sees only its own jobs; /metrics covers all of them: use the metrics \
                     token, or an administrator's or read-only user's token",
                    c.user
                ))
                .into_response();
            }
            None => {
                return ApiError::unauthorized("unauthenticated", "/metrics needs a token")
                    .into_response();
            }
        }
    }
    let m = &s.telemetry.metrics;
    let sch = &s.scheduler;
    m.observe_backend("store", crate::metrics::answers(sch.storage().ping()).await);
    m.observe_backend(
        "dispatch",
        crate::metrics::answers(sch.dispatcher().ping()).await,
    );
    m.observe_backend(
        "coordinator",
        crate::metrics::answers(sch.coordinator().ping()).await,
    );
    m.observe_engine(s.scheduler.engine_stats().await.as_ref());
    m.observe_dispatch(s.scheduler.dispatch_stats());
    s.telemetry.answer()
}
