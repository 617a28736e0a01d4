//! No task process outlives its kill in the running product: a timeout through `jobsched standalone`
//! kills a `setsid` child that ignores SIGTERM, and a SIGKILL of the executor takes every task process
//! with it (the executor's watchdog).

mod support;

use std::time::{Duration, Instant};

use support::{Daemon, TempDir, wait_for};

/// Whether a process runs exactly `sleep SECS` (not a zombie).
fn sleeping(secs: u32) -> bool {
    let want = format!("sleep\0{secs}\0");
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let alive = std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, r)| !r.starts_with('Z'))
        });
        alive && std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes())
    })
}

async fn gone(secs: u32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while sleeping(secs) {
        assert!(Instant::now() < deadline, "sleep {secs} survived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create(d: &Daemon, id: &str, command: &str, extra: &[&str]) {
    let mut args = vec![
        "jobs",
        "create",
        "--id",
        id,
        "--name",
        id,
        "--manual",
        "--command",
        command,
    ];
    args.extend_from_slice(extra);
    let out = d.cli(&args).await;
    assert!(out.ok, "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_a_setsid_child_and_a_killed_executor_leaves_no_task_process() {
    let dir = TempDir::new();
    let d = Daemon::start(&dir.0).await;
    create(
        &d,
        "escape",
        "setsid sh -c 'trap \"\" TERM; exec sleep 3031' & sleep 3032",
        &["--timeout", "2"],
    )
    .await;
    let t = d
        .cli(&["jobs", "run", "escape"])
        .await
        .stdout
        .trim()
        .to_owned();
    wait_for("the task to time out", || async {
        d.cli(&["tasks", "get", &t, "-o", "json"]).await.json()["status"] == 3
    })
    .await;
    gone(3031).await;
    gone(3032).await;

    create(
        &d,
        "orphan",
        "setsid sh -c 'exec sleep 3033' & nohup sleep 3034 & sleep 3035",
        &[],
    )
    .await;
    d.cli(&["jobs", "run", "orphan"]).await;
    wait_for("the task's processes to start", || async {
        sleeping(3033) && sleeping(3034) && sleeping(3035)
    })
    .await;
    let mut child = d.child;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    for s in [3033, 3034, 3035] {
        gone(s).await;
    }
}
