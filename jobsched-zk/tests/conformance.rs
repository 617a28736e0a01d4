//! The core conformance suite against a real ZooKeeper server, each behaviour under its own root znode,
//! with digest credentials (every node guarded by the session's identity, as the daemons run).
//!
//! The server is `JOBSCHED_TEST_ZOOKEEPER` (`host:port`), by default the services script's
//! `127.0.0.1:2181`. If it cannot be reached, tests fail when `CI=true` and are skipped otherwise.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jobsched::coord::Coordinator;
use jobsched::testing::OpenCoordinator;
use jobsched_zk::{ZkConfig, ZkCoordinator};

struct Opener {
    config: ZkConfig,
}

impl Opener {
    async fn new() -> Option<Opener> {
        let hosts = std::env::var("JOBSCHED_TEST_ZOOKEEPER")
            .unwrap_or_else(|_| "127.0.0.1:2181".to_owned());
        let config = ZkConfig::parse(&hosts)
            .unwrap()
            .with_root(format!("/jobsched-test-{:016x}", fastrand::u64(..)))
            .with_session_timeout(Duration::from_secs(4))
            .with_digest(
                jobsched_zk::ZkDigest::parse("jobsched-test:conformance-password").unwrap(),
            );
        if let Err(e) = ZkCoordinator::connect(config.clone()).await {
            return jobsched_testkit::unreachable(format!(
                "ZooKeeper at {hosts} is unreachable ({e})"
            ));
        }
        Some(Opener { config })
    }
}

#[async_trait]
impl OpenCoordinator for Opener {
    async fn open(&self) -> Arc<dyn Coordinator> {
        Arc::new(ZkCoordinator::new(self.config.clone()))
    }
}

jobsched::conformance_tests!(coord, Opener::new().await);
