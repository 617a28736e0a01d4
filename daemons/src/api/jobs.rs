//! `/api/jobs…`: create, list, read, change, delete, run now, cancel, history, next fires.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use jobsched::storage::JobWrite;
use jobsched::{
    ExecutionQuery, ExecutionRecord, Job, JobId, JobQuery, JobSpec, Page, PageRequest, Params,
    Role, TaskStatus,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::audit;
use super::error::{ApiJson, ApiQuery, OptionalJson};
use super::view::{job_detail, job_view, record_view};
use super::{ApiError, Caller, ErrorBody, SharedState};

/// `page` and `page_size` of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    /// Page number, from 1 (default 1).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page: Option<u32>,
    /// Items per page, 1–1000 (default 50).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page_size: Option<u32>,
}

impl Paging {
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        let d = PageRequest::default();
        Ok(PageRequest::new(
            self.page.unwrap_or(d.page),
            self.page_size.unwrap_or(d.page_size),
        )?)
    }
}

/// Filters of `GET /api/jobs`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobFilter {
    /// Jobs whose name contains this text.
    #[param(nullable = false)]
    pub name: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) jobs.
    #[param(nullable = false)]
    pub enabled: Option<bool>,
    /// Only jobs of this owner.
    #[param(nullable = false)]
    pub owner: Option<String>,
    /// Only jobs scheduled this way.
    #[param(nullable = false, inline)]
    pub schedule_type: Option<jobsched::ScheduleType>,
    /// Only jobs whose last run is in one of these statuses: names or codes, comma-separated
    /// (`failed,timed_out,lost`).
    #[param(
        nullable = false,
        pattern = r"^\s*(queued|succeeded|failed|timed_out|cancelled|running|dispatched|lost|skipped|[0-8])\s*(,\s*(queued|succeeded|failed|timed_out|cancelled|running|dispatched|lost|skipped|[0-8])\s*)*$"
    )]
    pub last_status: Option<String>,
    /// Sort by `job_id` (default), `name` or `update_time`.
    #[param(nullable = false, inline)]
    pub sort: Option<jobsched::JobOrder>,
    /// Reverse the order.
    #[param(nullable = false)]
    pub desc: Option<bool>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page: Option<u32>,
    /// Items per page, 1–1000.
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page_size: Option<u32>,
}

/// Filters of `GET /api/jobs/{jobId}/history`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryFilter {
    /// Only these statuses: names or codes, comma-separated (`failed,timed_out` or `2,3`).
    #[param(
        nullable = false,
        pattern = r"^\s*(queued|succeeded|failed|timed_out|cancelled|running|dispatched|lost|skipped|[0-8])\s*(,\s*(queued|succeeded|failed|timed_out|cancelled|running|dispatched|lost|skipped|[0-8])\s*)*$"
    )]
    pub status: Option<String>,
    /// Only runs fired at or after this time (RFC 3339).
    #[param(format = DateTime, nullable = false)]
    pub from: Option<String>,
    /// Only runs fired before this time (RFC 3339).
    #[param(format = DateTime, nullable = false)]
    pub to: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page: Option<u32>,
    /// Items per page, 1–1000.
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub page_size: Option<u32>,
}

/// Body of `POST /api/jobs/{jobId}/execute` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// Parameters for this run, merged over the job's.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Params>,
}

/// Answer of `POST /api/jobs/{jobId}/execute`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Executed {
    /// The new task.
    pub task_id: String,
    /// The job.
    pub job_id: String,
}

/// Answer of `POST /api/jobs/{jobId}/cancel`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Cancelled {
    /// The job.
    pub job_id: String,
    /// How many running or queued tasks were cancelled.
    pub cancelled: u64,
}

/// Answer of `GET /api/jobs/{jobId}/next-fires`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NextFires {
    /// The job.
    pub job_id: String,
    /// Its next fire times (UTC), soonest first; empty for a disabled or request-only job.
    pub next_fires: Vec<DateTime<Utc>>,
}

/// `count` of `GET /api/jobs/{jobId}/next-fires`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Count {
    /// How many fire times (1–1000, default 10).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub count: Option<u32>,
}

pub(super) fn job_id(raw: &str) -> Result<JobId, ApiError> {
    Ok(JobId::new(raw)?)
}

fn time(field: &str, raw: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::invalid(field, format!("'{s}' is not an RFC 3339 time: {e}"))
                })
        })
        .transpose()
}

/// Parses `failed,2,…` into statuses: each a name (lower case) or a code, none empty.
pub(super) fn statuses(raw: &Option<String>) -> Result<Vec<TaskStatus>, ApiError> {
    let Some(raw) = raw.as_deref() else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .map(|s| {
            let well_formed = (s.len() == 1 && s.as_bytes()[0].is_ascii_digit())
                || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            if !well_formed {
                return Err(ApiError::invalid(
                    "status",
                    format!(
                        "'{s}' is not a status: give names or codes separated by commas, e.g. failed,timed_out or 2,3"
                    ),
                ));
            }
            TaskStatus::parse(s).map_err(ApiError::from)
        })
        .collect()
}

/// A job the caller may see.
async fn visible_job(s: &SharedState, caller: &Caller, raw: &str) -> Result<Job, ApiError> {
    let job = s.scheduler.get_job(&job_id(raw)?).await?;
    caller.may_see(&job)?;
    Ok(job)
}

/// Gives a new job its owner (the caller, unless an administrator names another) and refuses a change of
/// owner by anyone but an administrator.
pub(super) fn owner_rules(
    caller: &Caller,
    spec: &mut JobSpec,
    current: Option<&Job>,
) -> Result<(), ApiError> {
    // Owners are user names, kept in lower case.
    if let Some(o) = spec.owner.as_mut() {
        *o = o.to_lowercase();
    }
    match &spec.owner {
        Some(o) if caller.role != Role::Admin && *o != caller.user => Err(ApiError::forbidden(
            format!("only administrators give a job another owner than themselves ('{o}')"),
        )),
        None if current.is_none() => {
            spec.owner = Some(caller.user.clone());
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Create a job. Its owner is the caller (an administrator may name another). A param given as
/// `{"secret": "value"}` is stored encrypted and shown as `"***"`.
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", request_body = JobSpec,
    responses((status = 201, body = Job, description = "Created"),
        (status = 400, body = ErrorBody, description = "A field is invalid (the message names it)"),
        (status = 409, body = ErrorBody, description = "The job_id is taken")))]
pub async fn create(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiJson(mut spec): ApiJson<JobSpec>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let id = spec.job_id.clone().unwrap_or_else(JobId::generate);
    spec.job_id = Some(id.clone());
    let entry = caller.audit("job.create", format!("job:{id}"));
    let result = async {
        caller.may_change(None)?;
        owner_rules(&caller, &mut spec, None)?;
        if let Some(p) = spec.params.as_mut() {
            s.seal(&id, p, None)?;
        }
        let job = spec.build(s.scheduler.clock().now())?;
        let mut entry = entry.clone();
        entry.detail = serde_json::json!({ "after": job_detail(&job, 1) });
        let mut stored = s
            .scheduler
            .audited(&[entry])
            .write_jobs(&[JobWrite::Create(&job)])
            .await?;
        Ok(stored.remove(0))
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    Ok((StatusCode::CREATED, Json(job_view(result?))))
}

/// List jobs, by id (a `user` sees only their own).
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(JobFilter),
    responses((status = 200, body = Page<Job>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(f): ApiQuery<JobFilter>,
) -> Result<Json<Page<Job>>, ApiError> {
    let page = Paging {
        page: f.page,
        page_size: f.page_size,
    }
    .request()?;
    let owner = match caller.owner_scope() {
        Some(o) => Some(o.to_owned()),
        None => f.owner,
    };
    let q = JobQuery {
        name: f.name,
        enabled: f.enabled,
        owner,
        schedule_type: f.schedule_type,
        last_status: statuses(&f.last_status)?,
        order: f.sort.unwrap_or_default(),
        descending: f.desc.unwrap_or(false),
        page,
    };
    Ok(Json(s.scheduler.list_jobs(&q).await?.map(job_view)))
}

/// One job.
#[utoipa::path(get, path = "/api/jobs/{jobId}", tag = "jobs",
    params(("jobId" = jobsched::JobId, Path, description = "The job's id")),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(job_view(visible_job(&s, &caller, &id).await?)))
}

/// Change a job: only the fields given (with `version`, only if unchanged since). A secret param sent
/// back as `"***"` keeps its stored value.
#[utoipa::path(put, path = "/api/jobs/{jobId}", tag = "jobs", request_body = JobSpec,
    params(("jobId" = jobsched::JobId, Path, description = "The job's id")),
    responses((status = 200, body = Job), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Changed since `version`")))]
pub async fn update(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(mut spec): ApiJson<JobSpec>,
) -> Result<Json<Job>, ApiError> {
    let entry = caller.audit("job.update", format!("job:{id}"));
    let result = async {
        let job = visible_job(&s, &caller, &id).await?;
        caller.may_change(Some(&job))?;
        if let Some(given) = &spec.job_id
            && *given != job.job_id
        {
            return Err(ApiError::invalid(
                "job_id",
                format!("the body names '{given}', the path '{}'", job.job_id),
            ));
        }
        owner_rules(&caller, &mut spec, Some(&job))?;
        if let Some(p) = spec.params.as_mut() {
            s.seal(&job.job_id, p, Some(&job.params))?;
        }
        let changed = spec.apply(&job, s.scheduler.clock().now())?;
        let mut entry = entry.clone();
        entry.detail = serde_json::json!({
            "before": job_detail(&job, job.version),
            "after": job_detail(&changed, job.version + 1),
        });
        let mut stored = s
            .scheduler
            .audited(&[entry])
            .write_jobs(&[JobWrite::Update(&changed)])
            .await?;
        Ok(stored.remove(0))
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    Ok(Json(job_view(result?)))
}

/// Delete a job (its history is kept).
#[utoipa::path(delete, path = "/api/jobs/{jobId}", tag = "jobs",
    params(("jobId" = jobsched::JobId, Path, description = "The job's id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let entry = caller.audit("job.delete", format!("job:{id}"));
    let result = async {
        let job = visible_job(&s, &caller, &id).await?;
        caller.may_change(Some(&job))?;
        let mut entry = entry.clone();
        entry.detail = serde_json::json!({ "before": job_detail(&job, job.version) });
        s.scheduler
            .audited(&[entry])
            .write_jobs(&[JobWrite::Delete {
                job_id: &job.job_id,
                expected_version: Some(job.version),
            }])
            .await?;
        Ok(())
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    result.map(|()| StatusCode::NO_CONTENT)
}

/// Run a job now; answers with the new task's id at once. `params` are merged over the job's (secret
/// ones as `{"secret": "value"}`).
#[utoipa::path(post, path = "/api/jobs/{jobId}/execute", tag = "jobs", request_body(content = Option<ExecuteRequest>),
    params(("jobId" = jobsched::JobId, Path, description = "The job's id")),
    responses((status = 202, body = Executed), (status = 404, body = ErrorBody)))]
pub async fn execute(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ExecuteRequest>,
) -> Result<(StatusCode, Json<Executed>), ApiError> {
    let mut entry = caller.audit("job.execute", format!("job:{id}"));
    let result = async {
        let job = visible_job(&s, &caller, &id).await?;
        caller.may_change(Some(&job))?;
        let mut params = body.and_then(|b| b.params);
        if let Some(p) = params.as_mut() {
            s.seal(&job.job_id, p, Some(&job.params))?;
            jobsched::check_params("params", p)?;
            // The task carries the job's params with these over them: that too must fit and not collide.
            let mut merged = job.params.clone();
            merged.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
            jobsched::check_params("params (merged over the job's)", &merged)?;
        }
        let task = s.scheduler.execute(&job.job_id, params).await?;
        Ok(Executed {
            task_id: task.to_string(),
            job_id: job.job_id.to_string(),
        })
    }
    .await;
    if let Ok(e) = &result {
        entry.detail = serde_json::json!({ "task_id": e.task_id });
    }
    audit::outcome(&s, entry, &result).await;
    Ok((StatusCode::ACCEPTED, Json(result?)))
}

/// Cancel the job's running and queued tasks.
#[utoipa::path(post, path = "/api/jobs/{jobId}/cancel", tag = "jobs",
    params(("jobId" = jobsched::JobId, Path, description = "The job's id")),
    responses((status = 200, body = Cancelled), (status = 404, body = ErrorBody)))]
pub async fn cancel(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Cancelled>, ApiError> {
    let mut entry = caller.audit("job.cancel", format!("job:{id}"));
    let result = async {
        let job = visible_job(&s, &caller, &id).await?;
        caller.may_change(Some(&job))?;
        let n = s.scheduler.cancel_job(&job.job_id).await?;
        Ok(Cancelled {
            job_id: job.job_id.to_string(),
            cancelled: n as u64,
        })
    }
    .await;
    if let Ok(c) = &result {
        entry.detail = serde_json::json!({ "cancelled": c.cancelled });
    }
    audit::outcome(&s, entry, &result).await;
    Ok(Json(result?))
}

/// The job's runs (every attempt), newest first.
#[utoipa::path(get, path = "/api/jobs/{jobId}/history", tag = "jobs",
    params(("jobId" = jobsched::JobId, Path, description = "The job's id"), HistoryFilter),
    responses((status = 200, body = Page<ExecutionRecord>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn history(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(f): ApiQuery<HistoryFilter>,
) -> Result<Json<Page<ExecutionRecord>>, ApiError> {
    let job_id = job_id(&id)?;
    // A deleted job's history is still readable by those who see every job; an existing one must be
    // visible to the caller, and a `user` sees only its own runs — not those of an earlier job that had
    // its id (ids can be taken again after a delete).
    let mut created_from = None;
    match s.scheduler.get_job(&job_id).await {
        Ok(job) => {
            caller.may_see(&job)?;
            if caller.owner_scope().is_some() {
                created_from = Some(job.create_time);
            }
        }
        Err(jobsched::Error::NotFound { .. }) if caller.owner_scope().is_none() => {}
        Err(e) => return Err(e.into()),
    }
    let q = ExecutionQuery {
        job_id: Some(job_id),
        statuses: statuses(&f.status)?,
        from: time("from", &f.from)?,
        to: time("to", &f.to)?,
        page: Paging {
            page: f.page,
            page_size: f.page_size,
        }
        .request()?,
        created_from,
        ..ExecutionQuery::default()
    };
    let page = s.scheduler.history(&q).await?;
    if page.total == 0 {
        // An id that never existed is a 404, not an empty history.
        s.scheduler.get_job(q.job_id.as_ref().expect("set")).await?;
    }
    Ok(Json(page.map(record_view)))
}

/// The job's next fire times.
#[utoipa::path(get, path = "/api/jobs/{jobId}/next-fires", tag = "jobs",
    params(("jobId" = jobsched::JobId, Path, description = "The job's id"), Count),
    responses((status = 200, body = NextFires), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn next_fires(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(c): ApiQuery<Count>,
) -> Result<Json<NextFires>, ApiError> {
    let count = c.count.unwrap_or(10);
    if !(1..=1000).contains(&count) {
        return Err(ApiError::invalid(
            "count",
            format!("must be between 1 and 1000, got {count}"),
        ));
    }
    let job = visible_job(&s, &caller, &id).await?;
    let next_fires = s.scheduler.next_fires(&job.job_id, count as usize).await?;
    Ok(Json(NextFires {
        job_id: job.job_id.to_string(),
        next_fires,
    }))
}
