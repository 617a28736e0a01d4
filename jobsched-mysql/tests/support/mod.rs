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

pub use jobsched_testkit::mysql::TestDb;

/// A test database as the store sees it.
pub trait StoreDb {
    /// The store's configuration for this database.
    fn config(&self) -> MysqlConfig;
    /// A store on this database (migrated).
    async fn store(&self) -> MysqlStore;
}

impl StoreDb for TestDb {
    fn config(&self) -> MysqlConfig {
        MysqlConfig::new(self.url()).with_max_connections(8)
    }

    async fn store(&self) -> MysqlStore {
        self.config().connect().await.expect("open the store")
    }
}

/// A fresh database for one test, or `None` (after saying why) when the server is unreachable outside CI.
pub async fn test_db() -> Option<TestDb> {
    TestDb::create("jst").await
}

/// Opens stores on one test database: each `open` is a new store with its own pool (as another process
/// would have).
pub struct Opener {
    pub db: TestDb,
}

impl Opener {
    /// A fresh, migrated database, or `None` when the server is unreachable outside CI.
    pub async fn new() -> Option<Opener> {
        let db = test_db().await?;
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
