//! A database whose tables are not utf8mb4 (adopted seed tables, or a `latin1` server default): the store
//! refuses to open it without migrations, naming the tables, and converts them with migrations on; tasks
//! printing `✓` or invalid UTF-8 then end recorded beside plain ones.

mod support;

use std::sync::Arc;
use std::time::Duration;

use jobsched::coord::LocalCoordinator;
use jobsched::dispatch::ChannelDispatcher;
use jobsched::handler::HandlerRegistry;
use jobsched::{Backends, Event, Executor, ExecutorId, JobSpec, Scheduler, TaskStatus};
use jobsched_mysql::MysqlConfig;
use support::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latin1_tables_are_refused_or_converted_and_any_output_is_recorded() {
    let Some(db) = TestDb::create_with_charset("jslatin", "latin1").await else {
        return;
    };
    // The design's `jobs` table made by hand before jobsched ever ran: latin1 like its database.
    let pool = db.pool().await;
    sqlx::query(
        "CREATE TABLE jobs (job_id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL, \
         command TEXT NOT NULL, type TINYINT NOT NULL, priority INT DEFAULT 0, \
         cron_expression VARCHAR(100), timeout INT DEFAULT 0, retry_count INT DEFAULT 0, \
         retry_interval INT DEFAULT 0, create_time DATETIME DEFAULT CURRENT_TIMESTAMP, \
         update_time DATETIME DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let refused = MysqlConfig::new(db.url())
        .with_migrate(false)
        .connect()
        .await
        .unwrap_err();
    let msg = refused.to_string();
    assert!(
        msg.contains("jobs (latin1)") && msg.contains("utf8mb4"),
        "{msg}"
    );

    let store = MysqlConfig::new(db.url())
        .connect()
        .await
        .expect("converted on open");
    let narrow: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME <> '_sqlx_migrations' \
         AND CHARACTER_SET_NAME IS NOT NULL AND CHARACTER_SET_NAME <> 'utf8mb4'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(narrow, 0, "every text column is utf8mb4");

    let hub = LocalCoordinator::new();
    let backends = Backends {
        storage: Arc::new(store),
        dispatcher: Arc::new(ChannelDispatcher::new()),
        coordinator: Arc::new(hub.connect()),
    };
    let s = Scheduler::builder(backends.clone()).start().await.unwrap();
    s.wait_active().await;
    let _e = Executor::builder(ExecutorId::new("e1").unwrap(), backends)
        .with_handlers(HandlerRegistry::with_shell())
        .start()
        .await
        .unwrap();
    let mut events = s.subscribe();
    let odd = s
        .create_job(JobSpec::manual("odd", r"printf '\377 ✓ 🚀'"))
        .await
        .unwrap();
    let plain = s
        .create_job(JobSpec::manual("plain", "true"))
        .await
        .unwrap();
    let t1 = s.execute(&odd.job_id, None).await.unwrap();
    let t2 = s.execute(&plain.job_id, None).await.unwrap();
    let mut done = std::collections::HashMap::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while done.len() < 2 {
            if let Ok(Event::Finished(r)) = events.recv().await {
                done.insert(r.task_id.clone(), r);
            }
        }
    })
    .await
    .expect("both end within 30 s");
    assert_eq!(done[&t2].status, TaskStatus::Succeeded);
    let stored = s.task(&t1).await.unwrap().remove(0);
    assert_eq!(stored.status, TaskStatus::Succeeded, "{}", stored.error);
    assert_eq!(stored.output, "\u{fffd} ✓ 🚀");
    s.shutdown().await;
}
