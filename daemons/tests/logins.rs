//! Logging in and what a token is worth: failed logins and request rates are limited by the real client
//! address (a spoofed X-Forwarded-For changes nothing), concurrent guesses cannot pass one check, and
//! every kind of bad token or login gets a 401, 400 or 413 that says what is wrong — never a 500, never a
//! change.

mod support;

use base64::Engine;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, TempDir, login, test_config};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_and_request_rates_are_limited_by_the_real_address() {
    let dir = TempDir::new();
    let mut config = test_config(&dir.0);
    config.login_failures_per_minute = 3;
    config.rate_limit_user = 5;
    let s = Server::start_with(config).await;
    let http = reqwest::Client::new();
    let attempt = |name: &str, pw: &str, from: Option<&str>| {
        let mut r = http
            .post(format!("{}/api/auth/login", s.base))
            .json(&json!({"name": name, "password": pw}));
        if let Some(f) = from {
            r = r.header("x-forwarded-for", f);
        }
        r.send()
    };
    // Ten wrong guesses at once: the limit holds under concurrency, each takes its place before the check.
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let url = format!("{}/api/auth/login", s.base);
        guesses.spawn(async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"name": "admin", "password": "wrong password"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let codes: Vec<u16> = guesses.join_all().await;
    assert_eq!(
        codes.iter().filter(|c| **c == 401).count(),
        3,
        "three failures are checked, the rest refused: {codes:?}"
    );
    let r = attempt("admin", ADMIN_PASSWORD, None).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password"
    );
    let wait: u64 = r.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "rate_limited");
    // A spoofed X-Forwarded-For is not believed without a trusted proxy.
    let r = attempt("admin", ADMIN_PASSWORD, Some("203.0.113.7"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // Requests a second per user: 5, with bursts of 10 (the token was made before the failures).
    let mut codes = Vec::new();
    for _ in 0..15 {
        codes.push(s.call(Method::GET, "/api/auth/me", None).await.0);
    }
    assert!(
        codes.contains(&StatusCode::TOO_MANY_REQUESTS) && codes.contains(&StatusCode::OK),
        "{codes:?}"
    );
    s.stop().await;

    // Behind a trusted proxy, the address it names is the client's.
    let dir = TempDir::new();
    let mut config = test_config(&dir.0);
    config.login_failures_per_minute = 2;
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let s = Server::start_with(config).await;
    let attempt = |pw: &str, from: &str| {
        reqwest::Client::new()
            .post(format!("{}/api/auth/login", s.base))
            .header("x-forwarded-for", from)
            .json(&json!({"name": "nobody", "password": pw}))
            .send()
    };
    for _ in 0..2 {
        attempt("x", "198.51.100.1").await.unwrap();
    }
    assert_eq!(
        attempt("x", "198.51.100.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let r = reqwest::Client::new()
        .post(format!("{}/api/auth/login", s.base))
        .header("x-forwarded-for", "198.51.100.2")
        .json(&json!({"name": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "another client behind the proxy"
    );
    let (_, a) = s
        .call(
            Method::GET,
            "/api/audit?action=auth.login&page_size=100",
            None,
        )
        .await;
    let clients: Vec<&str> = a["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["client"].as_str().unwrap())
        .collect();
    assert!(
        clients.contains(&"198.51.100.1") && clients.contains(&"198.51.100.2"),
        "{clients:?}"
    );
    s.stop().await;
}

/// A token signed with `key` claiming `claims`.
fn sign(key: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_bad_logins_get_clear_errors_and_change_nothing() {
    let dir = TempDir::new();
    let key = b"a test signing key of more than 32 bytes".to_vec();
    let key_file = dir.0.join("jwt.key");
    std::fs::write(&key_file, &key).unwrap();
    let mut config = test_config(&dir.0);
    config.jwt_secret_file = Some(key_file);
    let s = Server::start_with(config).await;
    let (_, me) = s.call(Method::GET, "/api/auth/me", None).await;
    let admin_id = me["user_id"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    let claims = |sub: &str, exp: i64| {
        json!({"sub": sub, "name": "admin", "role": "admin", "iat": now - 10,
            "iat_ms": (now - 10) * 1000, "exp": exp, "jti": format!("j{exp}"), "iss": "jobsched"})
    };
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let unsigned = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims(&admin_id, now + 3600).to_string())
    );
    let alice = s.user("alice", "user").await;
    let (_, alice_me) = s.call_as(&alice, Method::GET, "/api/auth/me", None).await;
    let alice_id = alice_me["user_id"].as_str().unwrap().to_owned();
    let gone = s.user("gone", "user").await;
    let (c, _) = s.call(Method::DELETE, "/api/users/gone", None).await;
    assert_eq!(c, StatusCode::NO_CONTENT);
    let logged_out = login(&reqwest::Client::new(), &s.base, "admin", ADMIN_PASSWORD).await;
    let (c, _) = s
        .call_as(&logged_out, Method::POST, "/api/auth/logout", None)
        .await;
    assert_eq!(c, StatusCode::NO_CONTENT);
    let (_, t) = s
        .call(Method::POST, "/api/tokens", Some(json!({"name": "ci"})))
        .await;
    let api_token = t["token"].as_str().unwrap().to_owned();
    let (c, _) = s
        .call(
            Method::DELETE,
            &format!("/api/tokens/{}", t["token_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(c, StatusCode::OK);

    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed", "not-a-token".into(), "token_invalid"),
        ("alg none", unsigned, "token_invalid"),
        (
            "wrongly signed",
            sign(
                b"another key, also more than 32 bytes long",
                &claims(&admin_id, now + 3600),
            ),
            "token_invalid",
        ),
        (
            "expired",
            sign(&key, &claims(&admin_id, now - 120)),
            "token_expired",
        ),
        ("of a deleted user", gone, "token_invalid"),
        (
            "of an unknown user",
            sign(&key, &claims("nobody", now + 3600)),
            "token_invalid",
        ),
        ("logged out", logged_out, "token_revoked"),
        ("a revoked API token", api_token, "token_revoked"),
        (
            "a made-up API token",
            format!("jst_{}_{}", "0".repeat(16), "x".repeat(43)),
            "token_invalid",
        ),
        ("very long", "x".repeat(64 * 1024), "token_invalid"),
    ];
    for (what, token, want) in cases {
        let (c, v) = s
            .call_as(
                &token,
                Method::POST,
                "/api/jobs",
                Some(json!({"name": "x", "command": "id"})),
            )
            .await;
        assert_eq!(
            (c, code(&v)),
            (StatusCode::UNAUTHORIZED, want),
            "{what}: {v}"
        );
    }
    let r = s
        .send(
            reqwest::Client::new()
                .get(format!("{}/api/jobs", s.base))
                .header(header::AUTHORIZATION, "Basic YWRtaW46YWRtaW4="),
        )
        .await;
    assert_eq!(
        (r.0, code(&r.1)),
        (StatusCode::UNAUTHORIZED, "unauthenticated"),
        "{}",
        r.1
    );

    // A disabled user's tokens stop at once, and they come back when enabled.
    let (c, _) = s.call_as(&alice, Method::GET, "/api/jobs", None).await;
    assert_eq!(c, StatusCode::OK);
    s.call(
        Method::PUT,
        "/api/users/alice",
        Some(json!({"disabled": true})),
    )
    .await;
    let (c, v) = s.call_as(&alice, Method::GET, "/api/jobs", None).await;
    assert_eq!(
        (c, code(&v)),
        (StatusCode::UNAUTHORIZED, "user_disabled"),
        "{v}"
    );
    s.call(
        Method::PUT,
        "/api/users/alice",
        Some(json!({"disabled": false})),
    )
    .await;
    let (c, _) = s.call_as(&alice, Method::GET, "/api/jobs", None).await;
    assert_eq!(c, StatusCode::OK);
    // A password is changed from a login session, not with an API token.
    let (_, t) = s
        .call(Method::POST, "/api/tokens", Some(json!({"name": "script"})))
        .await;
    let (c, v) = s
        .call_as(
            t["token"].as_str().unwrap(),
            Method::PUT,
            "/api/auth/password",
            Some(json!({"current_password": ADMIN_PASSWORD, "new_password": "a new password 1"})),
        )
        .await;
    assert_eq!(c, StatusCode::FORBIDDEN, "{v}");
    // A demotion applies to tokens already issued.
    s.call(
        Method::PUT,
        "/api/users/alice",
        Some(json!({"role": "read_only"})),
    )
    .await;
    let (c, _) = s
        .call_as(
            &alice,
            Method::POST,
            "/api/jobs",
            Some(json!({"name": "x", "command": "id"})),
        )
        .await;
    assert_eq!(c, StatusCode::FORBIDDEN);
    assert!(!alice_id.is_empty());

    // Logins: wrong password, unknown user, a 1 MB password, a body that is not a login.
    let http = reqwest::Client::new();
    let login_with = |body: Value| {
        http.post(format!("{}/api/auth/login", s.base))
            .json(&body)
            .send()
    };
    for (body, want, want_code) in [
        (
            json!({"name": "admin", "password": "wrong one"}),
            401,
            "login_failed",
        ),
        (
            json!({"name": "nobody", "password": "whatever"}),
            401,
            "login_failed",
        ),
        // Over the test server's 64 KiB body limit; within it, a password over 1024 bytes is a 400.
        (
            json!({"name": "admin", "password": "x".repeat(1_000_000)}),
            413,
            "payload_too_large",
        ),
        (
            json!({"name": "admin", "password": "x".repeat(2000)}),
            400,
            "invalid",
        ),
        (json!({"name": "admin"}), 400, "invalid"),
        (
            json!({"name": "admin", "password": "x", "role": "admin"}),
            400,
            "invalid",
        ),
    ] {
        let r = login_with(body).await.unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!((status, code(&v)), (want, want_code), "{v}");
    }
    let (_, jobs) = s.call(Method::GET, "/api/jobs", None).await;
    assert_eq!(jobs["total"], 0, "no bad request created anything");
    s.stop().await;
}
