//! The permission matrix: every route of the OpenAPI document called by each kind of caller — anonymous,
//! read-only, the user who owns the target, another user, an administrator — against the table below
//! (the same table is in docs/SECURITY.md; the test checks that too). A route without a row fails the
//! test, so a new route cannot ship without a decision about who may call it.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, TempDir, login};

/// The callers, in the order of the table's columns.
const CALLERS: [&str; 5] = ["anonymous", "read_only", "owner", "other user", "admin"];

/// `(method, path, statuses by caller)`: the statuses each caller gets for a well-formed request.
const MATRIX: &[(&str, &str, [u16; 5])] = &[
    ("GET", "/api/jobs", [401, 200, 200, 200, 200]),
    ("POST", "/api/jobs", [401, 403, 201, 201, 201]),
    ("POST", "/api/jobs/bulk", [401, 403, 200, 200, 200]),
    ("GET", "/api/jobs/{jobId}", [401, 200, 200, 404, 200]),
    ("PUT", "/api/jobs/{jobId}", [401, 403, 200, 404, 200]),
    ("DELETE", "/api/jobs/{jobId}", [401, 403, 204, 404, 204]),
    (
        "POST",
        "/api/jobs/{jobId}/execute",
        [401, 403, 202, 404, 202],
    ),
    (
        "POST",
        "/api/jobs/{jobId}/cancel",
        [401, 403, 200, 404, 200],
    ),
    (
        "GET",
        "/api/jobs/{jobId}/history",
        [401, 200, 200, 404, 200],
    ),
    (
        "GET",
        "/api/jobs/{jobId}/next-fires",
        [401, 200, 200, 404, 200],
    ),
    ("GET", "/api/tasks/{taskId}", [401, 200, 200, 404, 200]),
    ("GET", "/api/tasks/{taskId}/log", [401, 200, 200, 404, 200]),
    (
        "GET",
        "/api/tasks/{taskId}/log/stream",
        [401, 200, 200, 404, 200],
    ),
    (
        "POST",
        "/api/tasks/{taskId}/cancel",
        [401, 403, 200, 404, 200],
    ),
    ("GET", "/api/executors", [401, 200, 200, 200, 200]),
    (
        "GET",
        "/api/executors/{executorId}",
        [401, 200, 200, 200, 200],
    ),
    (
        "POST",
        "/api/executors/{executorId}/disable",
        [401, 403, 403, 403, 200],
    ),
    (
        "POST",
        "/api/executors/{executorId}/enable",
        [401, 403, 403, 403, 200],
    ),
    ("GET", "/api/system/status", [401, 200, 200, 200, 200]),
    ("GET", "/api/system/config", [401, 200, 200, 200, 200]),
    ("PUT", "/api/system/config", [401, 403, 403, 403, 200]),
    ("GET", "/api/openapi.json", [401, 200, 200, 200, 200]),
    ("GET", "/healthz", [200, 200, 200, 200, 200]),
    ("GET", "/readyz", [200, 200, 200, 200, 200]),
    ("POST", "/api/auth/login", [200, 200, 200, 200, 200]),
    ("POST", "/api/auth/logout", [401, 204, 204, 204, 204]),
    ("GET", "/api/auth/me", [401, 200, 200, 200, 200]),
    ("PUT", "/api/auth/password", [401, 200, 200, 200, 200]),
    ("GET", "/api/users", [401, 403, 403, 403, 200]),
    ("POST", "/api/users", [401, 403, 403, 403, 201]),
    ("GET", "/api/users/{name}", [401, 403, 403, 403, 200]),
    ("PUT", "/api/users/{name}", [401, 403, 403, 403, 200]),
    ("DELETE", "/api/users/{name}", [401, 403, 403, 403, 204]),
    (
        "POST",
        "/api/users/{name}/password",
        [401, 403, 403, 403, 204],
    ),
    ("GET", "/api/tokens", [401, 200, 200, 200, 200]),
    ("POST", "/api/tokens", [401, 201, 201, 201, 201]),
    ("DELETE", "/api/tokens/{tokenId}", [401, 404, 200, 404, 200]),
    ("GET", "/api/audit", [401, 403, 403, 403, 200]),
    ("GET", "/api/alerts/config", [401, 200, 403, 403, 200]),
    ("PUT", "/api/alerts/config", [401, 403, 403, 403, 200]),
    ("GET", "/api/alerts/firing", [401, 200, 403, 403, 200]),
    ("GET", "/api/alerts/history", [401, 200, 403, 403, 200]),
];

/// The table as docs/SECURITY.md shows it.
fn markdown() -> String {
    let mut out = format!(
        "| method | path | {} |\n|---|---|{}\n",
        CALLERS.join(" | "),
        "---|".repeat(CALLERS.len())
    );
    for (m, p, codes) in MATRIX {
        let cells: Vec<String> = codes.iter().map(u16::to_string).collect();
        out.push_str(&format!("| {m} | `{p}` | {} |\n", cells.join(" | ")));
    }
    out
}

/// The users of the matrix: their names and passwords.
const PASSWORDS: [(&str, &str); 3] = [
    ("reader", "reader password 1"),
    ("owner", "owner password 12"),
    ("other", "other password 12"),
];

struct Fixture {
    server: Server,
    executor: String,
    /// A fresh number per cell, for fresh targets.
    n: std::sync::atomic::AtomicU32,
}

impl Fixture {
    fn fresh(&self) -> u32 {
        self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// A fresh login token of caller `c` (none for the anonymous caller).
    async fn token(&self, c: usize) -> String {
        let http = reqwest::Client::new();
        match c {
            0 => String::new(),
            1..=3 => {
                let (name, pw) = PASSWORDS[c - 1];
                login(&http, &self.server.base, name, pw).await
            }
            _ => login(&http, &self.server.base, "admin", ADMIN_PASSWORD).await,
        }
    }

    async fn ok(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (code, v) = self.server.call_as(token, method, path, body).await;
        assert!(code.is_success(), "setting up {path}: {code} {v}");
        v
    }

    /// The path with fresh targets, and the body of a well-formed request.
    async fn request(&self, method: &str, path: &str) -> (String, Option<Value>) {
        let n = self.fresh();
        let owner = self.token(2).await;
        let mut p = path.to_owned();
        if p.contains("{jobId}") || p.contains("{taskId}") {
            let id = format!("m-{n}");
            self.ok(
                &owner,
                Method::POST,
                "/api/jobs",
                Some(json!({"job_id": id, "name": "matrix", "command": "true",
                    "schedule_type": "manual"})),
            )
            .await;
            p = p.replace("{jobId}", &id);
            if p.contains("{taskId}") {
                let t = self
                    .ok(
                        &owner,
                        Method::POST,
                        &format!("/api/jobs/{id}/execute"),
                        None,
                    )
                    .await;
                p = p.replace("{taskId}", t["task_id"].as_str().unwrap());
            }
        }
        if p.contains("{name}") {
            let name = format!("victim-{n}");
            // A fresh administrator's session: a password change in an earlier cell ended the others.
            self.ok(
                &self.token(4).await,
                Method::POST,
                "/api/users",
                Some(json!({"name": name, "role": "user", "password": "victim password 1"})),
            )
            .await;
            p = p.replace("{name}", &name);
        }
        if p.contains("{tokenId}") {
            let t = self
                .ok(
                    &owner,
                    Method::POST,
                    "/api/tokens",
                    Some(json!({"name": "ci"})),
                )
                .await;
            p = p.replace("{tokenId}", t["token_id"].as_str().unwrap());
        }
        p = p.replace("{executorId}", &self.executor);
        let body = match (method, path) {
            ("POST", "/api/jobs") => Some(json!({"job_id": format!("new-{n}"), "name": "new",
                "command": "true", "schedule_type": "manual"})),
            ("POST", "/api/jobs/bulk") => Some(json!({"jobs": [{"job_id": format!("bulk-{n}"),
                "name": "bulk", "command": "true", "schedule_type": "manual"}]})),
            ("PUT", "/api/jobs/{jobId}") => Some(json!({"description": "changed"})),
            ("PUT", "/api/system/config") => Some(json!({})),
            ("PUT", "/api/alerts/config") => Some(json!({})),
            ("POST", "/api/users") => Some(json!({"name": format!("new-user-{n}"), "role": "user",
                "password": "a new password 1"})),
            ("PUT", "/api/users/{name}") => Some(json!({"role": "read_only"})),
            ("POST", "/api/users/{name}/password") => {
                Some(json!({"password": "reset password 12"}))
            }
            ("POST", "/api/tokens") => Some(json!({"name": format!("token-{n}")})),
            _ => None,
        };
        (p, body)
    }

    /// A body that depends on the caller (their own credentials).
    fn caller_body(c: usize, method: &str, path: &str) -> Option<Value> {
        let (name, pw) = match c {
            1..=3 => PASSWORDS[c - 1],
            _ => ("admin", ADMIN_PASSWORD),
        };
        match (method, path) {
            ("POST", "/api/auth/login") => Some(json!({"name": name, "password": pw})),
            // The same password again: the caller can still log in for the next cells.
            ("PUT", "/api/auth/password") => {
                Some(json!({"current_password": pw, "new_password": pw}))
            }
            _ => None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_kind_of_caller_as_the_matrix_says() {
    let dir = TempDir::new();
    let server = Server::start(&dir.0).await;
    for (i, (name, pw)) in PASSWORDS.iter().enumerate() {
        let role = if i == 0 { "read_only" } else { "user" };
        let (code, v) = server
            .call(
                Method::POST,
                "/api/users",
                Some(json!({"name": name, "role": role, "password": pw})),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{v}");
    }
    let (_, status) = server.call(Method::GET, "/api/system/status", None).await;
    let executor = status["executor_id"].as_str().unwrap().to_owned();
    let (_, doc) = server.call(Method::GET, "/api/openapi.json", None).await;
    let f = Fixture {
        server,
        executor,
        n: Default::default(),
    };

    // Every documented route has a row, and every row is a documented route.
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    for (m, p) in &documented {
        assert!(
            MATRIX.iter().any(|(mm, pp, _)| mm == m && pp == p),
            "{m} {p} is in the OpenAPI document but not in the permission matrix"
        );
    }
    assert_eq!(
        documented.len(),
        MATRIX.len(),
        "the matrix has a row per route"
    );

    let mut wrong = Vec::new();
    for (method, path, expected) in MATRIX {
        for (c, want) in expected.iter().enumerate() {
            let (p, body) = f.request(method, path).await;
            let body = body.or_else(|| Fixture::caller_body(c, method, path));
            let token = f.token(c).await;
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let (got, v) = f.server.call_as(&token, m, &p, body).await;
            if got.as_u16() != *want {
                wrong.push(format!(
                    "{method} {path} as {}: {got}, the matrix says {want} ({v})",
                    CALLERS[c]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "cells that differ:\n{}", wrong.join("\n"));

    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/SECURITY.md"))
        .expect("docs/SECURITY.md");
    assert!(
        doc.contains(&markdown()),
        "docs/SECURITY.md must hold the permission matrix exactly as this test has it:\n{}",
        markdown()
    );
    f.server.stop().await;
}
