//! The HTTP API's job routes over real HTTP against the all-in-one mode: create, read, list, change,
//! delete, and the errors of each (one behaviour per test).

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, TempDir, error_code};

/// Creates the `nightly` cron job; returns it as the API answered.
async fn nightly(s: &Server) -> Value {
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
    job
}

/// Renames `nightly` (version 1 → 2); returns the changed job.
async fn rename(s: &Server) -> Value {
    let (code, changed) = s
        .call(
            Method::PUT,
            "/api/jobs/nightly",
            Some(json!({"name": "renamed", "version": 1})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{changed}");
    changed
}

/// Creates three request-only jobs of `bob`, the second disabled.
async fn others(s: &Server) {
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
}

/// A created job carries every field of the design's `jobs` table, version 1, UTC times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_job_has_every_design_field_and_reads_back_the_same() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let job = nightly(&s).await;
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
    let (code, got) = s.call(Method::GET, "/api/jobs/nightly", None).await;
    assert_eq!((code, &got), (StatusCode::OK, &job));
    s.stop().await;
}

/// Lists are paged, ordered by id, and filtered by owner, enabled and name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_in_pages_by_id_and_filtered() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    nightly(&s).await;
    others(&s).await;
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
    s.stop().await;
}

/// A change names only what changes; the version guards against lost updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_change_keeps_the_other_fields_and_bumps_the_version() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    nightly(&s).await;
    // A partial change keeps the other fields and bumps the version.
    let changed = rename(&s).await;
    assert_eq!(
        (changed["name"].as_str(), changed["version"].as_u64()),
        (Some("renamed"), Some(2))
    );
    assert_eq!(changed["cron_expression"], "0 30 2 * * *");
    s.stop().await;
}

/// Every bad request gets a clear error naming what is wrong, and none changes or creates a job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_job_requests_get_errors_naming_what_is_wrong_and_change_nothing() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    nightly(&s).await;
    others(&s).await;
    // At version 2, so that a change naming version 1 is a conflict.
    let changed = rename(&s).await;
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
    s.stop().await;
}

/// A deleted job answers 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_job_is_gone() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    nightly(&s).await;
    let (code, v) = s.call(Method::DELETE, "/api/jobs/nightly", None).await;
    assert_eq!((code, v), (StatusCode::NO_CONTENT, Value::Null));
    let (code, _) = s.call(Method::GET, "/api/jobs/nightly", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    s.stop().await;
}
