//! `/api/tasks/{taskId}…`: one run of a job with its attempts, output and error; cancel.

use axum::Json;
use axum::extract::{Extension, Path, State};
use jobsched::{CancelOutcome, ExecutionRecord, TaskId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit;
use super::view::record_view;
use super::{ApiError, Caller, ErrorBody, SharedState};

/// A task: its latest attempt's record (status, executor, times, output, error, exit code) and every
/// attempt, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    /// The latest attempt.
    #[serde(flatten)]
    pub latest: ExecutionRecord,
    /// Every attempt, oldest first (earlier ones may have been purged).
    pub attempts: Vec<ExecutionRecord>,
}

fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    Ok(TaskId::new(raw)?)
}

/// The task's attempts, if the caller may see its job.
pub(super) async fn attempts(
    s: &SharedState,
    caller: &Caller,
    raw: &str,
) -> Result<Vec<ExecutionRecord>, ApiError> {
    let attempts = s.scheduler.task(&task_id(raw)?).await?;
    if caller.owner_scope().is_some() {
        let job = s.scheduler.get_job(&attempts[0].job_id).await?;
        caller.may_see(&job)?;
        // A run of an earlier job that had this id (ids can be taken again after a delete) is not theirs.
        if attempts[0].create_time < job.create_time {
            return Err(jobsched::Error::not_found("task", raw).into());
        }
    }
    Ok(attempts)
}

/// One task with its output and error.
#[utoipa::path(get, path = "/api/tasks/{taskId}", tag = "tasks",
    params(("taskId" = jobsched::TaskId, Path, description = "The task's id")),
    responses((status = 200, body = TaskView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let attempts: Vec<ExecutionRecord> = attempts(&s, &caller, &id)
        .await?
        .into_iter()
        .map(record_view)
        .collect();
    let latest = attempts.last().cloned().expect("a task has an attempt");
    Ok(Json(TaskView { latest, attempts }))
}

/// Cancel a task: a queued one is cancelled at once, a running one is killed on its executor.
#[utoipa::path(post, path = "/api/tasks/{taskId}/cancel", tag = "tasks",
    params(("taskId" = jobsched::TaskId, Path, description = "The task's id")),
    responses((status = 200, body = CancelOutcome), (status = 404, body = ErrorBody)))]
pub async fn cancel(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<CancelOutcome>, ApiError> {
    let entry = caller.audit("task.cancel", format!("task:{id}"));
    let result = async {
        let attempts = attempts(&s, &caller, &id).await?;
        // A `user` passed `attempts` only for their own job; read-only callers change nothing.
        caller.may_write()?;
        Ok(s.scheduler.cancel_task(&attempts[0].task_id).await?)
    }
    .await;
    audit::outcome(&s, entry, &result).await;
    Ok(Json(result?))
}
