//! Engine: retries, timeouts, cancel, priority, overlap and misfire policies, executor death. Paused clock.

mod support;

use std::time::Duration;

use chrono::TimeDelta;
use jobsched::storage::keys;
use jobsched::{CancelOutcome, JobSpec, TaskStatus, Trigger};
use jobsched::{MisfirePolicy, OverlapPolicy, RetryBackoff, RoutingStrategy};
use support::{Cluster, finished, finished_for, recorded_fire_times, started, t};

#[tokio::test(start_paused = true)]
async fn failed_task_is_retried_after_its_interval_and_every_attempt_is_recorded() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 4).await;
    let job = s
        .create_job(
            JobSpec::manual("flaky", "fail")
                .with_type("script")
                .with_retry(2, 5),
        )
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    let recs = finished_for(&mut ev, &task, 3).await;
    assert_eq!(
        recs.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        recs.iter()
            .all(|r| r.status == TaskStatus::Failed && r.error.contains("scripted failure"))
    );
    assert_eq!(recs[1].trigger, Trigger::Retry);
    let gap1 = recs[1].start_time.unwrap() - recs[0].end_time.unwrap();
    let gap2 = recs[2].start_time.unwrap() - recs[1].end_time.unwrap();
    assert_eq!(
        (gap1, gap2),
        (TimeDelta::seconds(5), TimeDelta::seconds(5)),
        "retry_interval apart"
    );
    let attempts = s.task(&task).await.unwrap();
    assert_eq!(
        attempts.len(),
        3,
        "retry_count = 2: three attempts, each its own record"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(s.task(&task).await.unwrap().len(), 3, "no fourth attempt");
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_and_handler_directed_retries() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 4).await;
    let job = s
        .create_job(
            JobSpec::manual("exp", "fail")
                .with_type("script")
                .with_retry(3, 2)
                .with_backoff(RetryBackoff::Exponential, 5),
        )
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    let recs = finished_for(&mut ev, &task, 4).await;
    let gaps: Vec<i64> = recs
        .windows(2)
        .map(|w| (w[1].start_time.unwrap() - w[0].end_time.unwrap()).num_seconds())
        .collect();
    assert_eq!(gaps, vec![2, 4, 5], "2 s, 4 s, then capped at 5 s");

    let abort = s
        .create_job(
            JobSpec::manual("abort", "abort")
                .with_type("script")
                .with_retry(5, 1),
        )
        .await
        .unwrap();
    let task = s.execute(&abort.job_id, None).await.unwrap();
    let recs = finished_for(&mut ev, &task, 1).await;
    assert_eq!(recs[0].status, TaskStatus::Failed);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        s.task(&task).await.unwrap().len(),
        1,
        "an aborted task is not retried"
    );

    let later = s
        .create_job(
            JobSpec::manual("later", "retry_after:7000")
                .with_type("script")
                .with_retry(1, 1),
        )
        .await
        .unwrap();
    let task = s.execute(&later.job_id, None).await.unwrap();
    let recs = finished_for(&mut ev, &task, 2).await;
    assert_eq!(
        (recs[1].start_time.unwrap() - recs[0].end_time.unwrap()).num_seconds(),
        7
    );
    s.shutdown().await;
}

// Real time: a real process must get the chance to start before its one-second timeout.
#[tokio::test]
async fn shell_task_past_its_timeout_is_killed_with_its_process_group() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 4).await;
    let dir = std::env::temp_dir().join(format!("jobsched-timeout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let job = s
        .create_job(JobSpec::manual("slow", cmd).with_timeout(1))
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    let rec = finished_for(&mut ev, &task, 1).await.remove(0);
    assert_eq!(rec.status, TaskStatus::TimedOut);
    assert!(rec.error.contains("timed out after 1s"), "{}", rec.error);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The group was signalled before the result was sent; give the kernel a moment to finish it off.
    let gone = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z ")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gone() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        gone(),
        "the task's child process {pid} survived the timeout"
    );
    let _ = std::fs::remove_dir_all(dir);
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_executor_is_backstopped_by_the_scheduler_timeout() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s, _) = c.scheduler("s1").await;
    let (e1, _) = c.executor("e1", 1).await;
    s.wait_active().await;
    let mut ev = s.subscribe();
    let job = s
        .create_job(
            JobSpec::manual("hang", "block")
                .with_type("script")
                .with_timeout(5)
                .with_retry(1, 0),
        )
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    c.script.wait_starts(1).await;
    // The executor's runtime dies, but its session stays alive (a wedged process): no result ever comes.
    e1.kill().await;
    let (_e2, _) = c.executor("e2", 1).await;
    let rec = finished_for(&mut ev, &task, 1).await.remove(0);
    assert_eq!(rec.status, TaskStatus::TimedOut);
    assert!(
        rec.error.contains("recorded as timed out by the scheduler"),
        "{}",
        rec.error
    );
    let start = rec.start_time.unwrap();
    assert_eq!(
        rec.end_time.unwrap() - start,
        TimeDelta::seconds(15),
        "timeout 5 s + grace 10 s"
    );
    let starts = c.script.wait_starts(2).await;
    assert_eq!(
        (starts[1].attempt, starts[1].executor.as_str()),
        (2, "e2"),
        "the retry runs on e2"
    );
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn cancel_a_running_task_a_queued_task_and_a_whole_job() {
    let (c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 1).await;
    let job = s
        .create_job(
            JobSpec::manual("long", "block")
                .with_type("script")
                .with_retry(3, 1),
        )
        .await
        .unwrap();
    let running = s.execute(&job.job_id, None).await.unwrap();
    let queued = s.execute(&job.job_id, None).await.unwrap();
    c.script.wait_starts(1).await;
    assert_eq!(
        s.cancel_task(&queued).await.unwrap(),
        CancelOutcome::Cancelled
    );
    let out = s.cancel_task(&running).await.unwrap();
    assert!(matches!(out, CancelOutcome::Cancelling { .. }), "{out:?}");
    let recs = finished(&mut ev, 2).await;
    let r = recs.iter().find(|r| r.task_id == running).unwrap();
    assert_eq!(r.status, TaskStatus::Cancelled);
    assert!(r.error.contains("cancelled"));
    assert_eq!(
        recs.iter().find(|r| r.task_id == queued).unwrap().status,
        TaskStatus::Cancelled
    );
    assert_eq!(
        s.cancel_task(&running).await.unwrap(),
        CancelOutcome::AlreadyFinished {
            status: TaskStatus::Cancelled
        }
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        s.task(&running).await.unwrap().len(),
        1,
        "a cancelled task is not retried"
    );

    let a = s.execute(&job.job_id, None).await.unwrap();
    let b = s.execute(&job.job_id, None).await.unwrap();
    c.script.wait_starts(2).await;
    assert_eq!(s.cancel_job(&job.job_id).await.unwrap(), 2);
    let recs = finished(&mut ev, 2).await;
    assert!(
        recs.iter()
            .all(|r| r.status == TaskStatus::Cancelled && (r.task_id == a || r.task_id == b))
    );
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn saturated_executors_start_waiting_tasks_by_priority_then_fifo() {
    let (c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 1).await;
    let blocker = s
        .create_job(JobSpec::manual("blocker", "block").with_type("script"))
        .await
        .unwrap();
    let mk = |name: &str, p: i32| {
        JobSpec::manual(name, "")
            .with_type("script")
            .with_priority(p)
    };
    let low = s.create_job(mk("low", 1)).await.unwrap();
    let mid = s.create_job(mk("mid", 5)).await.unwrap();
    let high = s.create_job(mk("high", 10)).await.unwrap();
    let b = s.execute(&blocker.job_id, None).await.unwrap();
    c.script.wait_starts(1).await;
    let l1 = s.execute(&low.job_id, None).await.unwrap();
    let l2 = s.execute(&low.job_id, None).await.unwrap();
    let h = s.execute(&high.job_id, None).await.unwrap();
    let m = s.execute(&mid.job_id, None).await.unwrap();
    let h2 = s.execute(&high.job_id, None).await.unwrap();
    s.cancel_task(&b).await.unwrap();
    finished(&mut ev, 6).await;
    let order: Vec<_> = c
        .script
        .starts()
        .into_iter()
        .skip(1)
        .map(|s| s.task_id)
        .collect();
    assert_eq!(
        order,
        vec![h, h2, m, l1, l2],
        "priority first, then first-in first-out"
    );
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn overlap_policies() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00.500Z", 8).await;
    let mk = |name: &str, p| {
        JobSpec::cron(name, "*/2 * * * * *", "sleep:5000")
            .with_type("script")
            .with_overlap(p)
    };
    let skip = s.create_job(mk("skip", OverlapPolicy::Skip)).await.unwrap();
    let queue = s
        .create_job(mk("queue", OverlapPolicy::Queue))
        .await
        .unwrap();
    let replace = s
        .create_job(mk("replace", OverlapPolicy::Replace))
        .await
        .unwrap();
    let allow = s
        .create_job(mk("allow", OverlapPolicy::Allow))
        .await
        .unwrap();
    let recs = finished(&mut ev, 24).await;
    let of = |id: &jobsched::JobId| {
        recs.iter()
            .filter(move |r| r.job_id == *id)
            .collect::<Vec<_>>()
    };
    let skip_recs = of(&skip.job_id);
    assert!(
        skip_recs.iter().any(|r| r.status == TaskStatus::Skipped),
        "fires during a run are skipped"
    );
    assert!(skip_recs.iter().any(|r| r.status == TaskStatus::Succeeded));
    let replace_recs = of(&replace.job_id);
    assert!(
        replace_recs
            .iter()
            .any(|r| r.status == TaskStatus::Cancelled && r.error.contains("replaced"))
    );
    let queue_recs = of(&queue.job_id);
    assert!(
        queue_recs.iter().all(|r| r.status == TaskStatus::Succeeded),
        "queued runs all run"
    );
    for w in queue_recs.windows(2) {
        assert!(
            w[1].start_time.unwrap() >= w[0].end_time.unwrap(),
            "queued runs never overlap"
        );
    }
    let allow_recs = of(&allow.job_id);
    assert!(
        allow_recs
            .windows(2)
            .any(|w| w[1].start_time.unwrap() < w[0].end_time.unwrap())
            || allow_recs.len() < 2,
        "allow lets runs overlap"
    );
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn misfires_at_start_up_follow_each_jobs_policy() {
    let c = Cluster::new("2026-01-01T01:00:00.500Z");
    // The scheduler was down: the last watermark is an hour old, and the jobs are older than that.
    let old = t("2026-01-01T00:00:00Z");
    let mk = |name: &str, p| {
        JobSpec::cron(name, "0 * * * * *", "")
            .with_type("script")
            .with_misfire(p)
            .build(old)
            .unwrap()
    };
    let mut all = mk("all", MisfirePolicy::FireAll);
    all.misfire_max_fires = 10;
    let jobs = vec![
        mk("once", MisfirePolicy::FireOnce),
        mk("skip", MisfirePolicy::Skip),
        all,
    ];
    c.storage.create_jobs(&jobs).await.unwrap();
    c.storage
        .put_value(keys::WATERMARK, "2026-01-01T00:00:30Z", None, None, &[])
        .await
        .unwrap();
    let (_e, _) = c.executor("e1", 16).await;
    let (s, _) = c.scheduler("s1").await;
    let mut ev = s.subscribe();
    s.wait_active().await;
    // 60 fires were missed per job; then the regular fire at 01:01:00.
    let recs = finished(&mut ev, 1 + 10 + 3).await;
    let of = |i: usize| {
        recs.iter()
            .filter(|r| r.job_id == jobs[i].job_id)
            .collect::<Vec<_>>()
    };
    let once = of(0);
    assert_eq!(once[0].trigger, Trigger::Misfire);
    assert_eq!(
        once[0].scheduled_time,
        t("2026-01-01T01:00:00Z"),
        "the latest missed fire"
    );
    assert_eq!(
        once.iter()
            .filter(|r| r.trigger == Trigger::Misfire)
            .count(),
        1
    );
    let skip = of(1);
    assert!(
        skip.iter().all(|r| r.trigger == Trigger::Schedule),
        "skip records no misfire"
    );
    let all = of(2);
    let missed: Vec<_> = all
        .iter()
        .filter(|r| r.trigger == Trigger::Misfire)
        .map(|r| r.scheduled_time)
        .collect();
    assert_eq!(
        missed.len(),
        10,
        "fire_all catches up at most misfire_max_fires"
    );
    assert_eq!(*missed.iter().max().unwrap(), t("2026-01-01T01:00:00Z"));
    assert_eq!(*missed.iter().min().unwrap(), t("2026-01-01T00:51:00Z"));
    for r in [&once, &skip, &all] {
        assert!(r.iter().any(
            |x| x.scheduled_time == t("2026-01-01T01:01:00Z") && x.trigger == Trigger::Schedule
        ));
    }
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn tasks_of_a_dead_executor_are_retried_on_another() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s, _) = c.scheduler("s1").await;
    let (a, a_session) = c.executor("exec-a", 2).await;
    let (_b, _) = c.executor("exec-b", 2).await;
    s.wait_active().await;
    let mut ev = s.subscribe();
    let job = s
        .create_job(
            JobSpec::manual("sticky", "block_on:exec-a; out:done")
                .with_type("script")
                .with_routing(RoutingStrategy::Failover),
        )
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    let starts = c.script.wait_starts(1).await;
    assert_eq!(
        starts[0].executor, "exec-a",
        "failover routing picks the first executor"
    );
    // exec-a hangs: its runtime is gone and its session stops heartbeating.
    a.kill().await;
    a_session.suspend();
    let recs = finished_for(&mut ev, &task, 2).await;
    assert_eq!(recs[0].status, TaskStatus::Lost);
    assert!(recs[0].error.contains("exec-a"), "{}", recs[0].error);
    assert_eq!(
        recs[0].end_time.unwrap() - starts[0].at,
        TimeDelta::seconds(10),
        "declared dead after the session TTL"
    );
    assert_eq!(
        (recs[1].status, recs[1].attempt, recs[1].trigger),
        (TaskStatus::Succeeded, 2, Trigger::Failover)
    );
    assert_eq!(recs[1].executor_id.as_ref().unwrap().as_str(), "exec-b");
    assert_eq!(recs[1].output, "done");
    let exec_a = s
        .executor(&jobsched::ExecutorId::new("exec-a").unwrap())
        .await
        .unwrap();
    assert_eq!(exec_a.status, jobsched::ExecutorStatus::Offline);
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_disabled_executor_gets_no_new_tasks() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s, _) = c.scheduler("s1").await;
    let (_a, _) = c.executor("exec-a", 4).await;
    let (_b, _) = c.executor("exec-b", 4).await;
    s.wait_active().await;
    let mut ev = s.subscribe();
    s.set_executor_enabled(&jobsched::ExecutorId::new("exec-a").unwrap(), false)
        .await
        .unwrap();
    let job = s
        .create_job(JobSpec::manual("m", "").with_type("script"))
        .await
        .unwrap();
    for _ in 0..10 {
        s.execute(&job.job_id, None).await.unwrap();
    }
    let recs = finished(&mut ev, 10).await;
    assert!(
        recs.iter()
            .all(|r| r.executor_id.as_ref().unwrap().as_str() == "exec-b")
    );
    s.set_executor_enabled(&jobsched::ExecutorId::new("exec-a").unwrap(), true)
        .await
        .unwrap();
    for _ in 0..10 {
        s.execute(&job.job_id, None).await.unwrap();
    }
    let recs = finished(&mut ev, 10).await;
    assert!(
        recs.iter()
            .any(|r| r.executor_id.as_ref().unwrap().as_str() == "exec-a"),
        "enabled again"
    );
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_standby_takes_over_and_no_fire_is_recorded_twice() {
    let c = Cluster::new("2026-01-01T00:00:00.500Z");
    let (s1, s1_session) = c.scheduler("s1").await;
    s1.wait_active().await;
    let (s2, _) = c.scheduler("s2").await;
    let (_e, _) = c.executor("e1", 16).await;
    let job = s1
        .create_job(JobSpec::cron("tick", "* * * * * *", "").with_type("script"))
        .await
        .unwrap();
    let mut ev1 = s1.subscribe();
    finished(&mut ev1, 3).await;
    assert!(!s2.is_active());
    // s1 hangs: its session expires and s2 takes over.
    s1_session.suspend();
    s2.wait_active().await;
    assert!(!s1.is_active(), "the old leader stepped down");
    let mut ev2 = s2.subscribe();
    finished(&mut ev2, 5).await;
    let fires = recorded_fire_times(&s2, &job.job_id).await;
    // Every second between the first and last recorded fire is there, or the gap of the takeover was caught
    // up by the misfire policy (fire once).
    let n = fires.len();
    let span = (fires[n - 1].0 - fires[0].0).num_seconds() as usize + 1;
    assert!(
        fires.iter().any(|(_, r)| r.trigger == Trigger::Misfire) || span == n,
        "fires missed during the takeover are caught up by the misfire policy"
    );
    s2.shutdown().await;
    s1.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_fails_its_task_not_the_executor() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 2).await;
    let inline = s
        .create_job(JobSpec::manual("boom", "panic").with_type("script"))
        .await
        .unwrap();
    let later = s
        .create_job(JobSpec::manual("boom-later", "sleep:100; panic").with_type("script"))
        .await
        .unwrap();
    let fine = s
        .create_job(JobSpec::manual("fine", "out:ok").with_type("script"))
        .await
        .unwrap();
    let a = s.execute(&inline.job_id, None).await.unwrap();
    let b = s.execute(&later.job_id, None).await.unwrap();
    for rec in [
        finished_for(&mut ev, &a, 1).await.remove(0),
        finished_for(&mut ev, &b, 1).await.remove(0),
    ] {
        assert_eq!(rec.status, TaskStatus::Failed);
        assert!(
            rec.error.contains("panicked: scripted panic"),
            "{}",
            rec.error
        );
    }
    let ok = s.execute(&fine.job_id, None).await.unwrap();
    let rec = finished_for(&mut ev, &ok, 1).await.remove(0);
    assert_eq!(
        (rec.status, rec.output.as_str()),
        (TaskStatus::Succeeded, "ok"),
        "the executor still serves"
    );
    s.shutdown().await;
}
