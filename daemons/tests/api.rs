//! The HTTP API over real HTTP against the all-in-one mode: every endpoint, its success and error cases.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_created_read_listed_changed_and_deleted_with_clear_errors() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let (code, job) = s
        .call(
            Method::POST,
            "/api/jobs",
            Some(
                json!({"job_id": "nightly", "name": "nightly report", "command": "echo report",
                "cron_expression": "0 30 2 * * *", "time_zone": "Europe/Berlin", "owner": "alice",
                "retry_count": 2, "retry_interval": 30, "priority": 5}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{job}");
    for field in [
        "job_id",
        "name",
        "command",
        "type",
        "priority",
        "cron_expression",
        "timeout",
        "retry_count",
        "retry_interval",
        "create_time",
        "update_time",
    ] {
        assert!(job.get(field).is_some(), "field {field} missing: {job}");
    }
    assert_eq!(job["version"], 1);
    assert!(
        job["create_time"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 UTC: {job}"
    );
    for i in 0..3 {
        let (code, _) = s
            .call(
                Method::POST,
                "/api/jobs",
                Some(json!({"job_id": format!("other-{i}"), "name": format!("other {i}"),
                    "command": "true", "schedule_type": "manual", "enabled": i != 1, "owner": "bob"})),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED);
    }

    let (code, got) = s.call(Method::GET, "/api/jobs/nightly", None).await;
    assert_eq!((code, &got), (StatusCode::OK, &job));
    let (_, page) = s
        .call(Method::GET, "/api/jobs?page=1&page_size=2", None)
        .await;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["items"].as_array().unwrap().len()
        ),
        (Some(4), 2)
    );
    assert_eq!(
        page["items"][0]["job_id"], "nightly",
        "ordered by id: {page}"
    );
    let (_, page) = s
        .call(Method::GET, "/api/jobs?owner=bob&enabled=false", None)
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["job_id"], "other-1");
    let (_, page) = s.call(Method::GET, "/api/jobs?name=report", None).await;
    assert_eq!(page["total"], 1);

    // A partial change keeps the other fields and bumps the version.
    let (code, changed) = s
        .call(
            Method::PUT,
            "/api/jobs/nightly",
            Some(json!({"name": "renamed", "version": 1})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{changed}");
    assert_eq!(
        (changed["name"].as_str(), changed["version"].as_u64()),
        (Some("renamed"), Some(2))
    );
    assert_eq!(changed["cron_expression"], "0 30 2 * * *");

    // Errors: each says what is wrong, and none changes the job.
    let cases: Vec<(Method, &str, Value, StatusCode, &str, &str)> = vec![
        (
            Method::PUT,
            "/api/jobs/nightly",
            json!({"name": "x", "version": 1}),
            StatusCode::CONFLICT,
            "conflict",
            "version",
        ),
        (
            Method::PUT,
            "/api/jobs/nightly",
            json!({"cron_expression": "0 61 * * * *"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "minute",
        ),
        (
            Method::PUT,
            "/api/jobs/nightly",
            json!({"time_zone": "Mars/Olympus"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "time_zone",
        ),
        (
            Method::PUT,
            "/api/jobs/nightly",
            json!({"timeout": -1}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "timeout",
        ),
        (
            Method::PUT,
            "/api/jobs/nightly",
            json!({"job_id": "other-0"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "job_id",
        ),
        (
            Method::POST,
            "/api/jobs",
            json!({"job_id": "nightly", "name": "dup", "command": "true"}),
            StatusCode::CONFLICT,
            "already_exists",
            "nightly",
        ),
        (
            Method::POST,
            "/api/jobs",
            json!({"name": "x", "command": "true", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "colour",
        ),
        (
            Method::POST,
            "/api/jobs",
            json!({"command": "true"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "name",
        ),
        (
            Method::POST,
            "/api/jobs",
            json!({"job_id": "bad id!", "name": "x", "command": "true"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "bad id!",
        ),
        (
            Method::POST,
            "/api/jobs",
            json!([1, 2]),
            StatusCode::BAD_REQUEST,
            "invalid",
            "body",
        ),
        (
            Method::GET,
            "/api/jobs/missing",
            Value::Null,
            StatusCode::NOT_FOUND,
            "not_found",
            "missing",
        ),
        (
            Method::PUT,
            "/api/jobs/missing",
            json!({"name": "x"}),
            StatusCode::NOT_FOUND,
            "not_found",
            "missing",
        ),
        (
            Method::DELETE,
            "/api/jobs/missing",
            Value::Null,
            StatusCode::NOT_FOUND,
            "not_found",
            "missing",
        ),
        (
            Method::GET,
            "/api/jobs/bad%20id",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid",
            "bad id",
        ),
        (
            Method::GET,
            "/api/jobs?page_size=0",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid",
            "page_size",
        ),
        (
            Method::GET,
            "/api/jobs?page_size=5000",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid",
            "page_size",
        ),
        (
            Method::GET,
            "/api/jobs?page=0",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid",
            "page",
        ),
        (
            Method::GET,
            "/api/jobs?enabled=maybe",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid",
            "enabled",
        ),
        (
            Method::GET,
            "/api/jobs?colour=red",
            Value::Null,
            StatusCode::BAD_REQUEST,
            "invalid",
            "colour",
        ),
    ];
    for (method, path, body, want, code_want, mentions) in cases {
        let body = (!body.is_null()).then_some(body);
        let (code, v) = s.call(method.clone(), path, body.clone()).await;
        assert_eq!(code, want, "{method} {path} {body:?}: {v}");
        assert_eq!(error_code(&v), code_want, "{method} {path}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(mentions),
            "{method} {path}: '{msg}' should name {mentions}"
        );
    }
    for raw in [&b"{not json"[..], b"", b"{\"name\": \"x\", \"command\": 5}"] {
        let (code, v) = s.raw(Method::POST, "/api/jobs", raw.to_vec()).await;
        assert_eq!(
            (code, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid"),
            "{v}"
        );
    }
    let huge = serde_json::to_vec(&json!({"name": "big", "command": "x".repeat(200_000)})).unwrap();
    let (code, v) = s.raw(Method::POST, "/api/jobs", huge).await;
    assert_eq!(
        (code, error_code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{v}"
    );
    let (_, still) = s.call(Method::GET, "/api/jobs/nightly", None).await;
    assert_eq!(still, changed, "no bad request changed the job");
    let (_, page) = s.call(Method::GET, "/api/jobs", None).await;
    assert_eq!(page["total"], 4, "no bad request created a job");

    let (code, v) = s.call(Method::DELETE, "/api/jobs/nightly", None).await;
    assert_eq!((code, v), (StatusCode::NO_CONTENT, Value::Null));
    let (code, _) = s.call(Method::GET, "/api/jobs/nightly", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_now_cancel_and_show_their_history_tasks_and_next_fires() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
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
