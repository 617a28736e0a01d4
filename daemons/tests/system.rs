//! The executors and system endpoints over real HTTP against the all-in-one mode: enabling and disabling
//! executors, the status, the central configuration and health.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Server, TempDir, error_code, task_status, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_can_be_disabled_and_the_system_reports_and_takes_configuration() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let (_, list) = s.call(Method::GET, "/api/executors", None).await;
    assert_eq!(list["total"], 1, "{list}");
    let exec = list["items"][0]["executor_id"].as_str().unwrap().to_owned();
    for field in [
        "executor_id",
        "host",
        "port",
        "status",
        "last_heartbeat_time",
        "register_time",
    ] {
        assert!(
            list["items"][0].get(field).is_some(),
            "{field} missing: {list}"
        );
    }
    assert_eq!(list["items"][0]["status"], 1, "online");
    let (code, e) = s
        .call(
            Method::POST,
            &format!("/api/executors/{exec}/disable"),
            None,
        )
        .await;
    assert_eq!(
        (code, &e["enabled"]),
        (StatusCode::OK, &json!(false)),
        "{e}"
    );
    let (_, e) = s
        .call(Method::GET, &format!("/api/executors/{exec}"), None)
        .await;
    assert_eq!(e["enabled"], false);

    // A disabled executor gets no new task: the run waits, queued, until it is enabled again.
    s.call(
        Method::POST,
        "/api/jobs",
        Some(json!({"job_id": "j", "name": "j", "command": "true",
        "schedule_type": "manual"})),
    )
    .await;
    let (_, r) = s.call(Method::POST, "/api/jobs/j/execute", None).await;
    let task = r["task_id"].as_str().unwrap().to_owned();
    let queued = async |n: u64| {
        wait_for("the engine to hold the runs queued", || async {
            let (_, st) = s.call(Method::GET, "/api/system/status", None).await;
            st["queued"] == n
        })
        .await
    };
    queued(1).await;
    // A second run, then a cancel of it: the engine handles the cancel after the dispatch step that
    // followed the second run's record, so "cancelled" (not "cancelling") means that step, with both runs
    // ready and slots free, gave neither to the disabled executor.
    let (_, r2) = s.call(Method::POST, "/api/jobs/j/execute", None).await;
    let second = r2["task_id"].as_str().unwrap().to_owned();
    queued(2).await;
    let (code, c) = s
        .call(Method::POST, &format!("/api/tasks/{second}/cancel"), None)
        .await;
    assert_eq!(
        (code, c["outcome"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{c}"
    );
    assert_eq!(
        task_status(&s, &task).await,
        0,
        "a task reached a disabled executor"
    );
    let (code, _) = s
        .call(Method::POST, &format!("/api/executors/{exec}/enable"), None)
        .await;
    assert_eq!(code, StatusCode::OK);
    wait_for("the queued task to run", || async {
        task_status(&s, &task).await == 1
    })
    .await;
    for path in [
        "/api/executors/nobody",
        "/api/executors/nobody/enable",
        "/api/executors/nobody/disable",
    ] {
        let method = if path.ends_with("able") {
            Method::POST
        } else {
            Method::GET
        };
        let (code, v) = s.call(method, path, None).await;
        assert_eq!(
            (code, error_code(&v)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
    }

    let (code, st) = s.call(Method::GET, "/api/system/status", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(st["roles"], json!(["standalone"]));
    assert_eq!(
        (st["jobs"].as_u64(), st["executors_online"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (st["running"].as_u64(), st["queued"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(st["last_hour"]["succeeded"], 1);
    assert_eq!(st["last_hour"]["success_rate"], 1.0);
    assert!(
        st["version"].is_string() && st["uptime_secs"].is_u64(),
        "{st}"
    );

    let (_, c) = s.call(Method::GET, "/api/system/config", None).await;
    assert_eq!(c["version"], 0, "{c}");
    let mut config = c["config"].clone();
    config["max_output_bytes"] = json!(131072);
    let (code, put) = s
        .call(
            Method::PUT,
            "/api/system/config?expected_version=0",
            Some(config.clone()),
        )
        .await;
    assert_eq!(
        (code, put["version"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{put}"
    );
    let (_, c) = s.call(Method::GET, "/api/system/config", None).await;
    assert_eq!(
        (c["version"].as_u64(), &c["config"]["max_output_bytes"]),
        (Some(1), &json!(131072))
    );
    let (code, v) = s
        .call(
            Method::PUT,
            "/api/system/config?expected_version=0",
            Some(config.clone()),
        )
        .await;
    assert_eq!(
        (code, error_code(&v)),
        (StatusCode::CONFLICT, "conflict"),
        "{v}"
    );
    config["max_output_bytes"] = json!(1);
    let (code, v) = s
        .call(Method::PUT, "/api/system/config", Some(config))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_output_bytes"),
        "{v}"
    );
    let (code, v) = s
        .call(
            Method::PUT,
            "/api/system/config",
            Some(json!({"speed": 11})),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("speed"),
        "{v}"
    );
    let (_, c) = s.call(Method::GET, "/api/system/config", None).await;
    assert_eq!(c["version"], 1, "refused changes stored nothing");

    for path in ["/healthz", "/readyz"] {
        let (code, v) = s.call(Method::GET, path, None).await;
        assert_eq!(
            (code, &v["status"]),
            (StatusCode::OK, &json!("ok")),
            "{path}"
        );
    }
    let (code, v) = s.call(Method::GET, "/api/nothing-here", None).await;
    assert_eq!((code, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (code, v) = s.call(Method::DELETE, "/api/system/status", None).await;
    assert_eq!(
        (code, error_code(&v)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    s.stop().await;
}
