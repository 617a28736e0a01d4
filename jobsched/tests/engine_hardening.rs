//! Hardening tests (retries planned from storage, deleted and disabled jobs). Paused clock.

mod support;

use std::time::Duration;

use jobsched::{ExecutionRecord, ExecutorId, JobSpec, RetryBackoff, TaskId, TaskStatus, Trigger};
use support::{finished_for, started};

/// A terminal result for an attempt the engine does not hold (dispatched by another leader, not adopted
/// yet) used to be written with no next attempt: its retry was silently dropped.
#[tokio::test(start_paused = true)]
async fn a_result_for_an_attempt_not_held_here_still_gets_its_retry() {
    let (c, s, e, mut ev) = started("2026-01-01T00:00:00Z", 1).await;
    let job = s
        .create_job(
            JobSpec::manual("adopted-late", "fail_before:2; out:second")
                .with_type("script")
                .with_retry(1, 5),
        )
        .await
        .unwrap();
    // What an earlier leader recorded and sent, behind this engine's back.
    let mut rec = ExecutionRecord::first_attempt(
        &job,
        TaskId::generate(),
        Trigger::Manual,
        c.clock.now(),
        c.clock.now(),
    );
    rec.status = TaskStatus::Dispatched;
    rec.executor_id = Some(ExecutorId::new("e1").unwrap());
    rec.executor_epoch = e.epoch();
    c.storage
        .insert_executions(std::slice::from_ref(&rec), None)
        .await
        .unwrap();
    let (b, _) = c.backends();
    b.dispatcher.send_tasks(&[rec.to_task()]).await.unwrap();
    let recs = finished_for(&mut ev, &rec.task_id, 2).await;
    assert_eq!((recs[0].attempt, recs[0].status), (1, TaskStatus::Failed));
    assert_eq!(
        (recs[1].attempt, recs[1].status, recs[1].output.as_str()),
        (2, TaskStatus::Succeeded, "second")
    );
    assert_eq!(recs[1].trigger, Trigger::Retry);
    s.shutdown().await;
}

/// With `retry_max_interval = 0`, exponential backoff was capped at `u32::MAX` seconds (~136 years).
#[tokio::test(start_paused = true)]
async fn an_uncapped_exponential_retry_waits_at_most_a_day() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 1).await;
    let job = s
        .create_job(
            JobSpec::manual("backoff", "fail")
                .with_type("script")
                .with_retry(5, 50_000)
                .with_backoff(RetryBackoff::Exponential, 0),
        )
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    let recs = finished_for(&mut ev, &task, 2).await;
    let attempts = s.task(&task).await.unwrap();
    let next = attempts.last().unwrap();
    assert_eq!(next.attempt, 3);
    // 50,000 s doubled would be 100,000 s; the default cap is one day.
    let wait = next.due_time - recs[1].end_time.unwrap();
    assert_eq!(wait, chrono::TimeDelta::days(1), "waits {wait}");
    s.shutdown().await;
}

/// A deleted job kept running its pending retries, up to `retry_count` more times.
#[tokio::test(start_paused = true)]
async fn deleting_a_job_cancels_its_pending_retry() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 1).await;
    let job = s
        .create_job(
            JobSpec::manual("doomed", "fail")
                .with_type("script")
                .with_retry(3, 60),
        )
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    let first = finished_for(&mut ev, &task, 1).await.remove(0);
    assert_eq!(first.status, TaskStatus::Failed);
    s.delete_job(&job.job_id).await.unwrap();
    let retry = finished_for(&mut ev, &task, 1).await.remove(0);
    assert_eq!(
        (retry.attempt, retry.status, retry.error.as_str()),
        (2, TaskStatus::Cancelled, "cancelled: job deleted")
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        s.task(&task).await.unwrap().len(),
        2,
        "no attempt after the cancel"
    );
    s.shutdown().await;
}

/// An attempt running when its job is deleted or disabled runs to its end and gets no retry; a disabled
/// job's pending retry is cancelled like a deleted one's.
#[tokio::test(start_paused = true)]
async fn running_attempts_of_a_deleted_or_disabled_job_finish_without_a_retry() {
    let (c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 2).await;
    let spec = |name: &str| {
        JobSpec::manual(name, "sleep:5000; fail")
            .with_type("script")
            .with_retry(2, 1)
    };
    let deleted = s.create_job(spec("deleted")).await.unwrap();
    let disabled = s.create_job(spec("disabled")).await.unwrap();
    let t1 = s.execute(&deleted.job_id, None).await.unwrap();
    let t2 = s.execute(&disabled.job_id, None).await.unwrap();
    c.script.wait_starts(2).await;
    s.delete_job(&deleted.job_id).await.unwrap();
    s.update_job(&disabled.job_id, spec("disabled").with_enabled(false))
        .await
        .unwrap();
    for t in [&t1, &t2] {
        let rec = finished_for(&mut ev, t, 1).await.remove(0);
        assert_eq!((rec.attempt, rec.status), (1, TaskStatus::Failed));
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
    for t in [&t1, &t2] {
        assert_eq!(s.task(t).await.unwrap().len(), 1, "no retry of {t}");
    }
    // A disabled job's retry already waiting is cancelled.
    let again = s
        .update_job(&disabled.job_id, spec("disabled").with_enabled(true))
        .await
        .unwrap();
    let mut waits = spec("disabled");
    waits = waits.with_retry(2, 600);
    s.update_job(&again.job_id, waits.clone()).await.unwrap();
    let t3 = s.execute(&again.job_id, None).await.unwrap();
    assert_eq!(
        finished_for(&mut ev, &t3, 1).await[0].status,
        TaskStatus::Failed
    );
    s.update_job(&again.job_id, waits.with_enabled(false))
        .await
        .unwrap();
    let retry = finished_for(&mut ev, &t3, 1).await.remove(0);
    assert_eq!(
        (retry.attempt, retry.status, retry.error.as_str()),
        (2, TaskStatus::Cancelled, "cancelled: job disabled")
    );
    s.shutdown().await;
}

/// Waits (virtual time, with a deadline) until `attempt` of `task` is recorded running.
async fn running(s: &jobsched::Scheduler, task: &TaskId, attempt: u32) {
    for _ in 0..600 {
        let last = s.task(task).await.unwrap().pop().unwrap();
        if (last.attempt, last.status) == (attempt, TaskStatus::Running) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("attempt {attempt} of {task} never ran");
}

/// A handler that ignores cancellation: it never returns.
struct Stuck;

#[async_trait::async_trait]
impl jobsched::handler::TaskHandler for Stuck {
    async fn execute(
        &self,
        _: &jobsched::handler::TaskContext,
        _: &jobsched::Task,
    ) -> Result<jobsched::handler::Outcome, jobsched::handler::ExecError> {
        std::future::pending().await
    }
}

/// A handler that ignores cancellation used to hang its executor: only the timeout abandoned it; a
/// user's cancel, a lost session (which waited for it forever) and the shutdown drain never did.
#[tokio::test(start_paused = true)]
async fn a_handler_that_ignores_cancellation_is_abandoned_and_the_executor_goes_on() {
    let c = support::Cluster::new("2026-01-01T00:00:00Z");
    let (s, _) = c.scheduler("s1").await;
    s.wait_active().await;
    let mut ev = s.subscribe();
    let (b, session) = c.backends();
    let mut handlers = jobsched::handler::HandlerRegistry::with_shell();
    handlers
        .register("script", std::sync::Arc::new(c.script.clone()))
        .unwrap();
    handlers
        .register("stuck", std::sync::Arc::new(Stuck))
        .unwrap();
    let e = jobsched::Executor::builder(ExecutorId::new("e1").unwrap(), b)
        .with_capacity(1)
        .with_handlers(handlers)
        .with_clock(c.clock.clone())
        .with_shutdown_grace(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let stuck = s
        .create_job(JobSpec::manual("stuck", "").with_type("stuck"))
        .await
        .unwrap();
    let ok = s
        .create_job(JobSpec::manual("ok", "out:ok").with_type("script"))
        .await
        .unwrap();
    // A user's cancel: recorded cancelled, and the one slot is free again.
    let t1 = s.execute(&stuck.job_id, None).await.unwrap();
    let waiting = s.execute(&ok.job_id, None).await.unwrap();
    running(&s, &t1, 1).await;
    s.cancel_task(&t1).await.unwrap();
    let r1 = finished_for(&mut ev, &t1, 1).await.remove(0);
    assert_eq!(r1.status, TaskStatus::Cancelled, "{}", r1.error);
    assert!(r1.error.contains("abandoned"), "{}", r1.error);
    assert_eq!(
        finished_for(&mut ev, &waiting, 1).await[0].status,
        TaskStatus::Succeeded
    );
    // A lost session: the executor stops it, registers again, and runs the next task.
    let epoch = e.epoch();
    let t2 = s.execute(&stuck.job_id, None).await.unwrap();
    running(&s, &t2, 1).await;
    session.expire();
    let r2 = finished_for(&mut ev, &t2, 1).await.remove(0);
    assert_eq!(r2.status, TaskStatus::Lost);
    let mut later = None;
    for _ in 0..600 {
        if e.epoch() > epoch {
            later = Some(e.epoch());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(later.is_some(), "the executor registered again");
    // Its failover runs on the executor registered again (stuck too, until cancelled); then the next.
    let next = s.execute(&ok.job_id, None).await.unwrap();
    running(&s, &t2, 2).await;
    s.cancel_task(&t2).await.unwrap();
    let r3 = finished_for(&mut ev, &t2, 1).await.remove(0);
    assert_eq!((r3.attempt, r3.status), (2, TaskStatus::Cancelled));
    assert_eq!(
        finished_for(&mut ev, &next, 1).await[0].status,
        TaskStatus::Succeeded
    );
    // The shutdown drain: it ends although a stuck task runs.
    let t3 = s.execute(&stuck.job_id, None).await.unwrap();
    running(&s, &t3, 1).await;
    tokio::time::timeout(Duration::from_secs(60), e.shutdown())
        .await
        .expect("the executor stops");
    s.shutdown().await;
}

/// One result the store refuses (a character its column cannot hold) used to block every later result:
/// the batch was retried forever and the engine stopped reading results.
#[tokio::test(start_paused = true)]
async fn a_result_the_store_refuses_is_recorded_without_its_output_and_others_go_on() {
    let store = support::flaky::Flaky::new();
    let c = support::Cluster::with_storage("2026-01-01T00:00:00Z", store.clone());
    let (s, _) = c.scheduler("s1").await;
    let (_e, _) = c.executor("e1", 4).await;
    s.wait_active().await;
    let mut ev = s.subscribe();
    store.set_latin1(true);
    let tick = s
        .create_job(JobSpec::manual("tick", "out:done ✓").with_type("script"))
        .await
        .unwrap();
    let plain = s
        .create_job(JobSpec::manual("plain", "out:plain").with_type("script"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push((s.execute(&tick.job_id, None).await.unwrap(), true));
        tasks.push((s.execute(&plain.job_id, None).await.unwrap(), false));
    }
    for (t, refused) in &tasks {
        let rec = finished_for(&mut ev, t, 1).await.remove(0);
        assert_eq!(rec.status, TaskStatus::Succeeded);
        if *refused {
            assert_eq!(rec.output, "");
            assert!(
                rec.error.contains("could not be stored as reported"),
                "{}",
                rec.error
            );
        } else {
            assert_eq!(rec.output, "plain");
        }
        let stored = s.task(t).await.unwrap().remove(0);
        assert_eq!(
            (stored.status, stored.output.as_str()),
            (rec.status, rec.output.as_str())
        );
    }
    // Later results are read and recorded as usual.
    let after = s.execute(&plain.job_id, None).await.unwrap();
    assert_eq!(finished_for(&mut ev, &after, 1).await[0].output, "plain");
    s.shutdown().await;
}

/// A fixed-delay job ran twice after a takeover: the new leader computed its next fire from the watermark
/// before it adopted the running task, so "the previous run is still active" never applied.
#[tokio::test(start_paused = true)]
async fn a_fixed_delay_job_does_not_start_a_second_run_after_a_takeover() {
    let c = support::Cluster::new("2026-01-01T00:00:00Z");
    let (s1, s1_session) = c.scheduler("s1").await;
    s1.wait_active().await;
    let (s2, _) = c.scheduler("s2").await;
    let (_e, _) = c.executor("e1", 4).await;
    let job = s1
        .create_job(JobSpec::fixed_delay("slow", 10, "sleep:30000").with_type("script"))
        .await
        .unwrap();
    c.script.wait_starts(1).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    s1_session.suspend();
    s2.wait_active().await;
    let mut ev = s2.subscribe();
    let first = support::finished(&mut ev, 1).await.remove(0);
    assert_eq!(first.status, TaskStatus::Succeeded);
    let end = first.end_time.unwrap();
    // The next run fires 10 s after the first ended, and is the only other one.
    let second = support::finished(&mut ev, 1).await.remove(0);
    assert!(
        second.scheduled_time >= end + chrono::TimeDelta::seconds(10),
        "{second:?}"
    );
    let fires = support::recorded_fire_times(&s2, &job.job_id).await;
    assert!(
        fires[1].0 >= end,
        "no second run while the first ran: {:?}",
        fires.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    s2.shutdown().await;
}

/// After the coordinator lost its data (or its root changed), its election tokens started below the
/// stored fence: every write was `Fenced`, and the scheduler took one token per campaign until it
/// climbed past the stored one. The fence now comes from the store, above what it holds.
#[tokio::test(start_paused = true)]
async fn a_coordinator_whose_tokens_restarted_does_not_fence_out_its_leader() {
    let c = support::Cluster::new("2026-01-01T00:00:00Z");
    // A long-lived cluster's fence, far above the fresh coordinator's first token (1).
    c.storage
        .claim_fence(jobsched::coord::SCHEDULER_LEADER, 5_000)
        .await
        .unwrap();
    let (s, _) = c.scheduler("s1").await;
    let (_e, _) = c.executor("e1", 1).await;
    s.wait_active().await;
    let mut ev = s.subscribe();
    let job = s
        .create_job(JobSpec::manual("after-loss", "out:ok").with_type("script"))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let t = s.execute(&job.job_id, None).await.unwrap();
    assert_eq!(
        finished_for(&mut ev, &t, 1).await[0].status,
        TaskStatus::Succeeded
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    s.shutdown().await;
}

/// A clock `ahead` of another.
#[derive(Debug)]
struct Skewed(jobsched::clock::SharedClock, chrono::TimeDelta);

impl jobsched::clock::Clock for Skewed {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.now() + self.1
    }
}

/// A standby whose clock runs an hour ahead served a job update: the job's `update_time` came from that
/// clock, and the active scheduler skipped every fire inside the skew.
#[tokio::test(start_paused = true)]
async fn an_update_served_by_a_fast_standby_does_not_stop_the_job_firing() {
    let c = support::Cluster::new("2026-01-01T00:00:00Z");
    let (s1, _) = c.scheduler("s1").await;
    s1.wait_active().await;
    let (b, _) = c.backends();
    let fast = jobsched::Scheduler::builder(b)
        .with_config(support::Cluster::config("s2"))
        .with_clock(std::sync::Arc::new(Skewed(
            c.clock.clone(),
            chrono::TimeDelta::hours(1),
        )))
        .start()
        .await
        .unwrap();
    let (_e, _) = c.executor("e1", 4).await;
    let spec = || JobSpec::cron("tick", "* * * * * *", "out:tick").with_type("script");
    let job = s1.create_job(spec()).await.unwrap();
    let mut ev = s1.subscribe();
    support::finished(&mut ev, 2).await;
    assert!(!fast.is_active());
    // A new schedule: the next fire is planned from the update's time.
    let every_2s = JobSpec::cron("tick", "*/2 * * * * *", "out:tick").with_type("script");
    fast.update_job(&job.job_id, every_2s).await.unwrap();
    let updated = s1.get_job(&job.job_id).await.unwrap();
    assert!(
        updated.update_time > c.clock.now() + chrono::TimeDelta::minutes(59),
        "the skewed time is stored"
    );
    let after = c.clock.now();
    let recs = support::finished(&mut ev, 5).await;
    assert!(recs.iter().all(|r| r.job_id == job.job_id));
    assert!(
        recs.last().unwrap().scheduled_time < after + chrono::TimeDelta::seconds(15),
        "it kept firing every two seconds: {:?}",
        recs.iter().map(|r| r.scheduled_time).collect::<Vec<_>>()
    );
    fast.shutdown().await;
    s1.shutdown().await;
}

/// A configuration copy on the coordinator at a version storage does not have (`2^63`, written by
/// anyone who could write to ZooKeeper, or left by a store that was restored) used to be applied by
/// every process and to block every later change (a change applied only if its version was higher).
#[tokio::test(start_paused = true)]
async fn a_published_configuration_storage_lacks_is_undone_and_later_changes_spread() {
    use jobsched::coord::CONFIG_KEY;
    let (c, s, e, _ev) = started("2026-01-01T00:00:00Z", 1).await;
    let mut sys = s.config().await.unwrap();
    sys.value.kill_grace_secs = 4;
    let v1 = s
        .update_config(sys.value.clone(), Some(sys.version))
        .await
        .unwrap();
    let (b, _) = c.backends();
    let published = |b: jobsched::Backends| async move {
        let raw = b.coordinator.get(CONFIG_KEY).await.unwrap().unwrap();
        serde_json::from_slice::<serde_json::Value>(&raw.value).unwrap()["version"]
            .as_u64()
            .unwrap()
    };
    let settled = |want: u64| {
        let (b, s, e) = (b.clone(), &s, &e);
        async move {
            for _ in 0..1000 {
                let seen = s.published_config().map(|c| c.version);
                if published(b.clone()).await == want
                    && e.config_version() == want
                    && seen == Some(want)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!(
                "not settled at version {want}: key {}, executor {}, scheduler {:?}",
                published(b.clone()).await,
                e.config_version(),
                s.published_config().map(|c| c.version)
            );
        }
    };
    settled(v1).await;

    let mut forged = sys.value.clone();
    forged.kill_grace_secs = 99;
    let body = serde_json::json!({"version": 1u64 << 63, "config": forged});
    b.coordinator
        .put(CONFIG_KEY, &serde_json::to_vec(&body).unwrap(), None)
        .await
        .unwrap();
    // The active scheduler puts storage's record back; every process follows it down.
    settled(v1).await;
    assert_eq!(s.config().await.unwrap().value.kill_grace_secs, 4);
    // And a later change reaches the executor.
    sys.value.kill_grace_secs = 6;
    let v2 = s.update_config(sys.value, Some(v1)).await.unwrap();
    settled(v2).await;
    s.shutdown().await;
}
