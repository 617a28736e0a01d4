//! The scheduling engine on the MySQL store: two schedulers (active and hot standby, each with its own
//! pool, as two processes would have) and an executor run every-second jobs and on-request tasks; the
//! active scheduler stops mid-run and the standby takes over. Every fire is recorded once and every task
//! ends succeeded.

mod support;

use support::StoreDb;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jobsched::coord::LocalCoordinator;
use jobsched::dispatch::ChannelDispatcher;
use jobsched::handler::{ExecError, Outcome, TaskContext, TaskHandler};
use jobsched::{
    Backends, Event, ExecutionQuery, Executor, ExecutorId, JobSpec, PageRequest, Scheduler, Task,
    TaskStatus, Trigger,
};
use tokio::sync::broadcast;

struct Noop;

#[async_trait]
impl TaskHandler for Noop {
    async fn execute(&self, _: &TaskContext, _: &Task) -> Result<Outcome, ExecError> {
        Ok(Outcome::success("ok"))
    }
}

/// Waits (at most 30 s) until `events` has seen `n` scheduled fires.
async fn scheduled_fires(events: &mut broadcast::Receiver<Event>, n: usize) {
    let wait = async {
        let mut seen = 0;
        while seen < n {
            match events.recv().await {
                Ok(Event::Fired { trigger, .. }) if trigger != Trigger::Manual => seen += 1,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the scheduler stopped"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("{n} scheduled fires within 30 s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedulers_on_mysql_record_each_fire_once_across_a_takeover() {
    let Some(db) = support::test_db().await else {
        return;
    };
    let hub = LocalCoordinator::new();
    let dispatcher = ChannelDispatcher::new();
    let backends = |store: jobsched_mysql::MysqlStore| Backends {
        storage: Arc::new(store),
        dispatcher: Arc::new(dispatcher.clone()),
        coordinator: Arc::new(hub.connect()),
    };
    let b1 = backends(db.store().await);
    let b2 = backends(db.config().with_migrate(false).connect().await.unwrap());
    let s1 = Scheduler::builder(b1.clone())
        .start()
        .await
        .expect("valid scheduler settings");
    s1.wait_active().await;
    let s2 = Scheduler::builder(b2.clone())
        .start()
        .await
        .expect("valid scheduler settings");
    let executor = Executor::builder(ExecutorId::new("e1").unwrap(), b2.clone())
        .with_capacity(64)
        .with_handler("noop", Arc::new(Noop))
        .start()
        .await
        .unwrap();
    let (mut fired_by_s1, mut fired_by_s2) = (s1.subscribe(), s2.subscribe());
    let specs = (0..20)
        .map(|i| JobSpec::cron(format!("every-second-{i}"), "* * * * * *", "").with_type("noop"))
        .collect();
    s1.create_jobs(specs).await.unwrap();
    let manual = s2
        .create_job(JobSpec::manual("manual", "").with_type("noop"))
        .await
        .unwrap();
    let mut tasks = HashSet::new();
    for _ in 0..200 {
        tasks.insert(s2.execute(&manual.job_id, None).await.unwrap());
    }
    // Two seconds of fires of every job, then the active scheduler stops and the standby takes over
    // from storage and fires two more seconds' worth.
    scheduled_fires(&mut fired_by_s1, 40).await;
    s1.shutdown().await;
    s2.wait_active().await;
    scheduled_fires(&mut fired_by_s2, 40).await;
    // No new fires while the test drains.
    for j in s2.list_jobs(&Default::default()).await.unwrap().items {
        s2.delete_job(&j.job_id).await.unwrap();
    }
    // Everything in flight ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let active = b2.storage.active_executions(0, 10).await.unwrap();
        if active.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still active: {active:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut fires = HashSet::new();
    let mut page = 1;
    let mut fired = 0;
    loop {
        let q = ExecutionQuery {
            page: PageRequest::new(page, 1000).unwrap(),
            ..ExecutionQuery::default()
        };
        let p = b2.storage.list_executions(&q).await.unwrap();
        for r in &p.items {
            assert_eq!(r.status, TaskStatus::Succeeded, "{r:?}");
            if r.job_id == manual.job_id {
                assert!(tasks.remove(&r.task_id), "a manual task ran twice: {r:?}");
            } else {
                fired += 1;
                assert!(
                    fires.insert((r.job_id.clone(), r.scheduled_time)),
                    "fire recorded twice: {r:?}"
                );
            }
        }
        if p.items.len() < 1000 {
            break;
        }
        page += 1;
    }
    assert!(tasks.is_empty(), "manual tasks not recorded: {tasks:?}");
    // Every fire either scheduler reported is recorded (once, checked above).
    assert!(fired >= 80, "only {fired} fires recorded");
    executor.shutdown().await;
    s2.shutdown().await;
}
