//! `GET /jobs/new` and `GET /jobs/{id}/edit`: the job form, with every field of the model; the page's
//! script sends it as a `JobSpec` to `POST /api/jobs` or `PUT /api/jobs/{id}` and shows the API's
//! validation message next to the field it names. `GET /ui/preview` answers the form's live preview of
//! the next fire times, in the job's zone.

use askama::Template;
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use chrono::{DateTime, Utc};
use jobsched::{
    Job, JobSpec, MisfirePolicy, OverlapPolicy, RetryBackoff, RoutingStrategy, ScheduleType,
};
use serde::{Deserialize, Serialize};

use super::page::{Chrome, Html, PageResult};
use crate::api::{ApiError, Caller, SharedState};

/// One param row of the form.
struct ParamRow {
    name: String,
    value: String,
    secret: bool,
    json: bool,
}

#[derive(Template)]
#[template(path = "job_form.html")]
struct FormPage {
    chrome: Chrome,
    /// `None` for a new job.
    id: Option<String>,
    job: Job,
    start_local: String,
    labels: String,
    params: Vec<ParamRow>,
    zones: Vec<&'static str>,
    groups: Vec<String>,
    schedule_types: Vec<&'static str>,
    backoffs: Vec<&'static str>,
    routings: Vec<&'static str>,
    misfires: Vec<&'static str>,
    overlaps: Vec<&'static str>,
    secrets_enabled: bool,
}

fn names<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().copied().map(f).collect()
}

async fn form(s: &SharedState, caller: &Caller, job: Job, id: Option<String>) -> PageResult {
    let mut groups: Vec<String> = s
        .scheduler
        .executors()
        .await?
        .into_iter()
        .map(|e| e.group)
        .filter(|g| !g.is_empty())
        .collect();
    groups.sort();
    groups.dedup();
    let title = match &id {
        Some(_) => format!("Edit {}", job.name),
        None => "New job".to_owned(),
    };
    Html::of(&FormPage {
        chrome: Chrome::new(caller, "jobs", title),
        id,
        start_local: job
            .start_time
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default(),
        labels: super::format::labels(&job.executor_labels, "\n"),
        params: job
            .params
            .iter()
            .map(|(k, v)| ParamRow {
                name: k.clone(),
                secret: v.as_str() == Some(crate::secrets::REDACTED),
                json: !v.is_string(),
                value: super::format::param_text(v),
            })
            .collect(),
        zones: chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect(),
        groups,
        schedule_types: names(ScheduleType::ALL, ScheduleType::as_str),
        backoffs: names(RetryBackoff::ALL, RetryBackoff::as_str),
        routings: names(RoutingStrategy::ALL, RoutingStrategy::as_str),
        misfires: names(MisfirePolicy::ALL, MisfirePolicy::as_str),
        overlaps: names(OverlapPolicy::ALL, OverlapPolicy::as_str),
        secrets_enabled: s.keyring.is_some(),
        job,
    })
}

/// `GET /jobs/new`.
pub async fn new(State(s): State<SharedState>, Extension(caller): Extension<Caller>) -> PageResult {
    caller.may_write()?;
    // A valid job to start from; the form shows its defaults with an empty name and command.
    let mut job = JobSpec::cron("new job", "0 * * * *", "true")
        .with_owner(caller.user.clone())
        .build(Utc::now())?;
    job.name.clear();
    job.command.clear();
    form(&s, &caller, job, None).await
}

/// `GET /jobs/{id}/edit`.
pub async fn edit(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> PageResult {
    let job = crate::api::jobs::get(
        State(s.clone()),
        Extension(caller.clone()),
        Path(id.clone()),
    )
    .await?
    .0;
    caller.may_change(Some(&job))?;
    form(&s, &caller, job, Some(id)).await
}

/// The schedule fields of the form.
#[derive(Debug, Default, Deserialize)]
pub struct PreviewQuery {
    #[serde(default)]
    schedule_type: String,
    #[serde(default)]
    cron_expression: String,
    #[serde(default)]
    interval: String,
    #[serde(default)]
    start_time: String,
    #[serde(default)]
    time_zone: String,
}

/// One previewed fire.
#[derive(Debug, Serialize)]
pub struct Fire {
    /// In the job's zone.
    pub local: String,
    /// In UTC (RFC 3339).
    pub utc: DateTime<Utc>,
}

/// The preview's answer.
#[derive(Debug, Serialize)]
pub struct Preview {
    /// The job's zone.
    pub time_zone: String,
    /// The next fires (empty for `manual`).
    pub fires: Vec<Fire>,
}

/// `GET /ui/preview`: the next 10 fires of a schedule as the form has it, or the API's error naming the
/// field that is wrong.
pub async fn preview(Query(q): Query<PreviewQuery>) -> Result<Json<Preview>, ApiError> {
    let opt = super::format::nonempty;
    let interval = opt(&q.interval)
        .map(|i| {
            i.parse::<u32>().map_err(|_| {
                ApiError::invalid("interval", format!("'{i}' is not a number of seconds"))
            })
        })
        .transpose()?;
    let start_time = opt(&q.start_time)
        .map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| ApiError::invalid("start_time", format!("'{t}' is not a time: {e}")))
        })
        .transpose()?;
    let schedule_type = opt(&q.schedule_type)
        .map(|t| ScheduleType::parse(&t))
        .transpose()?;
    let spec = JobSpec {
        name: Some("preview".to_owned()),
        command: Some("true".to_owned()),
        schedule_type,
        cron_expression: opt(&q.cron_expression),
        interval,
        start_time,
        time_zone: opt(&q.time_zone),
        ..JobSpec::default()
    };
    let now = Utc::now();
    let job = spec.build(now)?;
    let zone = job.time_zone;
    let fires = job
        .schedule()?
        .upcoming(now, 10)
        .into_iter()
        .map(|t| Fire {
            local: t
                .with_timezone(&zone)
                .format("%a %Y-%m-%d %H:%M:%S %Z")
                .to_string(),
            utc: t,
        })
        .collect();
    Ok(Json(Preview {
        time_zone: zone.name().to_owned(),
        fires,
    }))
}
