//! How fast the Web UI's pages answer with a large history: a `jobsched standalone` process on an
//! SQLite file filled beforehand with `jobs` jobs and `history` execution records spread over the last
//! 29 days (within the default 30-day retention), each page asked for `requests` times in a row with an
//! administrator's token. The dashboard's first answer reads a week of outcome counts; later ones reuse
//! them for 15 s, so it is reported on its own.

use std::time::Instant;

use chrono::{TimeDelta, Utc};
use jobsched::storage::Storage;
use jobsched::{ExecutionRecord, JobSpec, TaskId, TaskStatus, Trigger};
use serde_json::json;

use crate::api::{ApiStore, Daemon, run_dir};
use crate::measure::{Figure, json_line, table};

/// Parameters of the UI benchmark.
#[derive(Clone, Debug)]
pub struct UiBench {
    /// Jobs in the store.
    pub jobs: usize,
    /// Execution records in the store.
    pub history: usize,
    /// Requests per page.
    pub requests: usize,
}

/// Fills the SQLite file of data directory `dir`; returns a job id and a task id to show.
async fn fill(dir: &std::path::Path, p: &UiBench) -> (String, String) {
    let store = jobsched_sqlite::SqliteConfig::in_dir(dir)
        .connect()
        .await
        .expect("the SQLite store opens");
    let now = jobsched::clock::trunc_ms(Utc::now());
    let mut jobs = Vec::with_capacity(p.jobs);
    for i in 0..p.jobs {
        jobs.push(
            JobSpec::cron(
                format!("nightly report {i:05}"),
                "0 0 3 * * *",
                "echo report",
            )
            .with_job_id(jobsched::JobId::new(format!("job-{i:05}")).expect("an id"))
            .with_owner("admin")
            .build(now - TimeDelta::days(30))
            .expect("a valid job"),
        );
    }
    for chunk in jobs.chunks(1000) {
        store.create_jobs(chunk).await.expect("jobs are stored");
    }
    let span = TimeDelta::days(29).num_milliseconds();
    let step = (span / p.history.max(1) as i64).max(1);
    let start = now - TimeDelta::days(29);
    let mut batch = Vec::with_capacity(1000);
    let mut last_task = String::new();
    for k in 0..p.history {
        let job = &jobs[k % jobs.len()];
        let at = start + TimeDelta::milliseconds(k as i64 * step);
        let mut r =
            ExecutionRecord::first_attempt(job, TaskId::generate(), Trigger::Schedule, at, at);
        r.status = match k % 50 {
            0..45 => TaskStatus::Succeeded,
            45..49 => TaskStatus::Failed,
            _ => TaskStatus::Cancelled,
        };
        r.start_time = Some(at + TimeDelta::milliseconds(20));
        r.end_time = Some(at + TimeDelta::seconds(2));
        r.exit_code = Some(if r.status == TaskStatus::Failed { 1 } else { 0 });
        r.output = format!("report {k} written\n");
        if r.status == TaskStatus::Failed {
            r.error = "upstream timed out\n".to_owned();
        }
        last_task = r.task_id.to_string();
        batch.push(r);
        if batch.len() == 1000 {
            store
                .insert_executions(&batch, None)
                .await
                .expect("records are stored");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store
            .insert_executions(&batch, None)
            .await
            .expect("records are stored");
    }
    drop(store);
    // A store that has run for a while has its write-ahead log folded into the file; one just filled
    // has hundreds of megabytes in it, which the daemon's first reads would pay for.
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        dir.join(jobsched_sqlite::FILE_NAME).display()
    ))
    .await
    .expect("the SQLite file opens");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await
        .expect("the checkpoint runs");
    let _ = c.close().await;
    (
        jobs[p.history.saturating_sub(1) % jobs.len()]
            .job_id
            .to_string(),
        last_task,
    )
}

/// Milliseconds of one `GET path`.
async fn get_ms(d: &Daemon, path: &str) -> f64 {
    let t = Instant::now();
    let r = d
        .http
        .get(format!("{}{path}", d.base))
        .bearer_auth(&d.token)
        .header("accept", "text/html")
        .send()
        .await
        .expect("the daemon answers");
    let status = r.status();
    let body = r.bytes().await.expect("a body");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        status.is_success(),
        "{path}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    ms
}

/// Runs the UI benchmark `runs` times and prints its table.
pub async fn ui(runs: usize, p: UiBench) {
    let mut fill_secs = Figure::new("filling the store (not a page)", "s");
    let mut cold = Figure::new(
        "`/` dashboard, first request (5 s after the scheduler became active)",
        "ms",
    );
    let mut figures: Vec<(String, Figure)> = Vec::new();
    for run in 0..runs {
        let (tag, dir) = run_dir("ui");
        let t = Instant::now();
        let (job, task) = fill(&dir, &p).await;
        fill_secs.values.push(t.elapsed().as_secs_f64());
        // For looking at the filled store with other tools: fill, move it there, stop.
        if let Ok(keep) = std::env::var("UI_BENCH_FILL_ONLY") {
            std::fs::rename(&dir, &keep).expect("move the filled directory");
            return;
        }
        let d = Daemon::start_in(&ApiStore::Sqlite, tag, dir).await;
        let pages = [
            ("`/` dashboard".to_owned(), "/".to_owned()),
            ("`/jobs` first page".to_owned(), "/jobs".to_owned()),
            (
                "`/jobs` page 150 of 200".to_owned(),
                "/jobs?page=150".to_owned(),
            ),
            (
                "`/jobs` by name, descending".to_owned(),
                "/jobs?sort=name&desc=true".to_owned(),
            ),
            (
                "`/jobs` name filter".to_owned(),
                "/jobs?name=report%2009".to_owned(),
            ),
            (
                "`/jobs` last run failed".to_owned(),
                "/jobs?last_status=failed%2Ctimed_out%2Clost".to_owned(),
            ),
            (
                "`/jobs/{id}` with its runs".to_owned(),
                format!("/jobs/{job}"),
            ),
            (
                "`/jobs/{id}` failed runs only".to_owned(),
                format!("/jobs/{job}?status=failed"),
            ),
            ("`/tasks/{id}`".to_owned(), format!("/tasks/{task}")),
            ("`/jobs/new` form".to_owned(), "/jobs/new".to_owned()),
            ("`/executors`".to_owned(), "/executors".to_owned()),
            ("`/system`".to_owned(), "/system".to_owned()),
            ("`/system/audit`".to_owned(), "/system/audit".to_owned()),
        ];
        // Measured once the scheduler is active (it loads the jobs and the active records first).
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let v: serde_json::Value = d
                .http
                .get(format!("{}/api/system/status", d.base))
                .bearer_auth(&d.token)
                .send()
                .await
                .expect("the daemon answers")
                .json()
                .await
                .expect("a status");
            if v["active"] == true && v["executors_online"] == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the scheduler did not become active: {v}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // The engine's first seconds (loading jobs, the week's counts for the dashboard) are not a
        // page's cost: measured after them.
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        cold.values.push(get_ms(&d, "/").await);
        let mut per_page = serde_json::Map::new();
        for (name, path) in &pages {
            let mut times = Vec::with_capacity(p.requests);
            for _ in 0..p.requests {
                times.push(get_ms(&d, path).await);
            }
            let f = match figures.iter_mut().find(|(n, _)| n == name) {
                Some((_, f)) => f,
                None => {
                    figures.push((name.clone(), Figure::new(name.clone(), "ms")));
                    &mut figures.last_mut().expect("just pushed").1
                }
            };
            f.values.extend(&times);
            let in_order = times.clone();
            times.sort_by(f64::total_cmp);
            per_page.insert(
                path.clone(),
                json!({"p50_ms": times[times.len() / 2], "max_ms": times[times.len() - 1],
                    "ms": in_order}),
            );
        }
        json_line(
            "ui",
            run,
            json!({"jobs": p.jobs, "history": p.history, "requests": p.requests}),
            json!({"dashboard_first_ms": cold.values.last(), "pages": per_page}),
        );
        d.stop().await;
    }
    let mut all = vec![fill_secs, cold];
    all.extend(figures.into_iter().map(|(_, f)| f));
    table(
        "Web UI pages (sqlite)",
        &format!(
            "`jobsched standalone` on an SQLite file holding {} jobs and {} execution records over 29 \
             days; each page {} times in a row (a whole page: HTML answered and read), as an \
             administrator; median, min and max of every request of every run.",
            p.jobs, p.history, p.requests
        ),
        &all,
    );
}
