//! Live output of running tasks: the executor sends it in chunks while the task runs, the scheduler
//! keeps it, `GET /api/tasks/{id}/log` reads it from an offset, `/log/stream` streams it as events that
//! end with the task, and `jobsched tasks logs --follow` prints it. A flood of output keeps memory flat
//! and the stream says how much it skipped.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Daemon, Server, TempDir, cli_as};

/// The events of a finished stream: `(event, data)`.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            (!data.is_empty()).then(|| (event, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

/// Reads `path`'s event stream to its end with `token`.
async fn stream(base: &str, token: &str, path: &str) -> Vec<(String, Value)> {
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    events(&resp.text().await.unwrap())
}

async fn run(s: &Server, job: &str, command: &str) -> String {
    let (code, v) = s
        .call(
            Method::POST,
            "/api/jobs",
            Some(
                json!({"job_id": job, "name": job, "command": command, "schedule_type": "manual"}),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let (code, v) = s
        .call(Method::POST, &format!("/api/jobs/{job}/execute"), None)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    v["task_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_readable_while_the_task_runs_and_its_stream_ends_with_it() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let task = run(
        &s,
        "ticker",
        "for i in $(seq 1 15); do echo line $i; sleep 0.2; done; echo oops >&2",
    )
    .await;
    // Part of the output, while the task still runs.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let seen = loop {
        let (code, v) = s
            .call(Method::GET, &format!("/api/tasks/{task}/log"), None)
            .await;
        assert_eq!(code, StatusCode::OK, "{v}");
        if v["live"] == true && v["text"].as_str().unwrap().contains("line 2\n") {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no live output: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        !seen["text"].as_str().unwrap().contains("line 15"),
        "read while running: {seen}"
    );
    assert_eq!(seen["status"], 5, "running: {seen}");
    // From an offset: what follows it.
    let next = seen["next_offset"].as_u64().unwrap();
    let (_, later) = s
        .call(
            Method::GET,
            &format!("/api/tasks/{task}/log?offset={next}"),
            None,
        )
        .await;
    assert_eq!(later["offset"].as_u64().unwrap(), next);
    // The stream delivers all of it, then ends with the task.
    let evs = stream(&s.base, &s.token, &format!("/api/tasks/{task}/log/stream")).await;
    let (last, end) = evs.last().unwrap();
    assert_eq!(last, "end");
    assert_eq!(
        (end["status"].as_str(), end["exit_code"].as_i64()),
        (Some("succeeded"), Some(0))
    );
    let text: String = evs
        .iter()
        .filter(|(e, _)| e == "chunk")
        .map(|(_, d)| d["text"].as_str().unwrap().to_owned())
        .collect();
    let want: String = (1..=15).map(|i| format!("line {i}\n")).collect::<String>() + "oops\n";
    assert_eq!(text, want);
    // Resuming after the first line gives the rest.
    let resp = reqwest::Client::new()
        .get(format!("{}/api/tasks/{task}/log/stream", s.base))
        .bearer_auth(&s.token)
        .header("last-event-id", "1:7")
        .send()
        .await
        .unwrap();
    let evs = events(&resp.text().await.unwrap());
    assert_eq!(evs[0].1["offset"], 7);
    assert!(evs[0].1["text"].as_str().unwrap().starts_with("line 2\n"));
    // Unknown and malformed ids are refused clearly.
    let (code, v) = s.call(Method::GET, "/api/tasks/task-nope/log", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{v}");
    let (code, _) = s
        .call(
            Method::GET,
            &format!("/api/tasks/{task}/log?offset=-1"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_follows_a_running_task_until_it_ends() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let task = run(
        &s,
        "slow",
        "for i in 1 2 3 4 5; do echo step $i; sleep 0.3; done",
    )
    .await;
    let out = cli_as(&s.base, &s.token, &["tasks", "logs", &task, "--follow"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stdout, "step 1\nstep 2\nstep 3\nstep 4\nstep 5\n");
    assert!(
        out.stderr.contains("task ended: succeeded, exit code 0"),
        "{}",
        out.stderr
    );
    s.stop().await;
}

/// The peak resident memory of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_keeps_memory_flat_and_the_stream_says_what_it_skipped() {
    const BYTES: u64 = 100_000_000;
    let dir = TempDir::new();
    let d = Daemon::start(&dir.0).await;
    let pid = d.child.id().unwrap();
    let before = peak_rss(pid);
    let http = reqwest::Client::new();
    let (code, v) = support::call_with(
        &http,
        &d.base,
        &d.token,
        Method::POST,
        "/api/jobs",
        Some(
            json!({"job_id": "flood", "name": "flood", "schedule_type": "manual",
            "command": format!("head -c {BYTES} /dev/zero | tr '\\0' x; sleep 1")}),
        ),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let (_, v) = support::call_with(
        &http,
        &d.base,
        &d.token,
        Method::POST,
        "/api/jobs/flood/execute",
        None,
    )
    .await;
    let task = v["task_id"].as_str().unwrap().to_owned();
    let evs = stream(&d.base, &d.token, &format!("/api/tasks/{task}/log/stream")).await;
    let chunks: Vec<&Value> = evs
        .iter()
        .filter(|(e, _)| e == "chunk")
        .map(|(_, d)| d)
        .collect();
    let shown: u64 = chunks
        .iter()
        .map(|c| c["text"].as_str().unwrap().len() as u64)
        .sum();
    let skipped: u64 = chunks.iter().map(|c| c["skipped"].as_u64().unwrap()).sum();
    assert_eq!(evs.last().unwrap().0, "end");
    assert_eq!(
        shown + skipped,
        BYTES,
        "every byte is shown or counted as skipped"
    );
    assert!(skipped > BYTES / 2, "most of a flood is skipped: {skipped}");
    let grew = peak_rss(pid).saturating_sub(before);
    assert!(
        grew < 48 * 1024 * 1024,
        "the daemon's peak memory grew by {} MiB for 100 MB of output",
        grew / (1024 * 1024)
    );
    assert!(d.terminate().await);
}
