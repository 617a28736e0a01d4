//! The browser-facing defences and ownership over real HTTP: another user's objects do not exist for a
//! user, cross-site and non-JSON requests are refused, the cookie session needs its CSRF token, and behind
//! a TLS proxy its public URL is the server's own. (Logins and tokens: `logins.rs`.)

mod support;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, TempDir, login, test_config};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_jobs_and_runs_do_not_exist_for_a_user() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let alice = s.user("alice", "user").await;
    let bob = s.user("bob", "user").await;
    let (c, job) = s
        .call_as(
            &alice,
            Method::POST,
            "/api/jobs",
            Some(
                json!({"job_id": "a1", "name": "alice's", "command": "echo mine",
                "schedule_type": "manual"}),
            ),
        )
        .await;
    assert_eq!(c, StatusCode::CREATED, "{job}");
    assert_eq!(job["owner"], "alice", "a job belongs to its creator");
    let (_, run) = s
        .call_as(&alice, Method::POST, "/api/jobs/a1/execute", None)
        .await;
    let task = run["task_id"].as_str().unwrap().to_owned();

    for (m, p, body) in [
        (Method::GET, "/api/jobs/a1".to_owned(), None),
        (Method::GET, "/api/jobs/a1/history".to_owned(), None),
        (Method::GET, "/api/jobs/a1/next-fires".to_owned(), None),
        (Method::GET, format!("/api/tasks/{task}"), None),
        (Method::POST, format!("/api/tasks/{task}/cancel"), None),
        (Method::POST, "/api/jobs/a1/execute".to_owned(), None),
        (Method::POST, "/api/jobs/a1/cancel".to_owned(), None),
        (
            Method::PUT,
            "/api/jobs/a1".to_owned(),
            Some(json!({"command": "rm -rf /"})),
        ),
        (Method::DELETE, "/api/jobs/a1".to_owned(), None),
    ] {
        let (c, v) = s.call_as(&bob, m.clone(), &p, body).await;
        assert_eq!(
            (c, code(&v)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{m} {p}: {v}"
        );
    }
    let (_, list) = s
        .call_as(&bob, Method::GET, "/api/jobs?owner=alice", None)
        .await;
    assert_eq!(list["total"], 0, "a user lists only their own jobs: {list}");
    // Nothing of alice's changed.
    let (_, still) = s.call(Method::GET, "/api/jobs/a1", None).await;
    assert_eq!(still["command"], "echo mine");
    assert_eq!(still["version"], 1);

    // The owner is the creator unless an administrator says otherwise.
    let (c, v) = s
        .call_as(
            &bob,
            Method::POST,
            "/api/jobs",
            Some(json!({"job_id": "b1", "name": "x", "command": "true", "owner": "alice"})),
        )
        .await;
    assert_eq!((c, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
    let (c, v) = s
        .call_as(
            &alice,
            Method::PUT,
            "/api/jobs/a1",
            Some(json!({"owner": "bob"})),
        )
        .await;
    assert_eq!(c, StatusCode::FORBIDDEN, "{v}");
    let (c, v) = s
        .call(Method::PUT, "/api/jobs/a1", Some(json!({"owner": "bob"})))
        .await;
    assert_eq!(
        (c, v["owner"].as_str()),
        (StatusCode::OK, Some("bob")),
        "{v}"
    );
    let (c, _) = s.call_as(&bob, Method::GET, "/api/jobs/a1", None).await;
    assert_eq!(c, StatusCode::OK, "now bob's");

    // An id taken again after a delete does not hand over the earlier job's runs.
    let (c, _) = s
        .call_as(
            &alice,
            Method::POST,
            "/api/jobs",
            Some(
                json!({"job_id": "reused", "name": "a", "command": "echo alice-output",
                "schedule_type": "manual"}),
            ),
        )
        .await;
    assert_eq!(c, StatusCode::CREATED);
    let (_, run) = s
        .call_as(&alice, Method::POST, "/api/jobs/reused/execute", None)
        .await;
    let old_task = run["task_id"].as_str().unwrap().to_owned();
    let (c, _) = s
        .call_as(&alice, Method::DELETE, "/api/jobs/reused", None)
        .await;
    assert_eq!(c, StatusCode::NO_CONTENT);
    let (c, v) = s
        .call_as(
            &bob,
            Method::POST,
            "/api/jobs",
            Some(json!({"job_id": "reused", "name": "b", "command": "true",
                "schedule_type": "manual"})),
        )
        .await;
    assert_eq!(c, StatusCode::CREATED, "{v}");
    let (_, history) = s
        .call_as(&bob, Method::GET, "/api/jobs/reused/history", None)
        .await;
    assert_eq!(history["total"], 0, "alice's runs are not bob's: {history}");
    let (c, _) = s
        .call_as(&bob, Method::GET, &format!("/api/tasks/{old_task}"), None)
        .await;
    assert_eq!(c, StatusCode::NOT_FOUND);
    let (_, all) = s.call(Method::GET, "/api/jobs/reused/history", None).await;
    assert_eq!(
        all["total"], 1,
        "an administrator still sees every run: {all}"
    );

    // User names are one whatever their case: `Carol` is `carol`, also as an owner.
    let (c, u) = s
        .call(
            Method::POST,
            "/api/users",
            Some(json!({"name": "Carol", "role": "user", "password": "carol password 1"})),
        )
        .await;
    assert_eq!(
        (c, u["name"].as_str()),
        (StatusCode::CREATED, Some("carol")),
        "{u}"
    );
    let carol = login(
        &reqwest::Client::new(),
        &s.base,
        "CAROL",
        "carol password 1",
    )
    .await;
    let (c, j) = s
        .call(
            Method::POST,
            "/api/jobs",
            Some(json!({"name": "for carol", "command": "true", "owner": "Carol"})),
        )
        .await;
    assert_eq!(
        (c, j["owner"].as_str()),
        (StatusCode::CREATED, Some("carol")),
        "{j}"
    );
    let (_, mine) = s.call_as(&carol, Method::GET, "/api/jobs", None).await;
    assert_eq!(mine["total"], 1, "{mine}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_and_non_json_requests_are_refused_and_answers_carry_safe_headers() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let job = br#"{"job_id": "x", "name": "x", "command": "id"}"#.to_vec();
    // The attack of the issue: a text/plain POST from another site, even with a valid token.
    let post = |ct: &'static str, origin: Option<&'static str>| {
        let mut r = s
            .request(Method::POST, "/api/jobs")
            .header(header::CONTENT_TYPE, ct)
            .body(job.clone());
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        r
    };
    let (c, v) = s
        .send(post("text/plain", Some("http://evil.example")))
        .await;
    assert_eq!(
        (c, code(&v)),
        (StatusCode::FORBIDDEN, "cross_origin"),
        "{v}"
    );
    let (c, v) = s.send(post("text/plain", None)).await;
    assert_eq!(
        (c, code(&v)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        "{v}"
    );
    let (c, v) = s
        .send(post("application/x-www-form-urlencoded", None))
        .await;
    assert_eq!(c, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    let (c, _) = s.call(Method::GET, "/api/jobs/x", None).await;
    assert_eq!(
        c,
        StatusCode::NOT_FOUND,
        "no refused request created the job"
    );
    let own = format!("http://{}", s.base.trim_start_matches("http://"));
    let (c, v) = s
        .send(
            s.request(Method::POST, "/api/jobs")
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
                .header(header::ORIGIN, own)
                .body(job.clone()),
        )
        .await;
    assert_eq!(c, StatusCode::CREATED, "the server's own origin may: {v}");
    let (c, v) = s
        .send(
            s.request(Method::DELETE, "/api/jobs/x")
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(c, StatusCode::FORBIDDEN, "{v}");

    // DNS rebinding: a name that is not the server's.
    let (c, v) = s
        .send(
            s.request(Method::GET, "/api/jobs")
                .header(header::HOST, "evil.example:8080"),
        )
        .await;
    assert_eq!(
        (c, code(&v)),
        (StatusCode::FORBIDDEN, "host_not_allowed"),
        "{v}"
    );

    let r = s.request(Method::GET, "/api/jobs").send().await.unwrap();
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let r = reqwest::get(format!("{}/api/jobs", s.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_session_needs_its_csrf_token_and_logout_ends_it() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/auth/login", s.base))
        .json(&json!({"name": "admin", "password": ADMIN_PASSWORD, "session": "cookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookies: Vec<String> = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body: Value = r.json().await.unwrap();
    assert!(
        body["token"].is_null(),
        "a cookie session's token is only in the cookie"
    );
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("jobsched_session="))
        .expect("the session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{session} lacks {attr}");
    }
    assert!(
        !session.contains("Secure"),
        "no Secure without TLS: {session}"
    );
    let pair = session.split(';').next().unwrap().to_owned();

    let with_cookie = |m: Method, p: &str| {
        http.request(m, format!("{}{p}", s.base))
            .header(header::COOKIE, &pair)
    };
    let (c, _) = s.send(with_cookie(Method::GET, "/api/jobs")).await;
    assert_eq!(c, StatusCode::OK, "reads need no CSRF token");
    let create = || {
        with_cookie(Method::POST, "/api/jobs")
            .json(&json!({"job_id": "c1", "name": "c", "command": "true"}))
    };
    let (c, v) = s.send(create()).await;
    assert_eq!((c, code(&v)), (StatusCode::FORBIDDEN, "csrf"), "{v}");
    let (c, v) = s
        .send(create().header("x-csrf-token", "0".repeat(64)))
        .await;
    assert_eq!(c, StatusCode::FORBIDDEN, "a wrong token: {v}");
    let (c, v) = s.send(create().header("x-csrf-token", &csrf)).await;
    assert_eq!(c, StatusCode::CREATED, "{v}");
    // The header path needs none: a bearer token cannot be ridden by another site.
    let (c, _) = s
        .call(
            Method::POST,
            "/api/jobs",
            Some(json!({"job_id": "c2", "name": "c", "command": "true"})),
        )
        .await;
    assert_eq!(c, StatusCode::CREATED);

    let r = with_cookie(Method::POST, "/api/auth/logout")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<&str> = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("jobsched_session=") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    let (c, v) = s.send(with_cookie(Method::GET, "/api/jobs")).await;
    assert_eq!(
        (c, code(&v)),
        (StatusCode::UNAUTHORIZED, "token_revoked"),
        "{v}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_proxy_the_public_url_is_the_servers_own() {
    let dir = TempDir::new();
    let mut config = test_config(&dir.0);
    config.public_url = Some("https://jobs.example.com".into());
    let s = Server::start_with(config).await;
    let (c, v) = s
        .send(
            s.request(Method::POST, "/api/jobs")
                .header(header::HOST, "jobs.example.com")
                .header(header::ORIGIN, "https://jobs.example.com")
                .json(&json!({"name": "via the proxy", "command": "true"})),
        )
        .await;
    assert_eq!(
        c,
        StatusCode::CREATED,
        "the proxy's name and origin are the server's: {v}"
    );
    let r = reqwest::Client::new()
        .post(format!("{}/api/auth/login", s.base))
        .json(&json!({"name": "admin", "password": ADMIN_PASSWORD, "session": "cookie"}))
        .send()
        .await
        .unwrap();
    let session = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("jobsched_session="))
        .unwrap();
    assert!(
        session.contains("Secure"),
        "an https public URL makes the cookie Secure: {session}"
    );
    let (c, _) = s
        .send(
            s.request(Method::POST, "/api/jobs")
                .header(header::ORIGIN, "http://jobs.example.com")
                .json(&json!({"name": "x", "command": "true"})),
        )
        .await;
    assert_eq!(c, StatusCode::FORBIDDEN, "plain http is another origin");
    s.stop().await;
}
