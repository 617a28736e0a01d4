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
