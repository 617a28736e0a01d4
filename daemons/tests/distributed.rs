//! The distributed mode as separate processes — MariaDB, the Kafka broker, ZooKeeper, one `jobsched
//! scheduler` and `jobsched executor` processes — checked on the stored records.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Row;
use support::cluster::{Cluster, create, execute, no_active_task, poison, produce_raw, scalar};
use support::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_run_immediate_and_every_second_tasks_exactly_once() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let s = c.scheduler("scheduler-1").await;
    let _e1 = c.executor(&s, "exec-1", 8).await;
    let _e2 = c.executor(&s, "exec-2", 8).await;
    for i in 0..20 {
        create(
            &c,
            &s,
            json!({"job_id": format!("cron-{i:02}"), "name": "every second", "type": "noop",
            "cron_expression": "* * * * * *"}),
        )
        .await;
    }
    create(
        &c,
        &s,
        json!({"job_id": "bulk", "name": "bulk", "type": "noop", "schedule_type": "manual"}),
    )
    .await;
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..500 {
        tasks.push(execute(&c, &s, "bulk").await);
        if i == 250 {
            // Poison on the results topic and on an executor's task topic, mid-run.
            poison(&c, &format!("{}.results", c.prefix)).await;
            poison(&c, &format!("{}.tasks.exec-1", c.prefix)).await;
        }
    }
    assert_eq!(tasks.len(), 500);
    // The every-second jobs run for 30 s.
    tokio::time::sleep_until(started + Duration::from_secs(30)).await;
    c.disable(&s, (0..20).map(|i| format!("cron-{i:02}"))).await;
    let pool = c.pool().await;
    no_active_task(&pool).await;
    // A fire still queued when its job was disabled is cancelled ("job disabled"): at most one per job.
    let disabled = "status = 4 AND job_id LIKE 'cron-%' AND error = 'cancelled: job disabled'";
    assert!(
        scalar(
            &pool,
            &format!("SELECT COUNT(*) FROM job_logs WHERE {disabled}")
        )
        .await
            <= 20,
        "at most one fire per job cancelled by the disable"
    );
    assert_eq!(
        scalar(
            &pool,
            &format!("SELECT COUNT(*) FROM job_logs WHERE status <> 1 AND NOT ({disabled})")
        )
        .await,
        0,
        "every other task succeeded"
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM job_logs WHERE job_id = 'bulk' AND attempt = 1"
        )
        .await,
        500,
        "every immediate task recorded once"
    );
    let per_executor: Vec<(String, i64)> =
        // Fires cancelled by the disable while queued have no executor.
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT executor_id, COUNT(*) FROM job_logs WHERE NOT ({disabled}) GROUP BY executor_id"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        per_executor.len(),
        2,
        "both executors used: {per_executor:?}"
    );
    assert!(
        per_executor.iter().all(|(_, n)| *n > 100),
        "{per_executor:?}"
    );
    let fires = sqlx::query(
        "SELECT job_id, COUNT(*) AS n, COUNT(DISTINCT fire_time) AS distinct_fires, \
         TIMESTAMPDIFF(SECOND, MIN(fire_time), MAX(fire_time)) AS span \
         FROM job_logs WHERE job_id LIKE 'cron-%' GROUP BY job_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(fires.len(), 20);
    for f in fires {
        let (job, n, distinct, span): (String, i64, i64, i64) = (
            f.get("job_id"),
            f.get("n"),
            f.get("distinct_fires"),
            f.get("span"),
        );
        assert_eq!(n, distinct, "{job}: a fire recorded twice");
        assert_eq!(
            n,
            span + 1,
            "{job}: a fire is missing ({n} fires over {span} s)"
        );
        assert!(n >= 25, "{job}: only {n} fires in 30 s");
    }
    let (_, st) = c.call(&s, Method::GET, "/api/system/status", None).await;
    assert_eq!(
        (st["running"].as_u64(), st["queued"].as_u64()),
        (Some(0), Some(0)),
        "{st}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executors_tasks_run_again_on_the_other_and_a_cancel_kills_the_process() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let s = c.scheduler("scheduler-1").await;
    let mut e1 = c.executor(&s, "exec-1", 4).await;
    let _e2 = c.executor(&s, "exec-2", 4).await;
    create(
        &c,
        &s,
        json!({"job_id": "slow", "name": "slow", "command": "sleep 2; echo done",
        "schedule_type": "manual"}),
    )
    .await;
    for _ in 0..8 {
        execute(&c, &s, "slow").await;
    }
    let pool = c.pool().await;
    wait_for("8 tasks running", || async {
        scalar(&pool, "SELECT COUNT(*) FROM job_logs WHERE status = 5").await == 8
    })
    .await;
    e1.kill9().await;
    // Its session expires (4 s), its tasks are recorded lost and run again on exec-2.
    wait_for("every task to succeed", || async {
        scalar(
            &pool,
            "SELECT COUNT(*) FROM job_logs l WHERE status = 1 AND attempt = \
             (SELECT MAX(attempt) FROM job_logs m WHERE m.task_id = l.task_id)",
        )
        .await
            == 8
    })
    .await;
    no_active_task(&pool).await;
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM job_logs WHERE executor_id = 'exec-1' AND status = 7"
        )
        .await,
        4,
        "exec-1's four tasks recorded lost"
    );
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM job_logs WHERE trigger_kind = 'failover' AND status = 1 AND executor_id = 'exec-2'").await,
        4,
        "and run again on exec-2"
    );
    let (_, e) = c.call(&s, Method::GET, "/api/executors/exec-1", None).await;
    assert_eq!(e["status"], 0, "exec-1 is offline: {e}");

    // A cancel reaches the executor through its control topic and kills the task's process.
    create(
        &c,
        &s,
        json!({"job_id": "long", "name": "long", "command": "exec sleep 61.4142",
        "schedule_type": "manual"}),
    )
    .await;
    let task = execute(&c, &s, "long").await;
    wait_for("the long task to run", || async {
        c.call(&s, Method::GET, &format!("/api/tasks/{task}"), None)
            .await
            .1["status"]
            == 5
    })
    .await;
    assert!(sleeping("61.4142"), "the task's process runs");
    let (code, v) = c
        .call(&s, Method::POST, &format!("/api/tasks/{task}/cancel"), None)
        .await;
    assert_eq!(
        (code, v["outcome"].as_str()),
        (StatusCode::OK, Some("cancelling")),
        "{v}"
    );
    wait_for("the cancel to be recorded", || async {
        c.call(&s, Method::GET, &format!("/api/tasks/{task}"), None)
            .await
            .1["status"]
            == 4
    })
    .await;
    wait_for("the process to be gone", || async { !sleeping("61.4142") }).await;
}

/// Whether a `sleep ARG` process runs on this machine.
fn sleeping(arg: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c).replace('\0', " ").trim() == format!("sleep {arg}")
            })
            .unwrap_or(false)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_strategies_hold_across_processes_and_tasks_run_where_they_were_sent() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let s = c.scheduler("scheduler-1").await;
    // Room for every round-robin task on either executor: a full executor would pass its turn (on a
    // loaded machine one can hold all its ten at once).
    let _e1 = c.executor(&s, "exec-1", 16).await;
    let _e2 = c.executor(&s, "exec-2", 16).await;
    let pool = c.pool().await;
    // Round robin: both, evenly.
    create(
        &c,
        &s,
        json!({"job_id": "rr", "name": "rr", "type": "noop", "schedule_type": "manual",
        "routing_strategy": "round_robin"}),
    )
    .await;
    for _ in 0..20 {
        execute(&c, &s, "rr").await;
    }
    // Consistent hash: one executor for the job; the task prints where it really ran.
    create(
        &c,
        &s,
        json!({"job_id": "ch", "name": "ch", "command": "printf %s \"$JOBSCHED_EXECUTOR_ID\"",
        "schedule_type": "manual", "routing_strategy": "consistent_hash"}),
    )
    .await;
    no_active_task(&pool).await;
    for _ in 0..10 {
        // One at a time: a full executor would pass its tasks to the next in the job's hash order.
        let t = execute(&c, &s, "ch").await;
        wait_for("the task to end", || async {
            c.call(&s, Method::GET, &format!("/api/tasks/{t}"), None)
                .await
                .1["status"]
                == 1
        })
        .await;
    }
    let rr: Vec<(String, i64)> = sqlx::query_as(
        "SELECT executor_id, COUNT(*) FROM job_logs WHERE job_id = 'rr' GROUP BY executor_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(
        rr.iter().all(|(_, n)| (9..=11).contains(n)),
        "round robin alternates: {rr:?}"
    );
    let ch: Vec<(String, String)> = sqlx::query_as(
        "SELECT executor_id, output FROM job_logs WHERE job_id = 'ch' AND status = 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(ch.len(), 10);
    assert!(
        ch.iter().all(|(e, out)| e == out),
        "each task ran on the executor it was recorded for: {ch:?}"
    );
    let chosen = ch[0].0.clone();
    assert!(
        ch.iter().all(|(e, _)| *e == chosen),
        "consistent hash keeps one executor: {ch:?}"
    );
    // Least loaded: while the consistent-hash executor is busy, new tasks go to the other one.
    create(
        &c,
        &s,
        json!({"job_id": "busy", "name": "busy", "command": "sleep 60",
        "schedule_type": "manual", "routing_strategy": "consistent_hash"}),
    )
    .await;
    let (_, busy_job) = c.call(&s, Method::GET, "/api/jobs/busy", None).await;
    assert!(busy_job.is_object());
    for _ in 0..6 {
        execute(&c, &s, "busy").await;
    }
    wait_for("the busy tasks to run", || async {
        scalar(
            &pool,
            "SELECT COUNT(*) FROM job_logs WHERE job_id = 'busy' AND status = 5",
        )
        .await
            == 6
    })
    .await;
    let busy_exec: String =
        sqlx::query_scalar("SELECT DISTINCT executor_id FROM job_logs WHERE job_id = 'busy'")
            .fetch_one(&pool)
            .await
            .unwrap();
    create(
        &c,
        &s,
        json!({"job_id": "ll", "name": "ll", "type": "noop", "schedule_type": "manual",
        "routing_strategy": "least_loaded"}),
    )
    .await;
    for _ in 0..5 {
        execute(&c, &s, "ll").await;
    }
    wait_for("the least-loaded tasks", || async {
        scalar(
            &pool,
            "SELECT COUNT(*) FROM job_logs WHERE job_id = 'll' AND status = 1",
        )
        .await
            == 5
    })
    .await;
    let ll: Vec<String> =
        sqlx::query_scalar("SELECT executor_id FROM job_logs WHERE job_id = 'll'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        ll.iter().all(|e| *e != busy_exec),
        "least loaded avoids the busy {busy_exec}: {ll:?}"
    );
    // The busy tasks ran all along (they were still running while the least-loaded ones were routed).
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM job_logs WHERE job_id = 'busy' AND status = 5"
        )
        .await,
        6
    );
    c.call(&s, Method::POST, "/api/jobs/busy/cancel", None)
        .await;
    no_active_task(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_high_priority_tasks_start_before_earlier_low_priority_ones() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let s = c.scheduler("scheduler-1").await;
    let _e1 = c.executor(&s, "exec-1", 1).await;
    let pool = c.pool().await;
    create(&c, &s, json!({"job_id": "blocker", "name": "blocker", "command": "sleep 2", "schedule_type": "manual"})).await;
    create(&c, &s, json!({"job_id": "low", "name": "low", "command": "true", "priority": 1, "schedule_type": "manual"})).await;
    create(&c, &s, json!({"job_id": "high", "name": "high", "command": "true", "priority": 9, "schedule_type": "manual"})).await;
    execute(&c, &s, "blocker").await;
    wait_for("the blocker to run", || async {
        scalar(
            &pool,
            "SELECT COUNT(*) FROM job_logs WHERE job_id = 'blocker' AND status = 5",
        )
        .await
            == 1
    })
    .await;
    // The executor is saturated: five low-priority runs queue first, then five high-priority ones.
    for _ in 0..5 {
        execute(&c, &s, "low").await;
    }
    for _ in 0..5 {
        execute(&c, &s, "high").await;
    }
    no_active_task(&pool).await;
    let order: Vec<String> = sqlx::query_scalar(
        "SELECT job_id FROM job_logs WHERE job_id IN ('low', 'high') ORDER BY start_time, id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        order,
        [
            "high", "high", "high", "high", "high", "low", "low", "low", "low", "low"
        ],
        "high priority first, whatever the order they were queued in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tasks_do_not_run_and_forged_results_do_not_count() {
    let Some(c) = Cluster::new().await else {
        return;
    };
    let s = c.scheduler("scheduler-1").await;
    let e = c.executor(&s, "exec-1", 4).await;
    let (_, info) = c.call(&e, Method::GET, "/api/executor", None).await;
    let epoch = info["epoch"].as_u64().expect("the executor's epoch");
    let marker = c.logs.join("forged-ran");
    let topic = format!("{}.tasks.exec-1", c.prefix);
    let other_key = jobsched_kafka::ClusterKey::generate();
    // Tasks as an attacker would write them: the current epoch and epoch 0 (no epoch check), unsigned
    // and signed with a key that is not the cluster's.
    let mut forged = 0;
    for (n, task_epoch) in [epoch, 0].into_iter().enumerate() {
        let task = json!({
            "task_id": format!("forged-{n}"), "job_id": "forged", "type": "shell",
            "command": format!("touch {}", marker.display()), "timeout": 0, "retry_count": 0,
            "retry_interval": 0, "priority": 0, "create_time": "2026-01-01T00:00:00Z", "attempt": 1,
            "scheduled_time": "2026-01-01T00:00:00Z", "executor_id": "exec-1",
            "executor_epoch": task_epoch,
        });
        let body = serde_json::to_vec(&task).unwrap();
        produce_raw(&c, &topic, "exec-1", &body, None).await;
        let mac = other_key.sign(&topic, b"exec-1", &body);
        produce_raw(&c, &topic, "exec-1", &body, Some(mac)).await;
        forged += 2;
    }
    // A real task after them: once it has run, the executor has read (and refused) the forged ones.
    create(
        &c,
        &s,
        json!({"job_id": "real", "name": "real", "command": "sleep 2; echo real; exit 3",
        "schedule_type": "manual"}),
    )
    .await;
    let task = execute(&c, &s, "real").await;
    wait_for("the real task to run", || async {
        c.call(&s, Method::GET, &format!("/api/tasks/{task}"), None)
            .await
            .1["status"]
            == 5
    })
    .await;
    // While it runs, a forged "succeeded" result for it reaches the results topic, unsigned and under
    // another key.
    let results = format!("{}.results", c.prefix);
    let result = json!({
        "task_id": task, "job_id": "real", "executor_id": "exec-1", "status": 1,
        "start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-01T00:00:01Z",
        "output": "forged", "error": "", "exit_code": 0, "attempt": 1, "executor_epoch": epoch,
    });
    let body = serde_json::to_vec(&result).unwrap();
    produce_raw(&c, &results, &task, &body, None).await;
    let mac = other_key.sign(&results, task.as_bytes(), &body);
    produce_raw(&c, &results, &task, &body, Some(mac)).await;
    wait_for("the real task to end", || async {
        let status = c
            .call(&s, Method::GET, &format!("/api/tasks/{task}"), None)
            .await
            .1["status"]
            .clone();
        status != 5 && status != 0
    })
    .await;
    let (_, t) = c
        .call(&s, Method::GET, &format!("/api/tasks/{task}"), None)
        .await;
    assert_eq!(
        (t["status"].as_u64(), t["exit_code"].as_i64()),
        (Some(2), Some(3)),
        "the real result counts, not the forged success: {t}"
    );
    assert!(
        !t["output"].as_str().unwrap_or_default().contains("forged"),
        "{t}"
    );
    assert!(!marker.exists(), "a forged task ran");
    let pool = c.pool().await;
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM job_logs WHERE job_id = 'forged'"
        )
        .await,
        0
    );
    let (_, info) = c.call(&e, Method::GET, "/api/executor", None).await;
    assert_eq!(info["poison_messages"].as_u64(), Some(forged), "{info}");
    wait_for("the scheduler to count the forged results", || async {
        let (_, st) = c.call(&s, Method::GET, "/api/system/status", None).await;
        st["poison_messages"].as_u64() == Some(2)
    })
    .await;
    // The same counts in both processes' metrics, with the Kafka sends timed.
    let series = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    let text = c.metrics(&e).await;
    assert_eq!(
        series(&text, "jobsched_poison_messages_total"),
        Some(forged as f64),
        "{text}"
    );
    assert_eq!(
        series(&text, "jobsched_executor_capacity"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        series(&text, "jobsched_backend_up{backend=\"coordinator\"}"),
        Some(1.0),
        "the ZooKeeper session: {text}"
    );
    assert!(
        series(
            &text,
            "jobsched_dispatch_call_seconds_count{operation=\"send_results\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let text = c.metrics(&s).await;
    assert_eq!(
        series(&text, "jobsched_poison_messages_total"),
        Some(2.0),
        "{text}"
    );
    assert!(
        series(
            &text,
            "jobsched_dispatch_call_seconds_count{operation=\"send_tasks\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        series(
            &text,
            "jobsched_store_call_seconds_count{operation=\"update_executions\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
}
