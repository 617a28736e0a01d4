//! `--log-format json`: one JSON object a line, and every line on a task's path names its job, task
//! and executor (fields of the line or of its spans).

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::{ADMIN_PASSWORD, TempDir, cli_as, jobsched, login, spawn_listening, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_the_job_task_and_executor_on_every_task_line() {
    let dir = TempDir::new();
    let log = dir.0.join("daemon.log");
    let mut cmd = jobsched();
    cmd.args([
        "standalone",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--data-dir",
    ])
    .arg(&dir.0)
    .env("JOBSCHED_LOG", "info")
    .env("JOBSCHED_ADMIN_PASSWORD", ADMIN_PASSWORD)
    .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    let (mut child, base) = spawn_listening(cmd).await;
    let token = login(&reqwest::Client::new(), &base, "admin", ADMIN_PASSWORD).await;
    let out = cli_as(
        &base,
        &token,
        &[
            "jobs",
            "create",
            "--name",
            "logged",
            "--command",
            "echo hi; exit 3",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let job = out.json()["job_id"].as_str().unwrap().to_owned();
    let run = cli_as(&base, &token, &["jobs", "run", &job, "-o", "json"]).await;
    assert!(run.ok, "{}", run.stderr);
    let task = run.json()["task_id"].as_str().unwrap().to_owned();
    wait_for("the failed attempt to be logged", || async {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("attempt did not succeed")
    })
    .await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let text = std::fs::read_to_string(&log).unwrap();
    let mut task_lines = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if !line.contains(&task) {
            continue;
        }
        task_lines += 1;
        // A field of the line, or of one of its spans.
        let has = |name: &str| {
            v["fields"].get(name).is_some()
                || v["spans"]
                    .as_array()
                    .is_some_and(|spans| spans.iter().any(|s| s.get(name).is_some()))
        };
        for name in ["job_id", "task_id"] {
            assert!(has(name), "{name} missing: {line}");
        }
        // On the executor's side of the path, its id too.
        if v["target"]
            .as_str()
            .is_some_and(|t| t.contains("handler") || t.contains("executor"))
        {
            assert!(has("executor_id"), "executor_id missing: {line}");
        }
    }
    assert!(
        task_lines >= 2,
        "the task's path logged {task_lines} lines:\n{text}"
    );
}
