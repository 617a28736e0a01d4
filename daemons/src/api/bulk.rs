//! `POST /api/jobs/bulk`: creates or changes up to 10,000 jobs in one transaction through the store's
//! batch path (what `jobsched jobs import` sends). A job whose id exists is changed as `PUT` changes it
//! (the fields given); one that does not is created. One bad job fails the whole request, and the error
//! names it by its place in the list.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, State};
use jobsched::storage::JobWrite;
use jobsched::{Error, Job, JobId, JobSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit;
use super::error::ApiJson;
use super::{ApiError, Caller, ErrorBody, SharedState};

/// Most jobs in one request.
pub const MAX_JOBS: usize = 10_000;

/// Body of `POST /api/jobs/bulk`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkJobs {
    /// The jobs (1–10,000), each as the body of `POST /api/jobs` (with its `name`); a job without
    /// `job_id` is created with a generated one.
    #[schema(min_items = 1, max_items = 10000)]
    pub jobs: Vec<JobSpec>,
}

/// Answer of `POST /api/jobs/bulk`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BulkAnswer {
    /// Ids of the jobs created.
    pub created: Vec<String>,
    /// Ids of the jobs changed.
    pub updated: Vec<String>,
}

/// An error of the job at `i`, with its field named within the list.
fn at(i: usize, e: impl Into<ApiError>) -> ApiError {
    let e: ApiError = e.into();
    ApiError {
        message: format!("jobs[{i}]: {}", e.message),
        ..e
    }
}

/// Create or change up to 10,000 jobs at once (all or none).
#[utoipa::path(post, path = "/api/jobs/bulk", tag = "jobs", request_body = BulkJobs,
    responses((status = 200, body = BulkAnswer),
        (status = 400, body = ErrorBody, description = "A job is invalid (the message names it: jobs[i])"),
        (status = 409, body = ErrorBody, description = "A job changed meanwhile, or belongs to another user")))]
pub async fn import(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<BulkJobs>,
) -> Result<Json<BulkAnswer>, ApiError> {
    let mut entry = caller.audit("job.import", "jobs");
    let result = async {
        caller.may_change(None)?;
        let mut specs = req.jobs;
        if specs.is_empty() || specs.len() > MAX_JOBS {
            return Err(ApiError::invalid(
                "jobs",
                format!("must hold 1 to {MAX_JOBS} jobs, got {}", specs.len()),
            ));
        }
        for spec in &mut specs {
            spec.job_id.get_or_insert_with(JobId::generate);
        }
        let ids: Vec<JobId> = specs.iter().filter_map(|s| s.job_id.clone()).collect();
        let existing: HashMap<JobId, Job> = s
            .scheduler
            .storage()
            .get_jobs(&ids)
            .await?
            .into_iter()
            .map(|j| (j.job_id.clone(), j))
            .collect();
        let now = s.scheduler.clock().now();
        let mut jobs = Vec::with_capacity(specs.len());
        let mut created = Vec::new();
        let mut updated = Vec::new();
        for (i, mut spec) in specs.into_iter().enumerate() {
            let id = spec.job_id.clone().expect("set above");
            if spec.name.is_none() {
                // Every job of an import is a whole definition, also when it changes an existing one.
                return Err(at(i, ApiError::invalid("name", "is required")));
            }
            let current = existing.get(&id);
            if let Some(cur) = current
                && caller.owner_scope().is_some_and(|me| cur.owner != me)
            {
                return Err(at(
                    i,
                    Error::conflict(format!("job '{id}' exists and belongs to another user")),
                ));
            }
            super::jobs::owner_rules(&caller, &mut spec, current).map_err(|e| at(i, e))?;
            if let Some(p) = spec.params.as_mut() {
                s.seal(&id, p, current.map(|c| &c.params))
                    .map_err(|e| at(i, e))?;
            }
            let job = match current {
                Some(cur) => {
                    updated.push(id.to_string());
                    spec.apply(cur, now)
                }
                None => {
                    created.push(id.to_string());
                    spec.build(now)
                }
            }
            .map_err(|e| at(i, e))?;
            jobs.push(job);
        }
        let writes: Vec<JobWrite<'_>> = jobs
            .iter()
            .map(|j| {
                if existing.contains_key(&j.job_id) {
                    JobWrite::Update(j)
                } else {
                    JobWrite::Create(j)
                }
            })
            .collect();
        let mut entry = entry.clone();
        entry.detail = serde_json::json!({ "created": created, "updated": updated });
        s.scheduler.audited(&[entry]).write_jobs(&writes).await?;
        Ok(BulkAnswer { created, updated })
    }
    .await;
    if let Err(e) = &result {
        entry.detail = serde_json::json!({ "error": e.message });
    }
    audit::on_failure(&s, &entry, &result).await;
    Ok(Json(result?))
}
