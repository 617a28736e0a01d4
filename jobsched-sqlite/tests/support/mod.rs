//! Test databases: a fresh SQLite file in a temporary directory per test, removed when the test ends.
#![allow(dead_code)] // Each test file uses a part.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use jobsched::storage::Storage;
use jobsched::testing::OpenStorage;
use jobsched_sqlite::SqliteConfig;

/// A directory of its own for one test.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new() -> TestDir {
        let path = std::env::temp_dir().join(format!("jobsched-sqlite-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&path).expect("create the test directory");
        TestDir { path }
    }

    /// The store's configuration for this directory.
    pub fn config(&self) -> SqliteConfig {
        SqliteConfig::in_dir(&self.path)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Opens stores on one database file: each `open` is a new store with its own connections (as another
/// process would have).
pub struct Opener {
    pub dir: TestDir,
}

impl Opener {
    pub async fn new() -> Opener {
        let dir = TestDir::new();
        dir.config()
            .connect()
            .await
            .expect("create the database")
            .close()
            .await;
        Opener { dir }
    }
}

#[async_trait]
impl OpenStorage for Opener {
    async fn open(&self) -> Arc<dyn Storage> {
        let config = self
            .dir
            .config()
            .with_migrate(false)
            .with_read_connections(2);
        Arc::new(config.connect().await.expect("open the store"))
    }
}
