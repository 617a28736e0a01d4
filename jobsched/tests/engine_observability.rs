//! What the engine reports and keeps: metrics of outcomes, retries, fire lag and leadership, and the
//! purge of a job's history by its own retention.

mod support;

use std::time::Duration;

use jobsched::metrics::{Metrics, encode};
use jobsched::prometheus_client::registry::Registry;
use jobsched::{ExecutionQuery, JobId, JobSpec, Scheduler, TaskId};
use support::{Cluster, finished, finished_for};

/// The value of the series named exactly `series` (name and labels) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn script(name: &str, command: &str) -> JobSpec {
    JobSpec::manual(name, command)
        .with_type("script")
        .with_job_id(JobId::new(name).unwrap())
}

async fn scheduler(c: &Cluster, metrics: Metrics, purge: Duration) -> Scheduler {
    let (b, _) = c.backends();
    let s = Scheduler::builder(b)
        .with_config(Cluster::config("s1").with_purge_interval(purge))
        .with_clock(c.clock.clone())
        .with_metrics(metrics)
        .start()
        .await
        .unwrap();
    s.wait_active().await;
    s
}

#[tokio::test(start_paused = true)]
async fn metrics_count_outcomes_retries_fire_lag_and_leadership() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let m = Metrics::new();
    let mut registry = Registry::default();
    m.register(&mut registry);
    let s = scheduler(&c, m.clone(), Duration::from_secs(600)).await;
    let (_e, _) = c.executor("e1", 2).await;
    let mut ev = s.subscribe();

    let mut watched = script("watched", "");
    watched.metrics = Some(true);
    s.create_job(watched).await.unwrap();
    s.create_job(script("plain", "fail")).await.unwrap();
    s.create_job(script("flaky", "fail_before:2").with_retry(1, 0))
        .await
        .unwrap();
    for _ in 0..3 {
        let t = s
            .execute(&JobId::new("watched").unwrap(), None)
            .await
            .unwrap();
        finished_for(&mut ev, &t, 1).await;
    }
    let t = s
        .execute(&JobId::new("plain").unwrap(), None)
        .await
        .unwrap();
    finished_for(&mut ev, &t, 1).await;
    let t = s
        .execute(&JobId::new("flaky").unwrap(), None)
        .await
        .unwrap();
    finished_for(&mut ev, &t, 2).await;
    // A scheduled fire gives a fire-lag sample.
    let tick = s
        .create_job(JobSpec::cron("tick", "* * * * * *", "").with_type("script"))
        .await
        .unwrap();
    let first = finished(&mut ev, 1).await;
    assert_eq!(first[0].job_id, tick.job_id);
    s.delete_job(&tick.job_id).await.unwrap();

    m.observe_engine(s.engine_stats().await.as_ref());
    let text = encode(&registry);
    let count = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        count("jobsched_tasks_finished_total{outcome=\"succeeded\"}"),
        5.0
    );
    assert_eq!(
        count("jobsched_tasks_finished_total{outcome=\"failed\"}"),
        2.0
    );
    assert_eq!(count("jobsched_task_retries_total"), 1.0);
    assert_eq!(count("jobsched_task_failovers_total"), 0.0);
    assert_eq!(count("jobsched_task_run_seconds_count"), 7.0);
    assert_eq!(count("jobsched_fire_lag_seconds_count"), 1.0);
    assert_eq!(
        count("jobsched_job_tasks_finished_total{job=\"watched\",outcome=\"succeeded\"}"),
        3.0
    );
    assert!(
        !text.contains("job=\"plain\"") && !text.contains("job=\"flaky\""),
        "only jobs that ask get their own series:\n{text}"
    );
    assert_eq!(count("jobsched_leader"), 1.0);
    assert!(count("jobsched_leader_term") >= 1.0);
    assert_eq!(count("jobsched_leader_acquired_total"), 1.0);
    assert_eq!(count("jobsched_executors_online"), 1.0);
    assert_eq!(count("jobsched_jobs"), 3.0);
    s.shutdown().await;
    let text = encode(&registry);
    assert_eq!(value(&text, "jobsched_leader"), Some(0.0), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_job_keeps_only_its_newest_runs_and_others_keep_theirs() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let s = scheduler(&c, Metrics::new(), Duration::from_secs(1)).await;
    let (_e, _) = c.executor("e1", 2).await;
    let mut ev = s.subscribe();
    let mut kept = script("kept", "");
    kept.retention_runs = Some(2);
    s.create_job(kept).await.unwrap();
    s.create_job(script("all", "")).await.unwrap();
    let mut tasks: Vec<TaskId> = Vec::new();
    for _ in 0..5 {
        for job in ["kept", "all"] {
            let t = s.execute(&JobId::new(job).unwrap(), None).await.unwrap();
            finished_for(&mut ev, &t, 1).await;
            if job == "kept" {
                tasks.push(t);
            }
        }
    }
    let of = |job: &str| ExecutionQuery {
        job_id: Some(JobId::new(job).unwrap()),
        ..ExecutionQuery::default()
    };
    // The purge runs every second (virtual): within a minute the job is down to its newest two.
    let mut left = Vec::new();
    for _ in 0..60 {
        left = s.history(&of("kept")).await.unwrap().items;
        if left.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut ids: Vec<_> = left.iter().map(|r| r.task_id.clone()).collect();
    ids.sort();
    let mut newest = tasks[3..].to_vec();
    newest.sort();
    assert_eq!(ids, newest, "the newest two runs stay");
    assert_eq!(s.history(&of("all")).await.unwrap().total, 5);
    s.shutdown().await;
}
