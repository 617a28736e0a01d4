//! Alerts across a failover, with real processes on MariaDB, Kafka and ZooKeeper: the leader is killed
//! after it notified of a failing job; the standby that takes over tells of the failover and of the lost
//! executor, sends the failing job's alert no second time, and sends its resolution once.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::cluster::{Cluster, create, execute};
use support::receivers::Webhook;
use support::wait_for;

fn count(events: &[Value], rule: &str, transition: &str) -> usize {
    events
        .iter()
        .filter(|e| e["rule_id"] == rule && e["transition"] == transition)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_sends_nothing_twice_and_tells_of_the_failover_and_the_lost_executor() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let hook = Webhook::start(0).await;
    let mut s1 = c.scheduler("alerts-s1").await;
    let s2 = c.standby("alerts-s2").await;
    let mut e1 = c.executor(&s1, "alerts-e1", 2).await;
    let _e2 = c.executor(&s1, "alerts-e2", 2).await;
    let (code, v) = c
        .call(
            &s1,
            Method::PUT,
            "/api/alerts/config",
            Some(json!({
                "channels": [{"id": "hook", "target": {"kind": "webhook", "url": hook.url}}],
                "rules": [
                    {"id": "failures", "condition": {"kind": "task_failure", "job_id": "etl"}, "channels": ["hook"]},
                    {"id": "failover", "condition": {"kind": "exception", "event": "scheduler_failover"}, "channels": ["hook"]},
                    {"id": "lost", "condition": {"kind": "exception", "event": "executor_lost"}, "channels": ["hook"]},
                ],
            })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    create(
        &c,
        &s1,
        json!({"job_id": "etl", "name": "etl", "command": "exit 2", "schedule_type": "manual"}),
    )
    .await;
    execute(&c, &s1, "etl").await;
    wait_for("the failing job's notification", || async {
        count(&hook.events(), "failures", "firing") == 1
    })
    .await;
    // The leader dies; so does an executor.
    s1.kill9().await;
    e1.kill9().await;
    let schedulers = [s1, s2];
    c.active(&schedulers, Some(0)).await;
    let s2 = &schedulers[1];
    wait_for("the failover notification", || async {
        count(&hook.events(), "failover", "firing") == 1
    })
    .await;
    wait_for("the lost executor's notification", || async {
        hook.events()
            .iter()
            .any(|e| e["rule_id"] == "lost" && e["labels"]["executor"] == "alerts-e1")
    })
    .await;
    // The job succeeds through the new leader: its alert resolves, once.
    let (code, v) = c
        .call(
            s2,
            Method::PUT,
            "/api/jobs/etl",
            Some(json!({"command": "true"})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    execute(&c, s2, "etl").await;
    wait_for("the resolution", || async {
        count(&hook.events(), "failures", "resolved") == 1
    })
    .await;
    let events = hook.events();
    assert_eq!(
        count(&events, "failures", "firing"),
        1,
        "sent once in all: {events:?}"
    );
    assert_eq!(count(&events, "failover", "firing"), 1, "{events:?}");
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "no event id sent twice: {events:?}");
}
