//! `jobsched standalone` stopped and started on the same data directory: jobs, history and executor
//! records are still there, and the cron jobs keep firing.

mod support;

use support::{Daemon, TempDir, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_standalone_keeps_jobs_history_and_executors_and_keeps_firing() {
    let dir = TempDir::new();
    let d = Daemon::start(&dir.0).await;
    let out = d
        .cli(&[
            "jobs",
            "create",
            "--id",
            "beat",
            "--name",
            "beat",
            "--cron",
            "* * * * * *",
            "--command",
            "echo beat",
        ])
        .await;
    assert!(out.ok, "{}", out.stderr);
    wait_for("two runs", || async {
        d.cli(&[
            "jobs",
            "history",
            "beat",
            "--status",
            "succeeded",
            "-o",
            "json",
        ])
        .await
        .json()["total"]
            .as_u64()
            >= Some(2)
    })
    .await;
    let before = d
        .cli(&["jobs", "history", "beat", "-o", "json"])
        .await
        .json();
    let executors = d.cli(&["executors", "list", "-o", "json"]).await.json();
    assert!(d.terminate().await, "stopped cleanly");
    let stopped_at = chrono::Utc::now();

    let d = Daemon::start(&dir.0).await;
    let job = d.cli(&["jobs", "get", "beat", "-o", "json"]).await;
    assert!(job.ok, "the job is still there: {}", job.stderr);
    let after = d
        .cli(&["jobs", "history", "beat", "-o", "json"])
        .await
        .json();
    for rec in before["items"].as_array().unwrap() {
        if rec["status"] == 1 {
            assert!(
                after["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["task_id"] == rec["task_id"] && r["status"] == 1),
                "run {} is gone after the restart",
                rec["task_id"]
            );
        }
    }
    let again = d.cli(&["executors", "list", "-o", "json"]).await.json();
    assert_eq!(
        again["items"][0]["executor_id"],
        executors["items"][0]["executor_id"]
    );
    assert!(
        again["items"][0]["register_time"] != executors["items"][0]["register_time"]
            || again["items"][0]["last_heartbeat_time"]
                != executors["items"][0]["last_heartbeat_time"],
        "the executor record is the same one, renewed"
    );
    wait_for("a run fired after the restart", || async {
        let h = d
            .cli(&[
                "jobs",
                "history",
                "beat",
                "--status",
                "succeeded",
                "-o",
                "json",
            ])
            .await
            .json();
        h["items"].as_array().unwrap().iter().any(|r| {
            r["scheduled_time"]
                .as_str()
                .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                .is_some_and(|t| t > stopped_at)
        })
    })
    .await;
    assert!(d.terminate().await);
}
