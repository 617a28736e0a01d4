//! Test databases on the MariaDB/MySQL server of `scripts/services.sh`: one fresh database per test, so
//! tests run in parallel; dropped when the test ends.
//!
//! The server is `JOBSCHED_TEST_MYSQL` (`mysql://user:password@host:port`, no database), by default the
//! services script's `mysql://jobsched:jobsched@127.0.0.1:3306`. If it cannot be reached, tests fail when
//! `CI=true` and are skipped with a printed reason otherwise.
#![allow(dead_code)] // Each test file uses a part.

use std::sync::Arc;

use async_trait::async_trait;
use jobsched::storage::Storage;
use jobsched::testing::OpenStorage;
use jobsched_mysql::{MysqlConfig, MysqlStore};
use sqlx::Connection;

/// The server the tests use.
pub fn server_url() -> String {
    std::env::var("JOBSCHED_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://jobsched:jobsched@127.0.0.1:3306".to_owned())
}

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    /// Creates a fresh database, or returns `None` (after saying why) when the server is unreachable
    /// outside CI.
    pub async fn create() -> Option<TestDb> {
        let server = server_url();
        let mut conn = match sqlx::MySqlConnection::connect(&server).await {
            Ok(c) => c,
            Err(e) => {
                let msg = format!(
                    "MySQL test server {} is unreachable ({e}); start it with scripts/services.sh start",
                    jobsched_mysql::redact_url(&server)
                );
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{msg}");
                }
                eprintln!("skipped: {msg}");
                return None;
            }
        };
        let name = format!("jst_{:016x}", fastrand::u64(..));
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} CHARACTER SET utf8mb4"
        )))
        .execute(&mut conn)
        .await
        .expect("create the test database");
        Some(TestDb {
            url: format!("{server}/{name}"),
            name,
        })
    }

    /// The store's configuration for this database.
    pub fn config(&self) -> MysqlConfig {
        MysqlConfig::new(&self.url).with_max_connections(8)
    }

    /// A store on this database (migrated).
    pub async fn store(&self) -> MysqlStore {
        self.config().connect().await.expect("open the store")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (server_url(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = sqlx::MySqlConnection::connect(&server).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name}"
                    )))
                    .execute(&mut c)
                    .await;
                }
            })
        })
        .join();
    }
}

/// Opens stores on one test database: each `open` is a new store with its own pool (as another process
/// would have).
pub struct Opener {
    pub db: TestDb,
}

impl Opener {
    /// A fresh, migrated database, or `None` when the server is unreachable outside CI.
    pub async fn new() -> Option<Opener> {
        let db = TestDb::create().await?;
        db.store().await.close().await;
        Some(Opener { db })
    }
}

#[async_trait]
impl OpenStorage for Opener {
    async fn open(&self) -> Arc<dyn Storage> {
        let config = self.db.config().with_migrate(false).with_max_connections(4);
        Arc::new(config.connect().await.expect("open the store"))
    }
}
