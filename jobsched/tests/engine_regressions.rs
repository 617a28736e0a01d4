//! Regression tests for engine and executor bugs found in review. Paused clock.

mod support;

use std::time::Duration;

use chrono::TimeDelta;
use jobsched::{CancelReason, Control};
use jobsched::{ExecutorId, JobSpec, TaskId, TaskStatus, Trigger};
use support::flaky::Flaky;
use support::{Cluster, finished, finished_for, started};

/// Every attempt used to count its generations from 0, so the timeout backstop of attempt n could match
/// attempt n+1 and kill it early.
#[tokio::test(start_paused = true)]
async fn an_earlier_attempts_deadline_does_not_time_out_the_next_attempt() {
    let (_c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 1).await;
    let job = s
        .create_job(
            JobSpec::manual(
                "late-success",
                "sleep:1000; fail_before:3; sleep:50000; out:done",
            )
            .with_type("script")
            .with_timeout(60)
            .with_retry(2, 30),
        )
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    let recs = finished_for(&mut ev, &task, 3).await;
    assert_eq!(recs[0].status, TaskStatus::Failed);
    assert_eq!(recs[1].status, TaskStatus::Failed);
    // Attempt 2's backstop (start + 60 s + 10 s grace) falls inside attempt 3's 51 s run.
    assert_eq!(
        (recs[2].status, recs[2].output.as_str()),
        (TaskStatus::Succeeded, "done"),
        "attempt 3 must run to its end: {}",
        recs[2].error
    );
    s.shutdown().await;
}

/// A handler asking to retry after `u64::MAX` ms used to overflow a time addition and panic the engine.
#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_is_capped_and_the_engine_keeps_running() {
    let (c, s, _e, mut ev) = started("2026-01-01T00:00:00Z", 1).await;
    let job = s
        .create_job(
            JobSpec::manual("later", format!("retry_after:{}", u64::MAX))
                .with_type("script")
                .with_retry(1, 1),
        )
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    let first = finished_for(&mut ev, &task, 1).await.remove(0);
    assert_eq!(first.status, TaskStatus::Failed);
    let attempts = s.task(&task).await.unwrap();
    assert_eq!(attempts.len(), 2, "the retry is planned");
    assert!(attempts[1].due_time <= c.clock.now() + TimeDelta::days(30));
    let ok = s
        .create_job(JobSpec::manual("ok", "out:alive").with_type("script"))
        .await
        .unwrap();
    let t = s.execute(&ok.job_id, None).await.unwrap();
    let rec = finished_for(&mut ev, &t, 1).await.remove(0);
    assert_eq!(rec.output, "alive", "the engine still runs");
    s.shutdown().await;
}

/// A cancel that reached the executor before its task was dropped, and the task then ran.
#[tokio::test(start_paused = true)]
async fn a_cancel_that_overtakes_its_task_still_cancels_it() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (e, _) = c.executor("e1", 1).await;
    let (b, _) = c.backends();
    let mut results = b.dispatcher.result_inbox().await.unwrap();
    let job = JobSpec::manual("never", "out:ran")
        .with_type("script")
        .build(c.clock.now())
        .unwrap();
    let mut task = jobsched::ExecutionRecord::first_attempt(
        &job,
        TaskId::generate(),
        Trigger::Manual,
        c.clock.now(),
        c.clock.now(),
    )
    .to_task();
    task.executor_id = Some(ExecutorId::new("e1").unwrap());
    task.executor_epoch = e.epoch();
    let cancel = Control::Cancel {
        task_id: task.task_id.clone(),
        attempt: 1,
        reason: CancelReason::User,
    };
    b.dispatcher
        .send_control(&ExecutorId::new("e1").unwrap(), &cancel)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.dispatcher
        .send_tasks(std::slice::from_ref(&task))
        .await
        .unwrap();
    let got = jobsched::testing::dispatch::recv_n(&mut results, 1).await;
    assert_eq!(got[0].message.task_id, task.task_id);
    assert_eq!(got[0].message.status, TaskStatus::Cancelled);
    assert!(
        c.script.starts().is_empty(),
        "the cancelled task must not run"
    );
    e.shutdown().await;
}

/// A cluster whose store takes 2 s per insert, one executor `e1` with one slot, and a manual run of a job
/// whose insert is in flight (half a second into it) when this returns.
struct SlowInsert {
    c: Cluster,
    store: std::sync::Arc<Flaky>,
    s: jobsched::Scheduler,
    e1: jobsched::Executor,
    e1_session: std::sync::Arc<jobsched::coord::LocalCoordinator>,
    ev: tokio::sync::broadcast::Receiver<jobsched::Event>,
    job: jobsched::Job,
    pending: tokio::task::JoinHandle<TaskId>,
}

async fn slow_insert() -> SlowInsert {
    let store = Flaky::new();
    let c = Cluster::with_storage("2026-01-01T00:00:00Z", store.clone());
    let (s, _) = c.scheduler("s1").await;
    let (e1, e1_session) = c.executor("e1", 1).await;
    s.wait_active().await;
    let ev = s.subscribe();
    let job = s
        .create_job(JobSpec::manual("m", "out:x").with_type("script"))
        .await
        .unwrap();
    store.set_insert_delay(Duration::from_secs(2));
    let s2 = s.clone();
    let id = job.job_id.clone();
    let pending = tokio::spawn(async move { s2.execute(&id, None).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    SlowInsert {
        c,
        store,
        s,
        e1,
        e1_session,
        ev,
        job,
        pending,
    }
}

/// A storage scan during a slow insert used to adopt the task a second time, counting its executor slot
/// twice; the slot leaked and the executor got no more tasks.
#[tokio::test(start_paused = true)]
async fn a_storage_scan_during_a_slow_insert_does_not_leak_executor_slots() {
    let SlowInsert {
        c: _c,
        store,
        s,
        e1: _e1,
        mut ev,
        job,
        pending,
        ..
    } = slow_insert().await;
    // A job change makes the engine re-read storage while the insert is still in flight.
    s.create_job(JobSpec::manual("other", "").with_type("script"))
        .await
        .unwrap();
    let first = pending.await.unwrap();
    finished_for(&mut ev, &first, 1).await;
    store.set_insert_delay(Duration::ZERO);
    for _ in 0..5 {
        let t = s.execute(&job.job_id, None).await.unwrap();
        let rec = finished_for(&mut ev, &t, 1).await.remove(0);
        assert_eq!(rec.status, TaskStatus::Succeeded);
    }
    assert_eq!(s.engine_stats().await.unwrap().active_tasks, 0);
    s.shutdown().await;
}

/// A task given to an executor that left while the task's insert was in flight stayed dispatched forever.
#[tokio::test(start_paused = true)]
async fn a_task_given_to_an_executor_that_left_during_its_insert_fails_over() {
    let SlowInsert {
        c,
        store,
        s,
        e1,
        e1_session,
        mut ev,
        pending,
        ..
    } = slow_insert().await;
    // e1 dies while the insert (recording the task as dispatched to it) is in flight.
    e1.kill().await;
    e1_session.expire();
    let (_e2, _) = c.executor("e2", 1).await;
    let task = pending.await.unwrap();
    store.set_insert_delay(Duration::ZERO);
    let recs = finished_for(&mut ev, &task, 2).await;
    assert_eq!(recs[0].status, TaskStatus::Lost);
    assert_eq!(
        (recs[1].status, recs[1].attempt),
        (TaskStatus::Succeeded, 2)
    );
    assert_eq!(recs[1].executor_id.as_ref().unwrap().as_str(), "e2");
    s.shutdown().await;
}

/// With a prefetch, an executor could hold more queued tasks than it takes in at once; when its handler
/// finished inline (no task end to wake it), it stopped starting the queued ones and they stalled for good.
#[tokio::test(start_paused = true)]
async fn prefetched_tasks_of_an_inline_handler_all_run() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s, _) = c.scheduler("s1").await;
    s.wait_active().await;
    let mut ev = s.subscribe();
    let mut sys = s.config().await.unwrap();
    sys.value.executor_prefetch = 200;
    s.update_config(sys.value, Some(sys.version)).await.unwrap();
    let job = s
        .create_job(JobSpec::manual("inline", "out:x").with_type("script"))
        .await
        .unwrap();
    for _ in 0..300 {
        s.execute(&job.job_id, None).await.unwrap();
    }
    // All queued at the scheduler: the executor gets 201 at once when it joins.
    let (_e, _) = c.executor("e1", 1).await;
    let recs = finished(&mut ev, 300).await;
    assert!(recs.iter().all(|r| r.status == TaskStatus::Succeeded));
    s.shutdown().await;
}
