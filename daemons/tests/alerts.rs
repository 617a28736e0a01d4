//! Alerts end to end on the all-in-one mode: rules through the API, evaluated by the scheduler, sent to
//! a real HTTP receiver and a real SMTP server (aiosmtpd, STARTTLS); grouping, resolving, silences,
//! muting, thresholds, secrets, and the history.

mod support;

use hmac::{KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::receivers::{Smtp, Webhook};
use support::{Server, TempDir, cli_as, cli_stdin, task_status, test_config, wait_for};

async fn server(dir: &std::path::Path) -> Server {
    let mut config = test_config(dir);
    config.alert_interval_ms = 100;
    Server::start_with(config).await
}

async fn put_alerts(s: &Server, body: Value) -> Value {
    let (code, v) = s.call(Method::PUT, "/api/alerts/config", Some(body)).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    v
}

async fn job(s: &Server, id: &str, command: &str) {
    let (code, v) = s
        .call(
            Method::POST,
            "/api/jobs",
            Some(json!({"job_id": id, "name": id, "command": command, "schedule_type": "manual"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
}

async fn run(s: &Server, id: &str) {
    let (_, r) = s
        .call(Method::POST, &format!("/api/jobs/{id}/execute"), None)
        .await;
    let task = r["task_id"].as_str().unwrap().to_owned();
    wait_for("the run to end", || async {
        matches!(task_status(s, &task).await, 1 | 2)
    })
    .await;
}

fn of<'a>(events: &'a [Value], transition: &str, job: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["transition"] == transition && e["labels"]["job"] == job)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_fires_once_on_webhook_and_email_and_resolves_when_it_succeeds() {
    let dir = TempDir::new();
    let s = server(&dir.0).await;
    // The first delivery attempt gets a 500: the webhook is retried.
    let hook = Webhook::start(1).await;
    let smtp = Smtp::start(&dir.0).await;
    let v = put_alerts(
        &s,
        json!({
            "channels": [
                {"id": "hook", "target": {"kind": "webhook", "url": hook.url, "secret": "hook secret 123"}},
                {"id": "mail", "target": {"kind": "email", "host": "127.0.0.1", "port": smtp.port,
                    "security": "starttls", "ca_cert": smtp.ca_file, "from": "jobsched@example.com",
                    "to": ["ops@example.com"]}},
            ],
            "rules": [{"id": "failures", "name": "Job failures",
                "condition": {"kind": "task_failure"}, "channels": ["hook", "mail"]}],
        }),
    )
    .await;
    assert_eq!(v["channels"][0]["target"]["secret"], "***", "{v}");
    let (_, got) = s.call(Method::GET, "/api/alerts/config", None).await;
    assert!(!got.to_string().contains("hook secret 123"), "{got}");

    job(&s, "nightly-etl", "echo loading; exit 3").await;
    for _ in 0..5 {
        run(&s, "nightly-etl").await;
    }
    wait_for("the firing notification", || async {
        !of(&hook.events(), "firing", "nightly-etl").is_empty()
    })
    .await;
    wait_for("the email", || async { smtp.text().contains("FIRING") }).await;
    // Five failures are one alert, counted.
    let (_, firing) = s.call(Method::GET, "/api/alerts/firing", None).await;
    assert_eq!(firing["items"].as_array().unwrap().len(), 1, "{firing}");
    wait_for("the five failures to be counted", || async {
        let (_, f) = s.call(Method::GET, "/api/alerts/firing", None).await;
        f["items"][0]["count"] == 5
    })
    .await;

    // The signature is the HMAC-SHA256 of the body under the secret; the retry came after a 500.
    let first = hook.got.lock().unwrap()[0].clone();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook secret 123").unwrap();
    mac.update(&first.body);
    let want = format!(
        "sha256={}",
        jobsched_daemons::auth::hex(&mac.finalize().into_bytes())
    );
    assert_eq!(
        first.headers["x-jobsched-signature"].to_str().unwrap(),
        want
    );
    assert!(*hook.attempts.lock().unwrap() >= 2);
    let e = &first.json()["events"][0];
    assert_eq!(e["rule"], "Job failures");
    assert!(
        e["summary"].as_str().unwrap().contains("nightly-etl"),
        "{e}"
    );
    let mail = smtp.text();
    assert!(
        mail.contains("Subject: [jobsched] FIRING: Job failures"),
        "{mail}"
    );
    assert!(mail.contains("To: ops@example.com"), "{mail}");
    assert!(mail.contains("job 'nightly-etl' failed"), "{mail}");

    // It succeeds: one resolved notification on each channel.
    let (code, v) = s
        .call(
            Method::PUT,
            "/api/jobs/nightly-etl",
            Some(json!({"command": "echo loaded"})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    run(&s, "nightly-etl").await;
    wait_for("the resolved notification", || async {
        !of(&hook.events(), "resolved", "nightly-etl").is_empty()
    })
    .await;
    wait_for("the resolved email", || async {
        smtp.text().contains("RESOLVED")
    })
    .await;
    let events = hook.events();
    assert_eq!(of(&events, "firing", "nightly-etl").len(), 1, "{events:?}");
    assert_eq!(
        of(&events, "resolved", "nightly-etl").len(),
        1,
        "{events:?}"
    );
    let (_, firing) = s.call(Method::GET, "/api/alerts/firing", None).await;
    assert_eq!(firing["items"], json!([]), "{firing}");
    wait_for("both deliveries recorded", || async {
        let (_, h) = s.call(Method::GET, "/api/alerts/history", None).await;
        let items = h["items"].as_array().unwrap().clone();
        items.len() == 2
            && items
                .iter()
                .all(|e| e["delivery"] == json!({"hook": "ok", "mail": "ok"}))
    })
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_mutes_thresholds_and_bad_configurations() {
    let dir = TempDir::new();
    let s = server(&dir.0).await;
    let hook = Webhook::start(0).await;
    // Bad configurations are refused with the field named, and nothing is stored.
    for (body, field) in [
        (
            json!({"rules": [{"id": "r", "condition": {"kind": "task_failure"}, "channels": ["nope"]}]}),
            "rules.r.channels",
        ),
        (
            json!({"channels": [{"id": "c", "target": {"kind": "webhook", "url": "ftp://x"}}]}),
            "channels.c.url",
        ),
        (
            json!({"channels": [{"id": "c", "target": {"kind": "email", "host": "h", "from": "not an address", "to": ["a@b.c"]}}]}),
            "channels.c.from",
        ),
        (
            json!({"rules": [{"id": "r", "condition": {"kind": "threshold", "metric": "success_rate", "op": "below", "value": 150, "window_secs": 60}}]}),
            "rules.r.value",
        ),
        (
            json!({"rules": [{"id": "bad id!", "condition": {"kind": "task_failure"}}]}),
            "rules.id",
        ),
    ] {
        let (code, v) = s.call(Method::PUT, "/api/alerts/config", Some(body)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    let (_, v) = s.call(Method::GET, "/api/alerts/config", None).await;
    assert_eq!(v["version"], 0, "{v}");

    let now = chrono::Utc::now();
    put_alerts(
        &s,
        json!({
            "channels": [{"id": "hook", "target": {"kind": "webhook", "url": hook.url}}],
            "rules": [
                {"id": "silenced", "condition": {"kind": "task_failure", "job_id": "flaky"}, "channels": ["hook"]},
                {"id": "muted", "condition": {"kind": "task_failure", "job_id": "flaky"}, "channels": ["hook"], "muted": true},
                {"id": "twice", "condition": {"kind": "task_failure", "job_id": "flaky", "consecutive": 2}, "channels": ["hook"]},
                {"id": "rate", "condition": {"kind": "threshold", "metric": "success_rate", "job_id": "flaky",
                    "op": "below", "value": 50, "window_secs": 3600}, "channels": ["hook"]},
                {"id": "queue", "condition": {"kind": "threshold", "metric": "queue_length",
                    "op": "above", "value": 0, "window_secs": 1}, "channels": ["hook"]},
            ],
            "silences": [{"id": "maintenance", "matchers": {"rule": "silenced"},
                "starts": now - chrono::TimeDelta::minutes(1), "ends": now + chrono::TimeDelta::hours(1),
                "comment": "planned work"}],
        }),
    )
    .await;
    job(&s, "flaky", "exit 1").await;
    run(&s, "flaky").await;
    // One failure: `silenced` and `muted` fire quietly, `rate` fires (0 % < 50 %), `twice` waits.
    wait_for("the rate alert", || async {
        hook.events().iter().any(|e| e["rule_id"] == "rate")
    })
    .await;
    let (_, h) = s.call(Method::GET, "/api/alerts/history", None).await;
    let quiet = |rule: &str| {
        h["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["rule_id"] == rule)
            .map(|e| e["quiet"].clone())
    };
    assert_eq!(
        quiet("silenced"),
        Some(json!("silenced by 'maintenance'")),
        "{h}"
    );
    assert_eq!(quiet("muted"), Some(json!("rule muted")), "{h}");
    assert_eq!(quiet("twice"), None, "one failure is not two in a row: {h}");
    let sent: Vec<Value> = hook.events();
    assert!(
        sent.iter()
            .all(|e| e["rule_id"] != "silenced" && e["rule_id"] != "muted"),
        "{sent:?}"
    );
    // A second failure in a row: `twice` fires.
    run(&s, "flaky").await;
    wait_for("the second failure in a row", || async {
        hook.events().iter().any(|e| e["rule_id"] == "twice")
    })
    .await;

    // The queue: with the executor disabled a run waits; held for the window, it fires; resolves when
    // the executor takes it.
    let (_, list) = s.call(Method::GET, "/api/executors", None).await;
    let exec = list["items"][0]["executor_id"].as_str().unwrap().to_owned();
    s.call(
        Method::POST,
        &format!("/api/executors/{exec}/disable"),
        None,
    )
    .await;
    s.call(Method::POST, "/api/jobs/flaky/execute", None).await;
    wait_for("the queue alert", || async {
        hook.events()
            .iter()
            .any(|e| e["rule_id"] == "queue" && e["transition"] == "firing")
    })
    .await;
    s.call(Method::POST, &format!("/api/executors/{exec}/enable"), None)
        .await;
    wait_for("the queue alert to resolve", || async {
        hook.events()
            .iter()
            .any(|e| e["rule_id"] == "queue" && e["transition"] == "resolved")
    })
    .await;
    // The command-line client: what `get` prints can be given back to `set`; the version guards it.
    let got = cli_as(&s.base, &s.token, &["alerts", "get"]).await;
    assert!(got.ok, "{}", got.stderr);
    let mut doc = got.json();
    assert_eq!(doc["rules"].as_array().unwrap().len(), 5, "{doc}");
    doc["rules"].as_array_mut().unwrap().truncate(1);
    let set = cli_stdin(&s.base, &s.token, &["alerts", "set", "-"], &doc.to_string()).await;
    assert!(set.ok, "{}", set.stderr);
    assert!(
        set.stdout.contains("1 rules, 1 channels, 1 silences"),
        "{}",
        set.stdout
    );
    let stale = cli_stdin(&s.base, &s.token, &["alerts", "set", "-"], &doc.to_string()).await;
    assert!(
        !stale.ok && stale.stderr.contains("version"),
        "{}",
        stale.stderr
    );
    let firing = cli_as(&s.base, &s.token, &["alerts", "firing"]).await;
    assert!(
        firing.ok && firing.stdout.contains("RULE"),
        "{}",
        firing.stderr
    );
    let history = cli_as(&s.base, &s.token, &["alerts", "history", "--rule", "rate"]).await;
    assert!(
        history.ok && history.stdout.contains("rate"),
        "{} {}",
        history.stdout,
        history.stderr
    );

    // A user whose role shows only its own jobs cannot read alerts; a read-only user can.
    let user = s.user("alert-user", "user").await;
    let (code, _) = s
        .call_as(&user, Method::GET, "/api/alerts/firing", None)
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let reader = s.user("alert-reader", "read_only").await;
    let (code, _) = s
        .call_as(&reader, Method::GET, "/api/alerts/history", None)
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = s
        .call_as(&reader, Method::PUT, "/api/alerts/config", Some(json!({})))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    s.stop().await;
}
