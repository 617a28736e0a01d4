//! `GET /tasks/{id}`: one run with every attempt (executor, times, exit code, trigger, output, error),
//! cancel while it is active, and the live output of the running attempt.

use askama::Template;
use axum::extract::{Extension, Path, State};
use chrono::Utc;
use jobsched::storage::StorageExt as _;

use super::format;
use super::jobs::{Run, run_of};
use super::page::{Chrome, Html, PageResult};
use crate::api::{Caller, SharedState};

struct Attempt {
    run: Run,
    exit_code: String,
    ended: String,
    output: String,
    error: String,
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Chrome,
    task_id: String,
    job_id: String,
    job_name: String,
    command: String,
    params: Vec<(String, String)>,
    latest: Run,
    attempts: Vec<Attempt>,
}

/// `GET /tasks/{id}`.
pub async fn detail(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> PageResult {
    let view = crate::api::tasks::get(State(s.clone()), Extension(caller.clone()), Path(id))
        .await?
        .0;
    let job_name = s
        .scheduler
        .storage()
        .find_job(&view.latest.job_id)
        .await?
        .map(|j| j.name)
        .unwrap_or_else(|| "(deleted job)".to_owned());
    let now = Utc::now();
    let attempts = view
        .attempts
        .iter()
        .rev()
        .map(|r| Attempt {
            run: run_of(r, now),
            exit_code: r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            ended: format::maybe_time(r.end_time),
            output: r.output.clone(),
            error: r.error.clone(),
        })
        .collect();
    let latest = &view.latest;
    Html::of(&TaskPage {
        chrome: Chrome::new(&caller, "jobs", format!("Task {}", latest.task_id)),
        task_id: latest.task_id.to_string(),
        job_id: latest.job_id.to_string(),
        job_name,
        command: latest.command.clone(),
        params: format::params(&latest.params),
        latest: run_of(latest, now),
        attempts,
    })
}
