//! A task's kill reaches every process it started, however it detached: `setsid` with SIGTERM ignored,
//! `nohup … &`, a double fork. Each case runs with the cgroup mechanism (where this host lets the
//! executor create cgroups) and with the process-tree fallback. Real processes, real time.

use std::time::{Duration, Instant};

use jobsched::handler::{ExecError, ShellHandler, TaskContext, TaskHandler};
use jobsched::{CancelReason, ExecutorId, JobId, Params, Task, TaskId, Trigger};

fn task(cmd: &str) -> Task {
    Task {
        task_id: TaskId::generate(),
        job_id: JobId::new("kill-test").unwrap(),
        command: cmd.into(),
        timeout: 0,
        retry_count: 0,
        retry_interval: 0,
        priority: 0,
        create_time: chrono::Utc::now(),
        attempt: 1,
        scheduled_time: chrono::Utc::now(),
        task_type: "shell".into(),
        params: Params::new(),
        trigger: Trigger::Manual,
        executor_id: None,
        executor_epoch: 0,
    }
}

/// The pids of processes running `sleep SECS` (a unique duration per case names its processes).
fn sleepers(secs: u32) -> Vec<u32> {
    let want = format!("sleep\0{secs}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z'));
            (cmd == want.as_bytes() && !zombie).then_some(pid)
        })
        .collect()
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn handlers() -> [(&'static str, ShellHandler); 2] {
    [
        ("cgroup where possible", ShellHandler::default()),
        ("process tree", ShellHandler::default().without_cgroups()),
    ]
}

/// Cancels a running command once `started` sleepers run; then none of `survivors` may be left.
async fn cancelled_leaves_nothing(cmd: String, started: &[u32]) {
    for (mode, h) in handlers() {
        let ctx = TaskContext::new(
            ExecutorId::new("e1").unwrap(),
            4096,
            Duration::from_millis(300),
        );
        let t = task(&cmd);
        let run = {
            let (h, ctx) = (h.clone(), ctx.clone());
            tokio::spawn(async move { h.execute(&ctx, &t).await })
        };
        for &s in started {
            until(&format!("sleep {s} to start ({mode})"), || {
                !sleepers(s).is_empty()
            })
            .await;
        }
        ctx.cancel(CancelReason::User);
        let answer = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the cancel ends the run")
            .unwrap();
        assert!(
            matches!(answer, Err(ExecError::Cancelled { .. })),
            "{mode}: {answer:?}"
        );
        for &s in started {
            until(&format!("no sleep {s} left ({mode})"), || {
                sleepers(s).is_empty()
            })
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_kills_a_setsid_child_that_ignores_sigterm() {
    cancelled_leaves_nothing(
        "setsid sh -c 'trap \"\" TERM; exec sleep 3011' & sleep 3012".into(),
        &[3011, 3012],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_kills_a_double_forked_grandchild() {
    cancelled_leaves_nothing(
        "(sh -c 'setsid sleep 3013 &' &); sleep 3014".into(),
        &[3013, 3014],
    )
    .await;
}

/// A task that ends normally takes what it left running with it (`nohup … &`, a `setsid` daemon).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_ends_leaves_no_background_process() {
    for (mode, h) in handlers() {
        let ctx = TaskContext::new(
            ExecutorId::new("e1").unwrap(),
            4096,
            Duration::from_millis(300),
        );
        let t = task(
            "nohup sleep 3015 >/dev/null 2>&1 & setsid sleep 3016 >/dev/null 2>&1 < /dev/null & \
             while ! pgrep -fx 'sleep 3016' >/dev/null || ! pgrep -fx 'sleep 3015' >/dev/null; do :; done; echo done",
        );
        let out = tokio::time::timeout(Duration::from_secs(10), h.execute(&ctx, &t))
            .await
            .expect("the task ends")
            .unwrap_or_else(|e| panic!("{mode}: {e:?}"));
        assert_eq!(out.output, "done\n", "{mode}");
        for s in [3015, 3016] {
            until(&format!("no sleep {s} left ({mode})"), || {
                sleepers(s).is_empty()
            })
            .await;
        }
    }
}
