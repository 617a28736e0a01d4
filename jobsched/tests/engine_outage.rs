//! Engine: a storage outage loses no fire and no result. Paused clock.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use jobsched::{JobSpec, TaskStatus, Trigger};
use support::flaky::Flaky;
use support::{Cluster, finished, recorded_fire_times};

#[tokio::test(start_paused = true)]
async fn a_storage_outage_loses_no_fire_and_no_result() {
    let store = Flaky::new();
    let c = Cluster::with_storage("2026-01-01T00:00:00.500Z", store.clone());
    let (s, _) = c.scheduler("s1").await;
    let (_e, _) = c.executor("e1", 8).await;
    s.wait_active().await;
    let mut ev = s.subscribe();
    let job = s
        .create_job(JobSpec::cron("tick", "* * * * * *", "sleep:1500").with_type("script"))
        .await
        .unwrap();
    finished(&mut ev, 3).await;
    // Storage goes away for 30 s while tasks are running.
    store.set_down(true);
    let down_at = c.clock.now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        store.refused.load(Ordering::Relaxed) > 0,
        "the engine kept trying"
    );
    store.set_down(false);
    let up_at = c.clock.now();
    finished(&mut ev, 5).await;
    let fires = recorded_fire_times(&s, &job.job_id).await;
    let recs: Vec<_> = fires.into_iter().map(|(_, r)| r).collect();
    // Tasks running when storage went down still got their results recorded.
    let before: Vec<_> = recs.iter().filter(|r| r.scheduled_time < down_at).collect();
    assert!(
        before.iter().all(|r| r.status == TaskStatus::Succeeded),
        "{before:#?}"
    );
    // The fires due during the outage were handled by the default misfire policy (fire once).
    let caught_up: Vec<_> = recs
        .iter()
        .filter(|r| r.trigger == Trigger::Misfire)
        .collect();
    assert_eq!(caught_up.len(), 1, "one catch-up fire for the outage");
    // The engine retries at most one backoff (5 s) after the store is back; the catch-up fire carries the
    // latest fire time due by then, and nothing else was recorded in between.
    let caught = caught_up[0].scheduled_time;
    assert!(
        caught > down_at && caught <= up_at + chrono::TimeDelta::seconds(6),
        "{caught} vs {down_at}..{up_at}"
    );
    let inside = recs
        .iter()
        .filter(|r| {
            r.scheduled_time > down_at + chrono::TimeDelta::seconds(1) && r.scheduled_time < caught
        })
        .count();
    assert_eq!(inside, 0, "no regular fire recorded during the outage");
    // Regular fires resumed after the outage.
    assert!(
        recs.iter()
            .any(|r| r.trigger == Trigger::Schedule && r.scheduled_time > up_at)
    );
    s.shutdown().await;
}
