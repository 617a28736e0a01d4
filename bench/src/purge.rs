//! Purging a long history: a store with `history` ended records spread over 60 days (half past the
//! 30-day retention) of `jobs` jobs; the system's purge deletes the old half in batches of 1,000 (what
//! the engine's purge does) while a writer records one new attempt every 10 ms, as fires and results go
//! on during a purge. Reported: rows deleted per second, the time of each batch (how long one holds its
//! locks), and the writer's latency during the purge.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use jobsched::storage::Storage;
use jobsched::{ExecutionRecord, JobSpec, TaskId, TaskStatus, Trigger};
use serde_json::json;

use crate::measure::{Figure, json_line, table};
use crate::store::{Fresh, Target};

/// Rows per purge call (the engine's batch).
const BATCH: usize = 1000;

/// Parameters of the purge benchmark.
#[derive(Clone, Debug)]
pub struct PurgeBench {
    pub target: Target,
    pub jobs: usize,
    pub history: usize,
}

async fn fill(s: &dyn Storage, p: &PurgeBench) -> Vec<jobsched::Job> {
    let now = jobsched::clock::trunc_ms(Utc::now());
    let jobs: Vec<_> = (0..p.jobs)
        .map(|i| {
            JobSpec::cron(format!("purge {i}"), "0 0 3 * * *", "true")
                .build(now - TimeDelta::days(61))
                .expect("a valid job")
        })
        .collect();
    for chunk in jobs.chunks(100) {
        s.create_jobs(chunk).await.expect("jobs are stored");
    }
    let step = (TimeDelta::days(60).num_milliseconds() / p.history.max(1) as i64).max(1);
    let start = now - TimeDelta::days(60);
    let mut batch = Vec::with_capacity(1000);
    for k in 0..p.history {
        let at = start + TimeDelta::milliseconds(k as i64 * step);
        let job = &jobs[k % jobs.len()];
        let mut r =
            ExecutionRecord::first_attempt(job, TaskId::generate(), Trigger::Schedule, at, at);
        r.status = TaskStatus::Succeeded;
        r.start_time = Some(at);
        r.end_time = Some(at + TimeDelta::seconds(1));
        r.exit_code = Some(0);
        r.output = format!("run {k}\n");
        batch.push(r);
        if batch.len() == 1000 || k + 1 == p.history {
            s.insert_executions(&batch, None)
                .await
                .expect("records are stored");
            batch.clear();
        }
    }
    jobs
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Runs the purge benchmark `runs` times and prints the table.
pub async fn purge(runs: usize, p: PurgeBench) {
    let backend = match &p.target {
        Target::Mysql(_) => "mysql",
        Target::Sqlite(_) => "sqlite",
    };
    let mut figs = [
        Figure::new("fill (insert ended records)", "records/s"),
        Figure::new("purge: rows deleted", "rows"),
        Figure::new("purge: rows deleted per second", "rows/s"),
        Figure::new("purge: batch p50", "ms"),
        Figure::new("purge: batch p99", "ms"),
        Figure::new("purge: batch max", "ms"),
        Figure::new("writer during the purge: p50", "ms"),
        Figure::new("writer during the purge: p99", "ms"),
        Figure::new("writer during the purge: max", "ms"),
    ];
    for run in 1..=runs {
        let fresh = Fresh::open(&p.target, 4, 1000).await;
        let s = fresh.storage();
        let t0 = Instant::now();
        let jobs = fill(s.as_ref(), &p).await;
        let fill_rate = p.history as f64 / t0.elapsed().as_secs_f64();
        // The writer: one new attempt every 10 ms, timed.
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (s, stop, job) = (s.clone(), stop.clone(), jobs[0].clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let now = Utc::now();
                    let r = ExecutionRecord::first_attempt(
                        &job,
                        TaskId::generate(),
                        Trigger::Manual,
                        now,
                        now,
                    );
                    let t = Instant::now();
                    s.insert_executions(&[r], None).await.expect("a write");
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                lat
            })
        };
        let before = Utc::now() - TimeDelta::days(30);
        let (mut batches, mut deleted) = (Vec::new(), 0u64);
        let t0 = Instant::now();
        loop {
            let t = Instant::now();
            let n = s.purge_executions(before, BATCH).await.expect("a purge");
            batches.push(t.elapsed().as_secs_f64() * 1e3);
            deleted += n;
            if (n as usize) < BATCH {
                break;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let mut lat = writer.await.expect("the writer");
        let values = [
            fill_rate,
            deleted as f64,
            deleted as f64 / secs,
            pct(&mut batches, 0.5),
            pct(&mut batches, 0.99),
            pct(&mut batches, 1.0),
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            pct(&mut lat, 1.0),
        ];
        for (f, v) in figs.iter_mut().zip(values) {
            f.values.push(v);
        }
        json_line(
            "purge",
            run,
            json!({"backend": backend, "jobs": p.jobs, "history": p.history}),
            json!({"deleted": deleted, "rows_per_s": values[2], "batch_p99_ms": values[4],
                "writer_p99_ms": values[7], "writer_max_ms": values[8]}),
        );
        fresh.remove().await;
    }
    table(
        &format!("Purging a long history ({backend})"),
        &format!(
            "{} ended records of {} jobs over 60 days; the purge deletes those older than 30 days in \
             batches of {BATCH} while a writer records an attempt every 10 ms; {runs} runs.",
            p.history, p.jobs
        ),
        &figs,
    );
}
