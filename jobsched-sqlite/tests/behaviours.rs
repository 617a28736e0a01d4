//! What the SQLite store does beyond the conformance suite: bad input, output capping, durability under
//! SIGKILL, and everything surviving a reopen.

mod support;

use std::sync::Arc;

use jobsched::storage::{ExecutionUpdate, Expect, Storage};
use jobsched::testing::{OpenStorage, sample_job, sample_record, t0};
use jobsched::{ExecutionQuery, ExecutorId, ExecutorInfo, ExecutorRecord, TaskStatus, Trigger};
use jobsched_sqlite::SqliteConfig;
use support::{Opener, TestDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_capped_with_a_marker() {
    let dir = TestDir::new();
    let store = dir
        .config()
        .with_max_output_bytes(4096)
        .connect()
        .await
        .unwrap();
    jobsched_sql::testing::output_is_capped_with_a_marker(
        &jobsched_sql::testing::OneStore(Arc::new(store)),
        4096,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_text_is_verbatim_or_refused() {
    let opener = Opener::new().await;
    jobsched_sql::testing::odd_text_is_verbatim_or_refused(&opener).await;
    // SQLite has no column widths: a long name is kept whole.
    let s = opener.open().await;
    let mut job = sample_job("long-name");
    job.name = "n".repeat(10_000);
    s.create_jobs(std::slice::from_ref(&job)).await.unwrap();
    assert_eq!(s.get_job(&job.job_id).await.unwrap().name, job.name);
}

async fn open(path: String) -> Arc<dyn Storage> {
    Arc::new(
        SqliteConfig::new(path)
            .with_migrate(false)
            .connect()
            .await
            .expect("open the store"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_write() {
    const NAME: &str = "sigkill_mid_load_loses_no_acknowledged_write";
    if let Ok(path) = std::env::var(jobsched_sql::testing::DURABILITY_CHILD) {
        return jobsched_sql::testing::sigkill_mid_load(NAME, &path, 0, open).await;
    }
    let dir = TestDir::new();
    let config = dir.config();
    config.clone().connect().await.unwrap().close().await;
    let path = config.path.display().to_string();
    jobsched_sql::testing::sigkill_mid_load(NAME, &path, 1500, open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_history_executors_and_settings_survive_a_reopen() {
    let dir = TestDir::new();
    let store = dir.config().connect().await.unwrap();
    let job = sample_job("kept");
    store.create_jobs(std::slice::from_ref(&job)).await.unwrap();
    let rec = sample_record(&job, Trigger::Schedule, t0());
    store
        .insert_executions(std::slice::from_ref(&rec), None)
        .await
        .unwrap();
    let mut done = ExecutionUpdate::new(
        rec.task_id.clone(),
        1,
        Expect::Active,
        TaskStatus::Succeeded,
    );
    done.output = Some("hello\n".into());
    done.end_time = Some(t0());
    store.update_executions(&[done], None).await.unwrap();
    let info = ExecutorInfo {
        executor_id: ExecutorId::new("kept-exec").unwrap(),
        host: "h".into(),
        port: 1,
        capacity: 2,
        group: String::new(),
        labels: Default::default(),
        handlers: vec!["shell".into()],
        version: String::new(),
    };
    store
        .upsert_executor(&ExecutorRecord::from_info(&info, t0()))
        .await
        .unwrap();
    store
        .set_executor_enabled(&info.executor_id, false, &[])
        .await
        .unwrap();
    store.put_value("k", "v", None, None, &[]).await.unwrap();
    store.close().await;
    drop(store);

    let store = dir.config().connect().await.unwrap();
    assert_eq!(store.get_job(&job.job_id).await.unwrap().name, job.name);
    let history = store
        .list_executions(&ExecutionQuery {
            job_id: Some(job.job_id.clone()),
            ..ExecutionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(history.total, 1);
    assert_eq!(
        (history.items[0].status, history.items[0].output.as_str()),
        (TaskStatus::Succeeded, "hello\n")
    );
    assert!(!store.get_executor(&info.executor_id).await.unwrap().enabled);
    assert_eq!(store.get_value("k").await.unwrap().unwrap().value, "v");
    // The fire stays recorded: firing it again after the restart is refused.
    let again = sample_record(&job, Trigger::Misfire, t0());
    assert!(matches!(
        store.insert_executions(&[again], None).await.unwrap()[0],
        jobsched::storage::InsertOutcome::AlreadyFired { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_wal_strict_and_has_the_seed_columns() {
    let dir = TestDir::new();
    let store = dir.config().connect().await.unwrap();
    let pool = store.pool();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(fk, 1);
    for (table, cols) in [
        (
            "jobs",
            "job_id name command type priority cron_expression timeout retry_count retry_interval create_time update_time",
        ),
        (
            "job_logs",
            "id job_id executor_id status start_time end_time output error",
        ),
        (
            "executors",
            "executor_id host port status last_heartbeat_time register_time",
        ),
    ] {
        let have: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        for c in cols.split(' ') {
            assert!(have.iter().any(|h| h == c), "{table}.{c} is missing");
        }
    }
    // STRICT: a value of the wrong type is refused, not stored.
    let e = sqlx::query("INSERT INTO jobsched_counters (name, value) VALUES ('x', 'not a number')")
        .execute(pool)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot store TEXT value in INTEGER column"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_counts_stop_at_the_cap() {
    jobsched_sql::testing::history_counts_stop_at_the_cap(&Opener::new().await).await;
}
