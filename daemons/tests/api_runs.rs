//! The HTTP API's run routes over real HTTP against the all-in-one mode: run now (with params), cancel,
//! history, tasks and next fires (one behaviour per test).

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, TempDir, error_code, task_status, wait_for};

/// The `total` of a list endpoint.
async fn total(s: &Server, path: &str) -> u64 {
    let (code, v) = s.call(Method::GET, path, None).await;
    assert_eq!(code, StatusCode::OK, "{path}: {v}");
    v["total"].as_u64().unwrap()
}

/// Creates the request-only jobs `hello` (echoes its `who` param, `world` by default) and `long`.
async fn hello_and_long(s: &Server) {
    for (id, cmd) in [
        ("hello", "echo hello $JOBSCHED_PARAM_WHO"),
        ("long", "sleep 60"),
    ] {
        let (code, v) = s
            .call(
                Method::POST,
                "/api/jobs",
                Some(
                    json!({"job_id": id, "name": id, "command": cmd, "schedule_type": "manual",
                    "params": {"who": "world"}}),
                ),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{v}");
    }
}

/// Runs `job` now (with `body`) and waits until its task has status `status`; returns the task id.
async fn run_until(s: &Server, job: &str, body: Option<Value>, status: u64) -> String {
    let (code, run) = s
        .call(Method::POST, &format!("/api/jobs/{job}/execute"), body)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{run}");
    let task = run["task_id"].as_str().unwrap().to_owned();
    wait_for("the run", || async {
        task_status(s, &task).await == status
    })
    .await;
    task
}

/// Run now: the task id comes back at once; the output and the task fields are readable when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_now_answers_with_its_task_whose_output_is_recorded() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    hello_and_long(&s).await;
    // Run now: the task id comes back at once; the output is readable when it ends.
    let (code, run) = s.call(Method::POST, "/api/jobs/hello/execute", None).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{run}");
    let task = run["task_id"].as_str().unwrap().to_owned();
    wait_for("hello to succeed", || async {
        task_status(&s, &task).await == 1
    })
    .await;
    let (_, t) = s
        .call(Method::GET, &format!("/api/tasks/{task}"), None)
        .await;
    assert_eq!(t["output"], "hello world\n", "{t}");
    assert_eq!(
        (
            t["exit_code"].as_i64(),
            t["attempts"].as_array().unwrap().len()
        ),
        (Some(0), 1)
    );
    for field in [
        "task_id",
        "job_id",
        "executor_id",
        "status",
        "start_time",
        "end_time",
        "output",
        "error",
    ] {
        assert!(t.get(field).is_some(), "{field} missing: {t}");
    }
    s.stop().await;
}

/// The params given to one run are merged over the job's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_params_of_one_run_are_merged_over_the_jobs() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    hello_and_long(&s).await;
    // Parameters of one run are merged over the job's.
    let (code, run2) = s
        .call(
            Method::POST,
            "/api/jobs/hello/execute",
            Some(json!({"params": {"who": "there"}})),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let task2 = run2["task_id"].as_str().unwrap().to_owned();
    wait_for("the second run", || async {
        task_status(&s, &task2).await == 1
    })
    .await;
    let (_, t2) = s
        .call(Method::GET, &format!("/api/tasks/{task2}"), None)
        .await;
    assert_eq!(t2["output"], "hello there\n");
    s.stop().await;
}

/// A running task is cancelled through its job or directly; cancelling an ended one says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_task_is_cancelled_through_its_job_or_directly() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    hello_and_long(&s).await;
    // Cancel a running task through its job, and one directly.
    let (_, r) = s.call(Method::POST, "/api/jobs/long/execute", None).await;
    let long = r["task_id"].as_str().unwrap().to_owned();
    wait_for("long to start", || async {
        task_status(&s, &long).await == 5
    })
    .await;
    let (code, c) = s.call(Method::POST, "/api/jobs/long/cancel", None).await;
    assert_eq!(
        (code, c["cancelled"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{c}"
    );
    wait_for("long to be cancelled", || async {
        task_status(&s, &long).await == 4
    })
    .await;
    let (_, r) = s.call(Method::POST, "/api/jobs/long/execute", None).await;
    let long2 = r["task_id"].as_str().unwrap().to_owned();
    wait_for("long2 to start", || async {
        task_status(&s, &long2).await == 5
    })
    .await;
    let (code, c) = s
        .call(Method::POST, &format!("/api/tasks/{long2}/cancel"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{c}");
    assert_eq!(c["outcome"], "cancelling", "{c}");
    wait_for("long2 to be cancelled", || async {
        task_status(&s, &long2).await == 4
    })
    .await;
    let (_, c) = s
        .call(Method::POST, &format!("/api/tasks/{long2}/cancel"), None)
        .await;
    assert_eq!(c["outcome"], "already_finished", "{c}");
    s.stop().await;
}

/// History: newest first, filtered by status and time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_newest_first_and_filtered_by_status_and_time() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    hello_and_long(&s).await;
    run_until(&s, "hello", None, 1).await;
    let task2 = run_until(&s, "hello", None, 1).await;
    for _ in 0..2 {
        let long = run_until(&s, "long", None, 5).await;
        let (code, _) = s
            .call(Method::POST, &format!("/api/tasks/{long}/cancel"), None)
            .await;
        assert_eq!(code, StatusCode::OK);
        wait_for("long to be cancelled", || async {
            task_status(&s, &long).await == 4
        })
        .await;
    }
    // History: newest first, filtered by status and time.
    let (code, h) = s.call(Method::GET, "/api/jobs/hello/history", None).await;
    assert_eq!(
        (code, h["total"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{h}"
    );
    assert_eq!(h["items"][0]["task_id"], task2.as_str(), "newest first");
    assert_eq!(
        total(&s, "/api/jobs/long/history?status=cancelled").await,
        2
    );
    assert_eq!(
        total(&s, "/api/jobs/long/history?status=succeeded,2").await,
        0
    );
    assert_eq!(
        total(
            &s,
            "/api/jobs/hello/history?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z"
        )
        .await,
        0
    );
    s.stop().await;
}

/// Unknown ids, bad filters and bad bodies get an error that names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_run_and_history_requests_get_errors_naming_what_is_wrong() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    hello_and_long(&s).await;
    for (path, mentions) in [
        ("/api/jobs/hello/history?status=bogus", "status"),
        ("/api/jobs/hello/history?from=yesterday", "from"),
        ("/api/jobs/missing/history", "missing"),
        ("/api/tasks/task-missing", "task-missing"),
        ("/api/jobs/hello/next-fires?count=0", "count"),
        ("/api/jobs/missing/next-fires", "missing"),
    ] {
        let (code, v) = s.call(Method::GET, path, None).await;
        assert!(code.is_client_error(), "{path}: {code} {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(mentions),
            "{path}: {v}"
        );
        assert!(!error_code(&v).is_empty(), "{path}: {v}");
    }
    let (code, _) = s
        .call(Method::POST, "/api/tasks/task-missing/cancel", None)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, v) = s
        .raw(
            Method::POST,
            "/api/jobs/hello/execute",
            b"{\"params\": 3}".to_vec(),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    s.stop().await;
}

/// Next fires of a cron job are its periods apart; a disabled job has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_fires_are_whole_periods_apart_and_none_while_disabled() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    // Next fires of a cron job: whole seconds apart; none for a request-only job.
    let (code, _) = s
        .call(
            Method::POST,
            "/api/jobs",
            Some(json!({"job_id": "tick", "name": "tick", "command": "true",
            "cron_expression": "*/5 * * * * *", "enabled": false})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let (_, n) = s
        .call(Method::GET, "/api/jobs/tick/next-fires?count=3", None)
        .await;
    assert_eq!(
        n["next_fires"].as_array().unwrap().len(),
        0,
        "disabled: {n}"
    );
    s.call(
        Method::PUT,
        "/api/jobs/tick",
        Some(json!({"enabled": true})),
    )
    .await;
    let (_, n) = s
        .call(Method::GET, "/api/jobs/tick/next-fires?count=3", None)
        .await;
    let times: Vec<chrono::DateTime<chrono::Utc>> = n["next_fires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    assert!(
        times.windows(2).all(|w| (w[1] - w[0]).num_seconds() == 5),
        "{times:?}"
    );
    s.stop().await;
}

/// Run-now params the task could not carry are refused with the reason, and the job still runs: a
/// 1,040,000-byte param (under the 1 MiB body limit, over what a broker accepts), a NUL byte (no process
/// environment carries one), and two names that become one environment variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_params_a_task_cannot_carry_are_refused_with_the_reason() {
    let dir = TempDir::new();
    // The daemon's default body limit (1 MiB), which a 1,040,000-byte param stays under.
    let mut config = support::test_config(&dir.0);
    config.max_body_bytes = 1 << 20;
    let s = Server::start_with(config).await;
    hello_and_long(&s).await;
    let big = "x".repeat(1_040_000);
    for (params, says) in [
        (json!({ "blob": big }), "at most 16384 bytes"),
        (json!({ "who": "a\u{0}b" }), "NUL"),
        (
            json!({ "max-items": "1", "max_items": "2" }),
            "JOBSCHED_PARAM_MAX_ITEMS",
        ),
        // Colliding with the job's own `who` once merged over it.
        (json!({ "WHO": "x" }), "JOBSCHED_PARAM_WHO"),
    ] {
        let (code, v) = s
            .call(
                Method::POST,
                "/api/jobs/hello/execute",
                Some(json!({ "params": params })),
            )
            .await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(error_code(&v), "invalid", "{v}");
        let msg = v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
            + &v.to_string();
        assert!(msg.contains("params") && msg.contains(says), "{v}");
    }
    assert_eq!(
        total(&s, "/api/jobs/hello/history").await,
        0,
        "nothing recorded"
    );
    let task = run_until(&s, "hello", Some(json!({"params": {"who": "you"}})), 1).await;
    let (_, t) = s
        .call(Method::GET, &format!("/api/tasks/{task}"), None)
        .await;
    assert!(t.to_string().contains("hello you"), "{t}");
    s.stop().await;
}
