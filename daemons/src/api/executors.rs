//! `/api/executors…`: list, one, enable, disable.

use axum::Json;
use axum::extract::{Extension, Path, State};
use jobsched::{ExecutorId, ExecutorRecord, Page};

use super::audit;
use super::{ApiError, Caller, ErrorBody, SharedState};

fn executor_id(raw: &str) -> Result<ExecutorId, ApiError> {
    Ok(ExecutorId::new(raw)?)
}

/// Every executor known (online or not), by id.
#[utoipa::path(get, path = "/api/executors", tag = "executors",
    responses((status = 200, body = Page<ExecutorRecord>)))]
pub async fn list(State(s): State<SharedState>) -> Result<Json<Page<ExecutorRecord>>, ApiError> {
    let items = s.scheduler.executors().await?;
    let n = items.len() as u32;
    Ok(Json(Page {
        total: u64::from(n),
        total_capped: false,
        page: 1,
        page_size: n.max(1),
        items,
    }))
}

/// One executor.
#[utoipa::path(get, path = "/api/executors/{executorId}", tag = "executors",
    params(("executorId" = jobsched::ExecutorId, Path, description = "The executor's id")),
    responses((status = 200, body = ExecutorRecord), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<ExecutorRecord>, ApiError> {
    Ok(Json(s.scheduler.executor(&executor_id(&id)?).await?))
}

async fn set_enabled(
    s: &SharedState,
    caller: &Caller,
    raw: &str,
    enabled: bool,
) -> Result<Json<ExecutorRecord>, ApiError> {
    let action = if enabled {
        "executor.enable"
    } else {
        "executor.disable"
    };
    let entry = caller.audit(action, format!("executor:{raw}"));
    let result = async {
        caller.may_administer()?;
        Ok(s.scheduler
            .audited(std::slice::from_ref(&entry))
            .set_executor_enabled(&executor_id(raw)?, enabled)
            .await?)
    }
    .await;
    audit::on_failure(s, &entry, &result).await;
    Ok(Json(result?))
}

/// Let an executor take new tasks again.
#[utoipa::path(post, path = "/api/executors/{executorId}/enable", tag = "executors",
    params(("executorId" = jobsched::ExecutorId, Path, description = "The executor's id")),
    responses((status = 200, body = ExecutorRecord), (status = 404, body = ErrorBody)))]
pub async fn enable(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ExecutorRecord>, ApiError> {
    set_enabled(&s, &caller, &id, true).await
}

/// Stop giving an executor new tasks (its running ones finish).
#[utoipa::path(post, path = "/api/executors/{executorId}/disable", tag = "executors",
    params(("executorId" = jobsched::ExecutorId, Path, description = "The executor's id")),
    responses((status = 200, body = ExecutorRecord), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ExecutorRecord>, ApiError> {
    set_enabled(&s, &caller, &id, false).await
}
