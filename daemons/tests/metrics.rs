//! `/metrics` of the all-in-one mode over real HTTP: who may scrape, and that the series answer what
//! happened (tasks by outcome, a job's own series, the queue, HTTP requests, storage calls, the process).

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Server, TempDir, task_status, test_config, wait_for};

const METRICS_TOKEN: &str = "0123456789abcdef0123456789abcdef-metrics";

/// The value of the series named exactly `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(s: &Server, token: &str) -> (StatusCode, String) {
    let mut req = s.http.get(format!("{}/metrics", s.base));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.unwrap();
    let code = r.status();
    if code == StatusCode::OK {
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            ct.starts_with("application/openmetrics-text; version=1.0.0"),
            "{ct}"
        );
    }
    (code, r.text().await.unwrap())
}

/// Every line is a comment, `# EOF`, or `name{labels} value` with a number.
fn well_formed(text: &str) {
    for l in text.lines() {
        if l.starts_with("# HELP ")
            || l.starts_with("# TYPE ")
            || l.starts_with("# UNIT ")
            || l == "# EOF"
        {
            continue;
        }
        let (series, v) = l
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {l}"));
        assert!(
            v.parse::<f64>().is_ok() || v == "+Inf" || v == "NaN",
            "not a number in {l}"
        );
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {l}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_for_authorised_scrapers_and_count_what_happened() {
    let dir = TempDir::new();
    let mut config = test_config(&dir.0);
    let token_file = dir.0.join("metrics-token");
    std::fs::write(&token_file, METRICS_TOKEN).unwrap();
    config.metrics_token_file = Some(token_file);
    let s = Server::start_with(config).await;

    // Who may scrape.
    assert_eq!(scrape(&s, "").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(&s, "not-the-token").await.0,
        StatusCode::UNAUTHORIZED
    );
    let user = s.user("metrics-user", "user").await;
    let (code, body) = scrape(&s, &user).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let reader = s.user("metrics-reader", "read_only").await;
    assert_eq!(scrape(&s, &reader).await.0, StatusCode::OK);
    assert_eq!(scrape(&s, &s.token).await.0, StatusCode::OK);

    // What happened: two successful runs of a job with its own series, one failed run of another.
    for (id, command, metrics) in [("watched", "true", true), ("plain", "exit 3", false)] {
        let (code, v) = s
            .call(
                Method::POST,
                "/api/jobs",
                Some(json!({"job_id": id, "name": id, "command": command,
                    "schedule_type": "manual", "metrics": metrics})),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{v}");
        assert_eq!(v["metrics"], metrics, "{v}");
    }
    for id in ["watched", "watched", "plain"] {
        let (_, r) = s
            .call(Method::POST, &format!("/api/jobs/{id}/execute"), None)
            .await;
        let task = r["task_id"].as_str().unwrap().to_owned();
        wait_for("the run to end", || async {
            matches!(task_status(&s, &task).await, 1 | 2)
        })
        .await;
    }
    let (code, text) = scrape(&s, METRICS_TOKEN).await;
    assert_eq!(code, StatusCode::OK);
    well_formed(&text);
    let v = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        v("jobsched_tasks_finished_total{outcome=\"succeeded\"}"),
        2.0
    );
    assert_eq!(v("jobsched_tasks_finished_total{outcome=\"failed\"}"), 1.0);
    assert_eq!(
        v("jobsched_job_tasks_finished_total{job=\"watched\",outcome=\"succeeded\"}"),
        2.0
    );
    assert!(!text.contains("job=\"plain\""), "{text}");
    assert_eq!(v("jobsched_task_run_seconds_count"), 3.0);
    assert_eq!(v("jobsched_leader"), 1.0);
    for b in ["store", "dispatch", "coordinator"] {
        assert_eq!(
            v(&format!("jobsched_backend_up{{backend=\"{b}\"}}")),
            1.0,
            "{b}"
        );
    }
    assert_eq!(v("jobsched_executors_online"), 1.0);
    assert_eq!(v("jobsched_jobs"), 2.0);
    assert!(v("jobsched_store_call_seconds_count{operation=\"update_executions\"}") >= 1.0);
    assert!(v("jobsched_dispatch_call_seconds_count{operation=\"send_tasks\"}") >= 3.0);
    assert!(v("jobsched_dispatch_received_total{stream=\"results\"}") >= 3.0);
    assert_eq!(
        v(
            "jobsched_http_requests_total{route=\"/api/jobs/{jobId}/execute\",method=\"POST\",status=\"202\"}"
        ),
        3.0
    );
    assert!(
        v("jobsched_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"401\"}") >= 2.0
    );
    assert!(v("jobsched_http_request_seconds_count{route=\"/api/jobs\"}") >= 2.0);
    assert!(v("process_resident_memory_bytes") > 1e6);
    assert!(v("process_open_fds") >= 3.0);
    assert!(v("process_threads") >= 2.0);
    assert!(v("process_cpu_seconds_total") > 0.0);
    assert!(v("host_memory_total_bytes") > v("host_memory_available_bytes"));
    assert!(v("host_disk_total_bytes") > 0.0);
    assert!(v("host_cpu_seconds_total{mode=\"idle\"}") > 0.0);
    // An unknown path is one series, whatever the path.
    s.call(Method::GET, "/api/no-such-thing/1", None).await;
    s.call(Method::GET, "/api/no-such-thing/2", None).await;
    let (_, text) = scrape(&s, METRICS_TOKEN).await;
    assert_eq!(
        value(
            &text,
            "jobsched_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
        ),
        Some(2.0),
        "{text}"
    );

    // Every series is documented, and the Grafana dashboard uses only series that are.
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    assert!(families.len() >= 35, "{families:?}");
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/OPERATIONS.md"
    ))
    .unwrap();
    for f in &families {
        assert!(
            guide.contains(&format!("`{f}")),
            "docs/OPERATIONS.md does not list {f}"
        );
    }
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/jobsched.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut used = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !(word.starts_with("jobsched_")
                    || word.starts_with("process_")
                    || word.starts_with("host_"))
                {
                    continue;
                }
                let base = ["_bucket", "_count", "_sum", "_total"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s))
                    .unwrap_or(word);
                // Reported now, or documented (families without a sample yet, such as errors, are not
                // written).
                assert!(
                    families.contains(&base) || guide.contains(&format!("`{base}")),
                    "the dashboard's '{expr}' uses {word}, which is neither reported nor documented"
                );
                used += 1;
            }
        }
    }
    assert!(used >= 20, "{used}");

    // The queue by priority: with the executor disabled, a run waits.
    let (_, list) = s.call(Method::GET, "/api/executors", None).await;
    let exec = list["items"][0]["executor_id"].as_str().unwrap().to_owned();
    s.call(
        Method::POST,
        &format!("/api/executors/{exec}/disable"),
        None,
    )
    .await;
    s.call(Method::POST, "/api/jobs/watched/execute", None)
        .await;
    wait_for("the run to be queued in the metrics", || async {
        let (_, text) = scrape(&s, METRICS_TOKEN).await;
        value(&text, "jobsched_queue_length{priority=\"0\"}") == Some(1.0)
    })
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_metrics_token_is_refused_at_start() {
    let dir = TempDir::new();
    let mut config = test_config(&dir.0);
    let token_file = dir.0.join("metrics-token");
    std::fs::write(&token_file, "short").unwrap();
    config.metrics_token_file = Some(token_file);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = jobsched_daemons::server::run(
        jobsched_daemons::server::Role::Standalone,
        config,
        listener,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("metrics token must be at least 32"),
        "{e}"
    );
}
