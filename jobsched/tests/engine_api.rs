//! The `Scheduler` handle as the HTTP API will use it: status, configuration, executors, tasks, errors.

mod support;

use std::time::Duration;

use jobsched::{
    CancelOutcome, Error, ExecutorId, JobId, JobSpec, SystemConfig, TaskId, TaskStatus,
};
use support::{Cluster, finished_for};

#[tokio::test(start_paused = true)]
async fn status_counts_jobs_executors_schedulers_and_outcomes() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s1, _) = c.scheduler("s1").await;
    s1.wait_active().await;
    let (s2, _) = c.scheduler("s2").await;
    let (_e, _) = c.executor("e1", 2).await;
    let mut ev = s1.subscribe();
    let ok = s1
        .create_job(JobSpec::manual("ok", "").with_type("script"))
        .await
        .unwrap();
    let bad = s1
        .create_job(JobSpec::manual("bad", "fail").with_type("script"))
        .await
        .unwrap();
    let t1 = s1.execute(&ok.job_id, None).await.unwrap();
    let t2 = s1.execute(&bad.job_id, None).await.unwrap();
    finished_for(&mut ev, &t1, 1).await;
    finished_for(&mut ev, &t2, 1).await;
    // A standby answers the same, from storage and the coordinator.
    for s in [&s1, &s2] {
        let st = s.status().await.unwrap();
        assert_eq!(st.jobs, 2);
        assert_eq!(st.executors_online, 1);
        assert_eq!(st.schedulers, 2, "active and standby are both members");
        assert_eq!(st.leader.as_deref(), Some("s1"));
        assert_eq!((st.last_hour.succeeded, st.last_hour.failed), (1, 1));
        assert!((st.last_hour.success_rate - 0.5).abs() < 1e-9);
        assert_eq!((st.running, st.queued), (0, 0));
    }
    assert!(s1.status().await.unwrap().active);
    assert!(!s2.status().await.unwrap().active);
    let stats = s1.engine_stats().await.expect("active");
    assert_eq!(
        (stats.jobs, stats.active_tasks, stats.executors_online),
        (2, 0, 1)
    );
    assert!(s2.engine_stats().await.is_none(), "a standby has no engine");
    s2.shutdown().await;
    s1.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn configuration_is_validated_versioned_and_reaches_the_engine() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s, _) = c.scheduler("s1").await;
    let (_e, _) = c.executor("e1", 1).await;
    s.wait_active().await;
    let current = s.config().await.unwrap();
    assert_eq!(
        (current.value.clone(), current.version),
        (SystemConfig::default(), 0)
    );
    let bad = SystemConfig {
        timeout_grace_secs: 0,
        ..SystemConfig::default()
    };
    let e = s.update_config(bad, None).await.unwrap_err().to_string();
    assert!(e.contains("timeout_grace_secs"), "{e}");
    let new = SystemConfig {
        timeout_grace_secs: 2,
        ..SystemConfig::default()
    };
    let v = s.update_config(new.clone(), Some(0)).await.unwrap();
    assert_eq!(v, 1);
    assert!(matches!(
        s.update_config(new, Some(0)).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(s.config().await.unwrap().value.timeout_grace_secs, 2);
    // The running engine applies it: a silent executor is now timed out after timeout + 2 s.
    let mut ev = s.subscribe();
    let job = s
        .create_job(
            JobSpec::manual("hang", "block")
                .with_type("script")
                .with_timeout(3),
        )
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    c.script.wait_starts(1).await;
    _e.kill().await;
    let rec = finished_for(&mut ev, &task, 1).await.remove(0);
    assert_eq!(rec.status, TaskStatus::TimedOut);
    assert_eq!(
        (rec.end_time.unwrap() - rec.start_time.unwrap()).num_seconds(),
        5
    );
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn executors_tasks_and_unknown_ids() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s, _) = c.scheduler("s1").await;
    let (_e, _) = c.executor("e1", 3).await;
    s.wait_active().await;
    let execs = s.executors().await.unwrap();
    assert_eq!(execs.len(), 1);
    assert_eq!((execs[0].capacity, execs[0].enabled), (3, true));
    assert!(execs[0].handlers.contains(&"script".to_string()));
    let disabled = s
        .set_executor_enabled(&ExecutorId::new("e1").unwrap(), false)
        .await
        .unwrap();
    assert!(!disabled.enabled);
    assert!(
        !s.executor(&ExecutorId::new("e1").unwrap())
            .await
            .unwrap()
            .enabled
    );

    let ghost_job = JobId::new("no-such-job").unwrap();
    let ghost_task = TaskId::new("no-such-task").unwrap();
    assert!(matches!(
        s.get_job(&ghost_job).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.execute(&ghost_job, None).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.cancel_job(&ghost_job).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.task(&ghost_task).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.cancel_task(&ghost_task).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.executor(&ExecutorId::new("ghost").unwrap()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_job(&ghost_job).await,
        Err(Error::NotFound { .. })
    ));

    // With the only executor disabled the task waits queued; enabling it lets it run.
    let mut ev = s.subscribe();
    let job = s
        .create_job(JobSpec::manual("m", "out:hi").with_type("script"))
        .await
        .unwrap();
    let task = s.execute(&job.job_id, None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(s.task(&task).await.unwrap()[0].status, TaskStatus::Queued);
    s.set_executor_enabled(&ExecutorId::new("e1").unwrap(), true)
        .await
        .unwrap();
    let rec = finished_for(&mut ev, &task, 1).await.remove(0);
    assert_eq!(
        (rec.status, rec.output.as_str()),
        (TaskStatus::Succeeded, "hi")
    );
    assert_eq!(
        s.cancel_task(&task).await.unwrap(),
        CancelOutcome::AlreadyFinished {
            status: TaskStatus::Succeeded
        }
    );
    s.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_standby_cancels_every_queued_task_of_a_job_past_one_page() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s1, _) = c.scheduler("s1").await;
    s1.wait_active().await;
    let (s2, _) = c.scheduler("s2").await;
    assert!(!s2.is_active());
    // No executor: every run stays queued.
    let job = s2
        .create_job(JobSpec::manual("many", "").with_type("script"))
        .await
        .unwrap();
    let other = s2
        .create_job(JobSpec::manual("other", "").with_type("script"))
        .await
        .unwrap();
    for _ in 0..1500 {
        s2.execute(&job.job_id, None).await.unwrap();
    }
    let kept = s2.execute(&other.job_id, None).await.unwrap();
    assert_eq!(s2.cancel_job(&job.job_id).await.unwrap(), 1500);
    let left = s2
        .history(&jobsched::ExecutionQuery {
            job_id: Some(job.job_id.clone()),
            statuses: TaskStatus::ACTIVE.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(left.total, 0, "every queued task of the job is cancelled");
    let other_task = s2.task(&kept).await.unwrap();
    assert_eq!(
        other_task[0].status,
        TaskStatus::Queued,
        "another job's task is untouched"
    );
    s2.shutdown().await;
    s1.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn wait_for_returns_the_final_attempt_on_the_active_scheduler_and_on_a_standby() {
    let c = Cluster::new("2026-01-01T00:00:00Z");
    let (s1, _) = c.scheduler("s1").await;
    s1.wait_active().await;
    let (s2, _) = c.scheduler("s2").await;
    let (_e, _) = c.executor("e1", 2).await;
    // Fails once, then succeeds: the wait ends with the retry, not with the first failure.
    let job = s1
        .create_job(
            JobSpec::manual("flaky", "fail_before:2")
                .with_type("script")
                .with_retry(1, 1),
        )
        .await
        .unwrap();
    let task = s1.execute(&job.job_id, None).await.unwrap();
    let on_standby = tokio::spawn({
        let s2 = s2.clone();
        let task = task.clone();
        async move { s2.wait_for(&task).await }
    });
    let rec = s1.wait_for(&task).await.unwrap();
    assert_eq!((rec.attempt, rec.status), (2, TaskStatus::Succeeded));
    let rec2 = on_standby.await.unwrap().unwrap();
    assert_eq!((rec2.attempt, rec2.status), (2, TaskStatus::Succeeded));
    let again = s1.run_and_wait(&job.job_id, None).await.unwrap();
    assert_eq!(again.job_id, job.job_id);
    assert!(again.status.is_terminal());
    s2.shutdown().await;
    s1.shutdown().await;
}

#[tokio::test]
async fn settings_are_checked_when_starting() {
    let b = jobsched::Backends::in_memory();
    let err = jobsched::Scheduler::builder(b.clone())
        .with_config(jobsched::SchedulerConfig::default().with_batch_size(0))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
    let err = jobsched::Executor::builder(ExecutorId::new("e").unwrap(), b)
        .with_handler(
            "Not A Name",
            std::sync::Arc::new(jobsched::handler::NoopHandler),
        )
        .with_capacity(2)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}
