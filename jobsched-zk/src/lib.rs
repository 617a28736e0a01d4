//! # jobsched-zk
//!
//! jobsched's [`Coordinator`](jobsched::coord::Coordinator) on ZooKeeper (the `zookeeper-client` crate):
//! executor and scheduler membership (service discovery), leader election and locks with fencing tokens,
//! and watched settings for the central configuration.
//!
//! ```no_run
//! # async fn run() -> jobsched::Result<()> {
//! use std::sync::Arc;
//! use jobsched_zk::{ZkConfig, ZkCoordinator};
//!
//! let zk = ZkCoordinator::connect(ZkConfig::parse("127.0.0.1:2181/jobsched")?).await?;
//! let backends = jobsched::Backends { coordinator: Arc::new(zk), ..jobsched::Backends::in_memory() };
//! # Ok(()) }
//! ```

mod config;
mod coordinator;
mod error;
mod follow;
mod kv;
mod members;
mod paths;
mod queue;
mod session;

pub use config::{ZkConfig, ZkDigest};
pub use coordinator::ZkCoordinator;
