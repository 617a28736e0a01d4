//! What the MySQL store does beyond the conformance suite, against the real server: bad input, output
//! capping, durability under SIGKILL, the schema and its migrations, the server's own limits.

mod support;

use std::sync::Arc;

use jobsched::storage::Storage;
use jobsched::testing::OpenStorage;
use jobsched_mysql::{MIGRATOR, MysqlConfig};
use support::{Opener, StoreDb, TestDb, test_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_capped_with_a_marker() {
    let Some(db) = test_db().await else {
        return;
    };
    let store = db
        .config()
        .with_max_output_bytes(4096)
        .connect()
        .await
        .unwrap();
    let opener = jobsched_sql::testing::OneStore(Arc::new(store));
    jobsched_sql::testing::output_is_capped_with_a_marker(&opener, 4096).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_text_is_verbatim_or_refused() {
    let Some(opener) = Opener::new().await else {
        return;
    };
    jobsched_sql::testing::odd_text_is_verbatim_or_refused(&opener).await;
    // MySQL's VARCHAR(255) refuses a longer name with a message naming the column.
    let s = opener.open().await;
    let mut job = jobsched::testing::sample_job("too-long");
    job.name = "n".repeat(256);
    let e = s.create_jobs(&[job]).await.unwrap_err();
    assert!(
        matches!(&e, jobsched::Error::Invalid { .. }) && e.to_string().contains("'name'"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_write() {
    let target = match std::env::var(jobsched_sql::testing::DURABILITY_CHILD) {
        Ok(url) => url,
        Err(_) => {
            let Some(db) = test_db().await else {
                return;
            };
            db.store().await.close().await;
            let url = db.url();
            // The database outlives this scope only as long as the test: keep the guard.
            return run_parent(db, url).await;
        }
    };
    child(target).await;
}

async fn open(url: String) -> Arc<dyn Storage> {
    let config = MysqlConfig::new(url)
        .with_migrate(false)
        .with_max_connections(4);
    Arc::new(config.connect().await.expect("open the store"))
}

async fn child(url: String) {
    jobsched_sql::testing::sigkill_mid_load(
        "sigkill_mid_load_loses_no_acknowledged_write",
        &url,
        0,
        open,
    )
    .await;
}

async fn run_parent(_db: TestDb, url: String) {
    jobsched_sql::testing::sigkill_mid_load(
        "sigkill_mid_load_loses_no_acknowledged_write",
        &url,
        1500,
        open,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_keep_the_seed_schema_and_its_rows() {
    let Some(db) = test_db().await else {
        return;
    };
    // A database made from the design document's DDL, with a row in each table, as a user of the seed
    // schema would have it.
    let mut conn = sqlx::MySqlPool::connect(&db.url()).await.unwrap();
    for stmt in include_str!("../migrations/0001_seed_tables.sql").split(';') {
        if stmt
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        {
            sqlx::query(sqlx::AssertSqlSafe(stmt.to_owned()))
                .execute(&conn)
                .await
                .unwrap();
        }
    }
    sqlx::query(
        "INSERT INTO jobs (job_id, name, command, type, cron_expression) \
         VALUES ('legacy', 'old job', 'echo old', 1, '0 0 * * * *')",
    )
    .execute(&conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO job_logs (job_id, executor_id, status, start_time, output) \
         VALUES ('legacy', 'e1', 1, '2026-01-01 00:00:00', 'done')",
    )
    .execute(&conn)
    .await
    .unwrap();
    conn.close().await;
    conn = sqlx::MySqlPool::connect(&db.url()).await.unwrap();
    let store = db.store().await;
    let job = store
        .get_job(&jobsched::JobId::new("legacy").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (job.name.as_str(), job.command.as_str()),
        ("old job", "echo old")
    );
    assert_eq!(job.cron_expression.as_deref(), Some("0 0 * * * *"));
    let history = store
        .list_executions(&jobsched::ExecutionQuery::default())
        .await
        .unwrap();
    assert_eq!(history.total, 1);
    assert_eq!(history.items[0].output, "done");
    // Running the migrations again changes nothing.
    store.migrate().await.unwrap();
    assert_eq!(
        MIGRATOR.iter().count() as i64,
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&conn)
            .await
            .unwrap()
    );
    // Every column and index of the seed is still there.
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE()",
    )
    .fetch_all(&conn)
    .await
    .unwrap();
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
        for c in cols.split(' ') {
            assert!(
                columns.iter().any(|(t, col)| t == table && col == c),
                "{table}.{c} is missing"
            );
        }
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE()",
    )
    .fetch_all(&conn)
    .await
    .unwrap();
    for i in [
        "idx_job_id",
        "idx_start_time",
        "idx_status",
        "uk_fire",
        "uk_task_attempt",
    ] {
        assert!(indexes.iter().any(|x| x == i), "index {i} is missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_queries_use_an_index() {
    let Some(db) = test_db().await else {
        return;
    };
    let store = db.store().await;
    let pool = store.pool();
    // Enough rows that a full scan would not be the optimizer's choice.
    let job = jobsched::testing::sample_job("explain");
    let records: Vec<_> = (0..2000)
        .map(|i| {
            jobsched::testing::sample_record(
                &job,
                jobsched::Trigger::Schedule,
                jobsched::testing::t0() + chrono::TimeDelta::seconds(i),
            )
        })
        .collect();
    store.insert_executions(&records, None).await.unwrap();
    sqlx::query("ANALYZE TABLE job_logs, jobs")
        .execute(pool)
        .await
        .unwrap();
    let (a, b) = (records[7].task_id.as_str(), records[8].task_id.as_str());
    for (what, sql) in [
        (
            "attempts of tasks",
            "SELECT * FROM job_logs WHERE task_id IN ('a', 'b') FOR UPDATE",
        ),
        (
            "one attempt",
            "SELECT * FROM job_logs WHERE task_id = 'a' AND attempt = 1",
        ),
        (
            "recorded fires",
            "SELECT task_id FROM job_logs WHERE (job_id = 'explain' AND fire_time = '2026-06-01 12:00:00') \
             OR (job_id = 'explain' AND fire_time = '2026-06-01 12:00:01')",
        ),
        (
            "history of a job",
            "SELECT * FROM job_logs WHERE job_id = 'x' ORDER BY id DESC LIMIT 50",
        ),
        (
            "active attempts",
            "SELECT * FROM job_logs WHERE status IN (0, 5, 6) AND id > 0 ORDER BY id LIMIT 500",
        ),
        (
            "purge",
            "SELECT id FROM job_logs WHERE status IN (1, 2) AND end_time < '2026-01-01' ORDER BY end_time LIMIT 100",
        ),
        (
            "job changes",
            "SELECT * FROM jobs WHERE revision > 5 ORDER BY revision LIMIT 100",
        ),
        (
            "jobs of an owner",
            "SELECT * FROM jobs WHERE deleted = 0 AND owner = 'x' ORDER BY job_id LIMIT 50",
        ),
    ] {
        // Real task ids: a lookup of an absent key is answered without any access path.
        let sql = sql
            .replace("'a'", &format!("'{a}'"))
            .replace("'b'", &format!("'{b}'"));
        let plan: Vec<(Option<String>, Option<String>)> =
            sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .map(|row: sqlx::mysql::MySqlRow| {
                    use sqlx::Row;
                    (row.try_get("type").ok(), row.try_get("key").ok().flatten())
                })
                .collect();
        for (access, key) in &plan {
            assert!(
                access.as_deref() != Some("ALL") && key.is_some(),
                "{what} scans the table: {plan:?}"
            );
        }
    }
}

/// A previous fencing-token holder frozen inside a fenced write (its transaction open and idle, the fence
/// row share-locked, a row of its own written) does not keep the next holder waiting for the server's
/// lock wait timeout: the next holder's first write ends the stale connection, whose transaction rolls
/// back, and goes on; the old token is refused from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_fence_holder_ends_a_frozen_holders_transaction() {
    use jobsched::storage::Fence;
    use sqlx::Connection;

    let Some(db) = test_db().await else {
        return;
    };
    let store = db.store().await;
    let fence = |token| Fence {
        scope: "scheduler".to_owned(),
        token,
    };
    store
        .put_value("k", "first", None, Some(&fence(1)), &[])
        .await
        .unwrap();
    let mut frozen = sqlx::MySqlConnection::connect(&db.url()).await.unwrap();
    for statement in [
        "BEGIN",
        "SELECT token FROM jobsched_fences WHERE scope = 'scheduler' LOCK IN SHARE MODE",
        "UPDATE jobsched_settings SET value = 'stale', version = version + 1 WHERE name = 'k'",
    ] {
        sqlx::raw_sql(statement).execute(&mut frozen).await.unwrap();
    }

    // Well under MariaDB's default lock wait timeout (50 s): the raise did not wait for it.
    let version = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        store.put_value("k", "second", None, Some(&fence(2)), &[]),
    )
    .await
    .expect("the new holder's write waited on the frozen transaction")
    .unwrap();
    assert_eq!(version, 2);

    let commit = sqlx::raw_sql("COMMIT").execute(&mut frozen).await;
    assert!(
        commit.is_err(),
        "the frozen connection was ended: {commit:?}"
    );
    let stored = store.get_value("k").await.unwrap().unwrap();
    assert_eq!((stored.value.as_str(), stored.version), ("second", 2));
    let e = store
        .put_value("k", "late", None, Some(&fence(1)), &[])
        .await
        .unwrap_err();
    assert!(matches!(e, jobsched::Error::Fenced { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_counts_stop_at_the_cap() {
    let Some(opener) = Opener::new().await else {
        return;
    };
    jobsched_sql::testing::history_counts_stop_at_the_cap(&opener).await;
}
