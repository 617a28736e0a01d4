//! The audit log: every route that changes something (each POST, PUT and DELETE of the OpenAPI document)
//! leaves exactly one entry per call — with its user, address, action, target and outcome, the fields of
//! a job before and after with secrets redacted — whether it succeeded, was refused or failed.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, TempDir};

/// A well-formed call of each mutating route: `(method, path, body, action, target)`.
fn calls(
    executor: &str,
    task: &str,
    token: &str,
) -> Vec<(&'static str, String, Value, &'static str, String)> {
    vec![
        (
            "POST",
            "/api/jobs".into(),
            json!({"job_id": "aud", "name": "audited", "command": "true", "schedule_type": "manual",
                "params": {"pw": {"secret": "s3cret value"}}}),
            "job.create",
            "job:aud".into(),
        ),
        (
            "PUT",
            "/api/jobs/{jobId}".into(),
            json!({"description": "changed"}),
            "job.update",
            "job:aud".into(),
        ),
        (
            "POST",
            "/api/jobs/{jobId}/execute".into(),
            Value::Null,
            "job.execute",
            "job:aud".into(),
        ),
        (
            "POST",
            "/api/jobs/{jobId}/cancel".into(),
            Value::Null,
            "job.cancel",
            "job:aud".into(),
        ),
        (
            "POST",
            "/api/jobs/bulk".into(),
            json!({"jobs": [{"job_id": "aud-bulk", "name": "b", "command": "true", "schedule_type": "manual"}]}),
            "job.import",
            "jobs".into(),
        ),
        (
            "POST",
            "/api/tasks/{taskId}/cancel".into(),
            Value::Null,
            "task.cancel",
            format!("task:{task}"),
        ),
        (
            "POST",
            "/api/executors/{executorId}/disable".into(),
            Value::Null,
            "executor.disable",
            format!("executor:{executor}"),
        ),
        (
            "POST",
            "/api/executors/{executorId}/enable".into(),
            Value::Null,
            "executor.enable",
            format!("executor:{executor}"),
        ),
        (
            "PUT",
            "/api/system/config".into(),
            json!({"audit_retention_days": 90}),
            "config.update",
            "config".into(),
        ),
        (
            "PUT",
            "/api/alerts/config".into(),
            json!({"rules": [{"id": "failures", "condition": {"kind": "task_failure"}}]}),
            "alerts.update",
            "alerts".into(),
        ),
        (
            "POST",
            "/api/users".into(),
            json!({"name": "carol", "role": "user", "password": "carol password 1"}),
            "user.create",
            "user:carol".into(),
        ),
        (
            "PUT",
            "/api/users/{name}".into(),
            json!({"role": "read_only"}),
            "user.update",
            "user:carol".into(),
        ),
        (
            "POST",
            "/api/users/{name}/password".into(),
            json!({"password": "carol password 2"}),
            "user.password_reset",
            "user:carol".into(),
        ),
        (
            "POST",
            "/api/tokens".into(),
            json!({"name": "ci"}),
            "token.create",
            String::new(),
        ),
        (
            "DELETE",
            "/api/tokens/{tokenId}".into(),
            Value::Null,
            "token.revoke",
            format!("token:{token}"),
        ),
        (
            "PUT",
            "/api/auth/password".into(),
            json!({"current_password": ADMIN_PASSWORD, "new_password": ADMIN_PASSWORD}),
            "user.password_change",
            "user:admin".into(),
        ),
        (
            "DELETE",
            "/api/users/{name}".into(),
            Value::Null,
            "user.delete",
            "user:carol".into(),
        ),
        (
            "DELETE",
            "/api/jobs/{jobId}".into(),
            Value::Null,
            "job.delete",
            "job:aud".into(),
        ),
        (
            "POST",
            "/api/auth/login".into(),
            json!({"name": "admin", "password": ADMIN_PASSWORD}),
            "auth.login",
            "user:admin".into(),
        ),
        (
            "POST",
            "/api/auth/logout".into(),
            Value::Null,
            "auth.logout",
            String::new(),
        ),
    ]
}

async fn audit(s: &Server, token: &str) -> Vec<Value> {
    let (c, v) = s
        .call_as(token, Method::GET, "/api/audit?page_size=1000", None)
        .await;
    assert_eq!(c, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_leaves_exactly_one_audit_entry() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let (_, status) = s.call(Method::GET, "/api/system/status", None).await;
    let executor = status["executor_id"].as_str().unwrap().to_owned();
    // A task to cancel, and a token to revoke (made before counting).
    s.call(
        Method::POST,
        "/api/jobs",
        Some(json!({"job_id": "t", "name": "t", "command": "sleep 30", "schedule_type": "manual"})),
    )
    .await;
    let (_, run) = s.call(Method::POST, "/api/jobs/t/execute", None).await;
    let task = run["task_id"].as_str().unwrap().to_owned();
    let (_, tok) = s
        .call(
            Method::POST,
            "/api/tokens",
            Some(json!({"name": "to-revoke"})),
        )
        .await;
    let token_id = tok["token_id"].as_str().unwrap().to_owned();
    let (_, doc) = s.call(Method::GET, "/api/openapi.json", None).await;

    let calls = calls(&executor, &task, &token_id);
    // Every mutating route of the document is called.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            if ["post", "put", "delete"].contains(&m.as_str()) {
                assert!(
                    calls
                        .iter()
                        .any(|(cm, cp, ..)| cm.eq_ignore_ascii_case(m) && cp == path),
                    "{} {path} changes something but this test does not call it",
                    m.to_uppercase()
                );
            }
        }
    }

    let mut token = s.token.clone();
    let mut seen = audit(&s, &token).await.len();
    for (method, path, body, action, target) in calls {
        let p = path
            .replace("{jobId}", "aud")
            .replace("{taskId}", &task)
            .replace("{executorId}", &executor)
            .replace("{name}", "carol")
            .replace("{tokenId}", &token_id);
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (c, v) = s
            .call_as(&token, m, &p, (!body.is_null()).then_some(body))
            .await;
        assert!(c.is_success(), "{method} {p}: {c} {v}");
        if let Some(t) = v["token"].as_str().filter(|_| action != "token.create") {
            // A password change or a login answers with a new session; the old ones ended.
            token = t.to_owned();
        }
        if action == "auth.logout" {
            token = support::login(&reqwest::Client::new(), &s.base, "admin", ADMIN_PASSWORD).await;
        }
        let entries = audit(&s, &token).await;
        // The logins this test makes to go on are entries too; only the call's own entries count.
        let new: Vec<&Value> = entries[..entries.len() - seen]
            .iter()
            .filter(|e| !(e["action"] == "auth.login" && action != "auth.login"))
            .collect();
        assert_eq!(
            new.len(),
            1,
            "{method} {p} left {} entries: {new:?}",
            new.len()
        );
        let e = new[0];
        assert_eq!(e["action"], action, "{e}");
        if !target.is_empty() {
            assert_eq!(e["target"], target, "{e}");
        }
        assert_eq!(
            (e["user"].as_str(), e["outcome"].as_str()),
            (Some("admin"), Some("success")),
            "{e}"
        );
        assert_eq!(e["client"], "127.0.0.1", "{e}");
        if action == "job.create" {
            assert_eq!(
                e["detail"]["after"]["params"]["pw"], "***",
                "secrets redacted: {e}"
            );
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        if action == "job.update" {
            assert_eq!(e["detail"]["before"]["description"], "", "{e}");
            assert_eq!(e["detail"]["after"]["description"], "changed", "{e}");
        }
        seen = entries.len();
    }

    // Refused and failed attempts leave one entry each too.
    let (c, _) = s
        .call_as(
            &token,
            Method::POST,
            "/api/users",
            Some(json!({"name": "reader", "role": "read_only", "password": "reader password 1"})),
        )
        .await;
    assert_eq!(c, StatusCode::CREATED);
    let reader = support::login(
        &reqwest::Client::new(),
        &s.base,
        "reader",
        "reader password 1",
    )
    .await;
    let seen = audit(&s, &token).await.len();
    let (c, _) = s
        .call_as(
            &reader,
            Method::POST,
            "/api/jobs",
            Some(json!({"name": "x", "command": "id"})),
        )
        .await;
    assert_eq!(c, StatusCode::FORBIDDEN);
    let (c, _) = s
        .call_as(
            &token,
            Method::POST,
            "/api/jobs",
            Some(json!({"name": "x", "cron_expression": "61 * * * * *"})),
        )
        .await;
    assert_eq!(c, StatusCode::BAD_REQUEST);
    let (c, _) = s
        .send(
            s.request(Method::POST, "/api/auth/login")
                .json(&json!({"name": "admin", "password": "wrong"})),
        )
        .await;
    assert_eq!(c, StatusCode::UNAUTHORIZED);
    let entries = audit(&s, &token).await;
    let new: Vec<(&str, &str, &str)> = entries[..entries.len() - seen]
        .iter()
        .filter(|e| e["user"] != "reader" || e["action"] != "auth.login")
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["user"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        new,
        [
            ("auth.login", "admin", "failed"),
            ("job.create", "admin", "failed"),
            ("job.create", "reader", "denied"),
        ],
        "newest first"
    );

    // Filters, and who may read the log.
    let (_, jobs_only) = s
        .call_as(
            &token,
            Method::GET,
            "/api/audit?action=job.&user=admin",
            None,
        )
        .await;
    assert!(
        jobs_only["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("job.")),
        "{jobs_only}"
    );
    let (c, _) = s.call_as(&reader, Method::GET, "/api/audit", None).await;
    assert_eq!(c, StatusCode::FORBIDDEN);
    s.stop().await;
}
