//! Engine: when jobs fire. All on tokio's paused clock.

mod support;

use std::time::Duration;

use chrono::TimeDelta;
use jobsched::{Error, JobSpec, TaskStatus, Trigger};
use support::{Cluster, finished, started, t};

#[tokio::test(start_paused = true)]
async fn cron_with_seconds_fires_each_second_once() {
    let (_c, s, _e, mut ev) = started("2026-03-01T10:00:00.200Z", 4).await;
    let job = s
        .create_job(JobSpec::cron("tick", "* * * * * *", "out:tick").with_type("script"))
        .await
        .unwrap();
    let recs = finished(&mut ev, 5).await;
    let times: Vec<_> = recs.iter().map(|r| r.scheduled_time).collect();
    assert_eq!(
        times,
        (1..=5)
            .map(|i| t("2026-03-01T10:00:00Z") + TimeDelta::seconds(i))
            .collect::<Vec<_>>()
    );
    assert!(
        recs.iter()
            .all(|r| r.status == TaskStatus::Succeeded && r.output == "tick")
    );
    assert!(
        recs.iter()
            .all(|r| r.trigger == Trigger::Schedule && r.job_id == job.job_id)
    );
    for r in &recs {
        assert!(
            r.start_time.unwrap() >= r.scheduled_time,
            "never starts before its fire time"
        );
    }
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn five_field_cron_in_a_time_zone_across_a_dst_gap() {
    // 2024-03-10 in New York: 02:00 EST jumps to 03:00 EDT at 07:00 UTC. A job at 02:30 local fires once,
    // at the first instant after the gap (03:00 EDT = 07:00 UTC), then at 02:30 EDT the next day.
    let (_c, s, _e, mut ev) = started("2024-03-10T06:59:00Z", 4).await;
    let job = s
        .create_job(
            JobSpec::cron("nightly", "30 2 * * *", "out:x")
                .with_type("script")
                .with_time_zone("America/New_York"),
        )
        .await
        .unwrap();
    assert_eq!(
        s.next_fires(&job.job_id, 2).await.unwrap(),
        vec![t("2024-03-10T07:00:00Z"), t("2024-03-11T06:30:00Z")]
    );
    let recs = finished(&mut ev, 2).await;
    assert_eq!(recs[0].scheduled_time, t("2024-03-10T07:00:00Z"));
    assert_eq!(recs[1].scheduled_time, t("2024-03-11T06:30:00Z"));
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dst_overlap_fires_a_fixed_time_once() {
    // 2024-11-03 in New York: 01:00-02:00 happens twice (EDT, then EST).
    let (_c, s, _e, mut ev) = started("2024-11-03T05:00:00Z", 4).await;
    s.create_job(
        JobSpec::cron("once", "0 30 1 * * *", "")
            .with_type("script")
            .with_time_zone("America/New_York"),
    )
    .await
    .unwrap();
    let recs = finished(&mut ev, 2).await;
    assert_eq!(
        recs[0].scheduled_time,
        t("2024-11-03T05:30:00Z"),
        "01:30 EDT"
    );
    assert_eq!(
        recs[1].scheduled_time,
        t("2024-11-04T06:30:00Z"),
        "not again at 01:30 EST"
    );
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn fixed_rate_ignores_run_time_fixed_delay_waits_for_it() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 8).await;
    let start = t("2026-01-01T00:00:10Z");
    let rate = s
        .create_job(
            JobSpec::fixed_rate("rate", 10, "sleep:3000")
                .with_type("script")
                .with_start_time(start),
        )
        .await
        .unwrap();
    let delay = s
        .create_job(
            JobSpec::fixed_delay("delay", 10, "sleep:3000")
                .with_type("script")
                .with_start_time(start),
        )
        .await
        .unwrap();
    let recs = finished(&mut ev, 6).await;
    let mut rate_times: Vec<_> = recs
        .iter()
        .filter(|r| r.job_id == rate.job_id)
        .map(|r| r.scheduled_time)
        .collect();
    let mut delay_times: Vec<_> = recs
        .iter()
        .filter(|r| r.job_id == delay.job_id)
        .map(|r| r.scheduled_time)
        .collect();
    rate_times.truncate(2);
    delay_times.truncate(2);
    assert_eq!(rate_times, vec![start, start + TimeDelta::seconds(10)]);
    // The delay job's second fire is 10 s after its first run ended (which took 3 s).
    assert_eq!(delay_times[0], start);
    let first_end = recs
        .iter()
        .find(|r| r.job_id == delay.job_id)
        .and_then(|r| r.end_time)
        .unwrap();
    assert_eq!(first_end, start + TimeDelta::seconds(3));
    let second = recs
        .iter()
        .filter(|r| r.job_id == delay.job_id)
        .nth(1)
        .expect("a second delay run");
    assert_eq!(second.scheduled_time, first_end + TimeDelta::seconds(10));
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn one_shot_fires_once_and_manual_never_by_itself() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 4).await;
    let at = t("2026-01-01T00:00:30Z");
    let once = s
        .create_job(JobSpec::once("once", at, "").with_type("script"))
        .await
        .unwrap();
    let manual = s
        .create_job(JobSpec::manual("manual", "").with_type("script"))
        .await
        .unwrap();
    let recs = finished(&mut ev, 1).await;
    assert_eq!(
        (recs[0].job_id.clone(), recs[0].scheduled_time),
        (once.job_id.clone(), at)
    );
    assert!(s.next_fires(&once.job_id, 3).await.unwrap().is_empty());
    assert!(s.next_fires(&manual.job_id, 3).await.unwrap().is_empty());
    // An hour later nothing else has fired.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let page = s.history(&Default::default()).await.unwrap();
    assert_eq!(page.total, 1);
    let id = s.execute(&manual.job_id, None).await.unwrap();
    let recs = finished(&mut ev, 1).await;
    assert_eq!(
        (recs[0].task_id.clone(), recs[0].trigger),
        (id, Trigger::Manual)
    );
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn updates_apply_from_the_next_fire_and_delete_or_disable_stops_fires() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00.500Z", 4).await;
    let job = s
        .create_job(JobSpec::cron("a", "* * * * * *", "out:v1").with_type("script"))
        .await
        .unwrap();
    let other = s
        .create_job(JobSpec::cron("b", "* * * * * *", "out:b").with_type("script"))
        .await
        .unwrap();
    let recs = finished(&mut ev, 2).await;
    assert!(
        recs.iter()
            .any(|r| r.job_id == job.job_id && r.output == "v1")
    );
    let changed = s
        .update_job(
            &job.job_id,
            jobsched::JobSpec {
                command: Some("out:v2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.version, 2);
    let recs = finished(&mut ev, 4).await;
    let last_a = recs.iter().rev().find(|r| r.job_id == job.job_id).unwrap();
    assert_eq!(last_a.output, "v2", "the change applies from the next fire");
    s.update_job(
        &other.job_id,
        jobsched::JobSpec {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.delete_job(&job.job_id).await.unwrap();
    let before = s.history(&Default::default()).await.unwrap().total;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = s.history(&Default::default()).await.unwrap().total;
    assert!(
        after - before <= 2,
        "at most the fires already under way: {before} -> {after}"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        s.history(&Default::default()).await.unwrap().total,
        after,
        "no more fires"
    );
    assert!(matches!(
        s.get_job(&job.job_id).await,
        Err(Error::NotFound { .. })
    ));
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn invalid_cron_and_time_zone_are_refused_with_the_field_named() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s, _) = c.scheduler("s1").await;
    let e = s
        .create_job(JobSpec::cron("x", "0 0 25 * * *", "true"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cron_expression") && e.contains("field 3 (hour) '25'"),
        "{e}"
    );
    let e = s
        .create_job(JobSpec::cron("x", "* * * * *", "true").with_time_zone("Europe/Atlantis"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("time_zone") && e.contains("Europe/Atlantis"),
        "{e}"
    );
    assert_eq!(
        s.list_jobs(&Default::default()).await.unwrap().total,
        0,
        "nothing stored"
    );
    s.shutdown().await;
}
