//! `GET /jobs` (the list: filters, sorting, pages, enable/disable, run now, delete) and `GET /jobs/{id}`
//! (definition, next fires, run history with filters).

use askama::Template;
use axum::extract::{Extension, Path, Query, State};
use chrono::Utc;
use jobsched::{Job, JobOrder, ScheduleType, TaskStatus};
use serde::Deserialize;

use super::format::{self, Pager};
use super::page::{Chrome, Html, PageResult};
use crate::api::jobs::{self as api, HistoryFilter, JobFilter};
use crate::api::{Caller, SharedState};

/// How a job's schedule reads.
pub fn schedule_text(j: &Job) -> String {
    match j.schedule_type {
        ScheduleType::Cron => format!(
            "cron {} ({})",
            j.cron_expression.as_deref().unwrap_or(""),
            j.time_zone.name()
        ),
        ScheduleType::FixedRate => format!("every {} s", j.interval.unwrap_or(0)),
        ScheduleType::FixedDelay => format!("{} s after each run", j.interval.unwrap_or(0)),
        ScheduleType::Once => j.start_time.map_or("once".to_owned(), |t| {
            format!("once at {}", t.format("%Y-%m-%d %H:%M:%S UTC"))
        }),
        ScheduleType::Manual => "manual".to_owned(),
    }
}

/// One row of the list.
struct Row {
    id: String,
    name: String,
    owner: String,
    enabled: bool,
    schedule: String,
    last: Option<(&'static str, &'static str, String)>,
    task: String,
}

/// The list's filters as given (strings, so the form shows them back).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    enabled: String,
    #[serde(default)]
    schedule_type: String,
    #[serde(default)]
    last_status: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    desc: String,
    page: Option<u32>,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    chrome: Chrome,
    q: ListQuery,
    rows: Vec<Row>,
    pager: Pager,
    schedule_types: Vec<&'static str>,
    last_statuses: Vec<(&'static str, &'static str)>,
    orders: Vec<&'static str>,
    sort_links: Vec<(&'static str, &'static str, String, &'static str)>,
}

/// `GET /jobs`.
pub async fn list(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let filter = JobFilter {
        name: format::nonempty(&q.name),
        owner: format::nonempty(&q.owner),
        enabled: match q.enabled.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        schedule_type: format::nonempty(&q.schedule_type)
            .map(|t| ScheduleType::parse(&t))
            .transpose()?,
        last_status: format::nonempty(&q.last_status),
        sort: JobOrder::ALL.iter().copied().find(|o| o.as_str() == q.sort),
        desc: Some(q.desc == "true"),
        page: q.page,
        page_size: Some(50),
    };
    let page = api::list(
        State(s.clone()),
        Extension(caller.clone()),
        crate::api::error::ApiQuery(filter),
    )
    .await?
    .0;
    // Each job's last run, in one read; a run of an earlier job that had the id is not this job's.
    let ids: Vec<_> = page.items.iter().map(|j| j.job_id.clone()).collect();
    let latest: std::collections::HashMap<_, _> = s
        .scheduler
        .storage()
        .latest_executions(&ids)
        .await?
        .into_iter()
        .map(|r| (r.job_id.clone(), r))
        .collect();
    let rows = page
        .items
        .iter()
        .map(|j| {
            let last = latest
                .get(&j.job_id)
                .filter(|r| r.create_time >= j.create_time);
            Row {
                id: j.job_id.to_string(),
                name: j.name.clone(),
                owner: j.owner.clone(),
                enabled: j.enabled,
                schedule: schedule_text(j),
                task: last.map(|r| r.task_id.to_string()).unwrap_or_default(),
                last: last.map(|r| {
                    (
                        r.status.as_str(),
                        format::status_class(r.status),
                        format::time(r.scheduled_time),
                    )
                }),
            }
        })
        .collect();
    let keep: Vec<(&str, String)> = vec![
        ("name", q.name.clone()),
        ("owner", q.owner.clone()),
        ("enabled", q.enabled.clone()),
        ("schedule_type", q.schedule_type.clone()),
        ("last_status", q.last_status.clone()),
        ("sort", q.sort.clone()),
        ("desc", q.desc.clone()),
    ];
    let pager = Pager::new("/jobs", &keep, page.page, page.page_size, page.total);
    let sort_links = [
        ("name", "Name"),
        ("job_id", "Id"),
        ("update_time", "Changed"),
    ]
    .into_iter()
    .map(|(key, label)| {
        let current = q.sort == key || (q.sort.is_empty() && key == "job_id");
        let desc = current && q.desc != "true";
        let mut pairs = keep[..4].to_vec();
        pairs.push(("sort", key.to_owned()));
        pairs.push(("desc", if desc { "true" } else { "" }.to_owned()));
        let aria = match (current, q.desc == "true") {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        };
        (key, label, format!("/jobs{}", format::query(&pairs)), aria)
    })
    .collect();
    Html::of(&JobsPage {
        chrome: Chrome::new(&caller, "jobs", "Jobs"),
        q,
        rows,
        pager,
        schedule_types: ScheduleType::ALL.iter().map(|t| t.as_str()).collect(),
        last_statuses: vec![
            ("succeeded", "succeeded"),
            ("failed,timed_out,lost", "failed, timed out or lost"),
            ("running,dispatched", "running"),
            ("queued", "queued"),
            ("cancelled,skipped", "cancelled or skipped"),
        ],
        orders: JobOrder::ALL.iter().map(|o| o.as_str()).collect(),
        sort_links,
    })
}

/// A run in a job's history.
pub struct Run {
    pub task_id: String,
    pub attempt: u32,
    pub status: &'static str,
    pub status_class: &'static str,
    pub active: bool,
    pub trigger: String,
    pub scheduled: String,
    pub started: String,
    pub duration: String,
    pub executor: String,
}

/// `status`, `from`, `to` and `page` of a job's history, as given.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    page: Option<u32>,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    chrome: Chrome,
    job: Job,
    schedule: String,
    params: Vec<(String, String)>,
    labels: String,
    next: Vec<String>,
    runs: Vec<Run>,
    active_runs: usize,
    pager: Pager,
    q: HistoryQuery,
    statuses: Vec<&'static str>,
    created: String,
    updated: String,
    start_time: String,
}

/// `GET /jobs/{id}`.
pub async fn detail(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> PageResult {
    let job = api::get(
        State(s.clone()),
        Extension(caller.clone()),
        Path(id.clone()),
    )
    .await?
    .0;
    let next = api::next_fires(
        State(s.clone()),
        Extension(caller.clone()),
        Path(id.clone()),
        crate::api::error::ApiQuery(api::Count { count: Some(10) }),
    )
    .await?
    .0
    .next_fires
    .into_iter()
    .map(format::time)
    .collect();
    // Datetime-local inputs give `2026-12-01T10:00`; the API takes RFC 3339.
    let rfc =
        |s: &str| format::nonempty(s).map(|t| if t.len() == 16 { format!("{t}:00Z") } else { t });
    let history = api::history(
        State(s.clone()),
        Extension(caller.clone()),
        Path(id.clone()),
        crate::api::error::ApiQuery(HistoryFilter {
            status: format::nonempty(&q.status),
            from: rfc(&q.from),
            to: rfc(&q.to),
            page: q.page,
            page_size: Some(25),
        }),
    )
    .await?
    .0;
    let now = Utc::now();
    let runs: Vec<Run> = history.items.iter().map(|r| run_of(r, now)).collect();
    let active_runs = runs.iter().filter(|r| r.active).count();
    let keep = vec![
        ("status", q.status.clone()),
        ("from", q.from.clone()),
        ("to", q.to.clone()),
    ];
    let pager = Pager::new(
        &format!("/jobs/{}", job.job_id),
        &keep,
        history.page,
        history.page_size,
        history.total,
    );
    Html::of(&JobPage {
        chrome: Chrome::new(&caller, "jobs", job.name.clone()),
        schedule: schedule_text(&job),
        params: format::params(&job.params),
        labels: format::labels(&job.executor_labels, ", "),
        next,
        runs,
        active_runs,
        pager,
        q,
        statuses: TaskStatus::ALL.iter().map(|s| s.as_str()).collect(),
        created: format::time(job.create_time),
        updated: format::time(job.update_time),
        start_time: format::maybe_time(job.start_time),
        job,
    })
}

/// A history row of record `r`.
pub fn run_of(r: &jobsched::ExecutionRecord, now: chrono::DateTime<Utc>) -> Run {
    Run {
        task_id: r.task_id.to_string(),
        attempt: r.attempt,
        status: r.status.as_str(),
        status_class: format::status_class(r.status),
        active: format::is_active(r.status),
        trigger: r.trigger.as_str().to_owned(),
        scheduled: format::time(r.scheduled_time),
        started: format::maybe_time(r.start_time),
        duration: format::run_time(r.start_time, r.end_time, now),
        executor: r
            .executor_id
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default(),
    }
}
