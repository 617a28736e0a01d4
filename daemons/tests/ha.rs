//! Scheduler high availability as separate processes: three `jobsched scheduler`s (one active, two hot
//! standbys) and two `jobsched executor`s on MariaDB, Kafka and ZooKeeper, under 100 jobs firing every
//! second — the leader killed, the next one frozen past its session, the central configuration changed —
//! checked on the stored records.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::cluster::{Cluster, create, no_active_task, scalar};
use support::wait_for;
use tokio::time::Instant;

/// The ZooKeeper session timeout of the cluster's processes (`Cluster` starts them with 4 s).
const SESSION: Duration = Duration::from_secs(4);
/// How long fires may pause when the active scheduler dies: its session timeout plus 2 s.
const RESUME_BOUND: Duration = Duration::from_secs(6);
const JOBS: usize = 100;
/// How long the load runs.
const LOAD: Duration = Duration::from_secs(60);

/// How long after `fault` the first fire due after it started on an executor.
async fn resumed_after(pool: &sqlx::MySqlPool, fault: NaiveDateTime) -> Duration {
    let first: Option<NaiveDateTime> =
        sqlx::query_scalar("SELECT MIN(start_time) FROM job_logs WHERE scheduled_time > ?")
            .bind(fault)
            .fetch_one(pool)
            .await
            .unwrap();
    (first.expect("fires after the fault") - fault)
        .to_std()
        .unwrap()
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_fire_every_second_exactly_once_through_a_leader_kill_and_a_freeze() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let mut s = vec![
        c.scheduler("sched-1").await,
        c.standby("sched-2").await,
        c.standby("sched-3").await,
    ];
    let e = [
        c.executor(&s[0], "exec-1", 64).await,
        c.executor(&s[0], "exec-2", 64).await,
    ];
    // Jobs are created through a standby: any scheduler serves the API, the active one fires.
    for i in 0..JOBS {
        let policy = if i % 2 == 0 { "fire_all" } else { "fire_once" };
        create(
            &c,
            &s[1],
            json!({"job_id": format!("ha-{i:03}"), "name": "every second", "type": "noop",
            "cron_expression": "* * * * * *", "misfire_policy": policy}),
        )
        .await;
    }
    let started = Instant::now();
    let pool = c.pool().await;
    wait_for("the first fires", || async {
        scalar(&pool, "SELECT COUNT(*) FROM job_logs WHERE status = 1").await >= JOBS as i64
    })
    .await;

    // A configuration change through one standby reaches every scheduler and executor within 1 s.
    let put_at = Instant::now();
    let (code, v) = c
        .call(
            &s[2],
            Method::PUT,
            "/api/system/config",
            Some(json!({"kill_grace_secs": 7})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let version = v["version"].as_u64().unwrap();
    loop {
        let mut seen = Vec::new();
        for p in &s {
            seen.push(c.status(p).await["config_version"].as_u64());
        }
        for p in &e {
            seen.push(
                c.call(p, Method::GET, "/api/executor", None).await.1["config_version"].as_u64(),
            );
        }
        if seen.iter().all(|v| *v == Some(version)) {
            break;
        }
        assert!(
            put_at.elapsed() < Duration::from_secs(1),
            "configuration version {version} not seen everywhere within 1 s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let config_spread = put_at.elapsed();

    // Kill -9 the active scheduler: a standby takes over and fires resume within the bound.
    tokio::time::sleep_until(started + Duration::from_secs(15)).await;
    let killed_at = now();
    let kill = Instant::now();
    s[0].kill9().await;
    let second = c.active(&s, Some(0)).await;
    let takeover = kill.elapsed();

    // Freeze the new leader for longer than its session: the third takes over; when the frozen one
    // wakes it finds its session gone and stays a standby (its late writes are fenced).
    tokio::time::sleep_until(started + Duration::from_secs(32)).await;
    let frozen_at = now();
    let freeze = Instant::now();
    s[second].signal("STOP");
    let third = c.active(&s, Some(second)).await;
    let takeover_frozen = freeze.elapsed();
    tokio::time::sleep_until(freeze + SESSION + Duration::from_secs(3)).await;
    s[second].signal("CONT");
    wait_for("the woken scheduler to stand by", || async {
        let v = c.status(&s[second]).await;
        v["active"] == false && v["leader"] == s[third].id.as_str()
    })
    .await;
    assert_eq!(c.status(&s[third]).await["active"], true);

    tokio::time::sleep_until(started + LOAD).await;
    c.disable(&s[third], (0..JOBS).map(|i| format!("ha-{i:03}")))
        .await;
    no_active_task(&pool).await;

    let resume_kill = resumed_after(&pool, killed_at).await;
    let resume_freeze = resumed_after(&pool, frozen_at).await;
    eprintln!(
        "config seen everywhere after {config_spread:?}; kill -9: new leader after {takeover:?}, \
         fires resumed after {resume_kill:?}; SIGSTOP: new leader after {takeover_frozen:?}, fires \
         resumed after {resume_freeze:?}"
    );
    assert!(
        resume_kill <= RESUME_BOUND,
        "fires resumed {resume_kill:?} after the kill"
    );
    assert!(
        resume_freeze <= RESUME_BOUND,
        "fires resumed {resume_freeze:?} after the freeze"
    );

    // Every task succeeded (but a fire still queued when its job was disabled, which is cancelled by
    // design); no fire recorded twice.
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM job_logs WHERE status <> 1 \
             AND NOT (status = 4 AND error = 'cancelled: job disabled')"
        )
        .await,
        0,
        "every task succeeded"
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM (SELECT job_id FROM job_logs \
             GROUP BY job_id, scheduled_time, attempt HAVING COUNT(*) > 1) d"
        )
        .await,
        0,
        "a (job, fire time, attempt) recorded twice"
    );
    // None missing: `fire_all` jobs have every second; `fire_once` ones miss seconds only while no
    // scheduler was active, and fired once for them after.
    let rows: Vec<(String, NaiveDateTime)> = sqlx::query_as(
        "SELECT job_id, scheduled_time FROM job_logs WHERE job_id LIKE 'ha-%' ORDER BY scheduled_time",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut fires: BTreeMap<String, Vec<NaiveDateTime>> = BTreeMap::new();
    for (job, t) in rows {
        fires.entry(job).or_default().push(t);
    }
    assert_eq!(fires.len(), JOBS);
    let outage = |t: NaiveDateTime| {
        [(killed_at, resume_kill), (frozen_at, resume_freeze)]
            .iter()
            .any(|(from, d)| {
                t >= *from - TimeDelta::seconds(1)
                    && t <= *from + TimeDelta::from_std(*d).unwrap() + TimeDelta::seconds(1)
            })
    };
    for (i, (job, times)) in fires.iter().enumerate() {
        assert!(times.len() >= 50, "{job}: {} fires in 60 s", times.len());
        for w in times.windows(2) {
            let gap = (w[1] - w[0]).num_milliseconds();
            assert_eq!(gap % 1000, 0, "{job}: fires not on whole seconds: {w:?}");
            if gap != 1000 {
                assert!(
                    i % 2 == 1 && outage(w[0]) && outage(w[1]),
                    "{job}: fires {} and {} are {gap} ms apart outside an outage (fire_all: {})",
                    w[0],
                    w[1],
                    i % 2 == 0
                );
            }
        }
    }
    // Both executors still online and in the executors table.
    assert_eq!(c.executors_online(&s[third]).await, 2);
}
