//! # jobsched-kafka
//!
//! jobsched's [`Dispatcher`](jobsched::dispatch::Dispatcher) on Kafka (rdkafka, bundled librdkafka): tasks
//! go to the executor the scheduler chose through that executor's topic, results come back through a
//! partitioned results topic, cancel and other control messages through each executor's control topic,
//! and running tasks' live output (best effort) through an output topic every scheduler reads from its end.
//! Messages are the JSON of the design's task and result messages (design §4.2.1, §4.2.2), field for field.
//!
//! ```no_run
//! # async fn run() -> jobsched::Result<()> {
//! use std::sync::Arc;
//! use jobsched_kafka::{ClusterKey, KafkaConfig, KafkaDispatcher};
//!
//! let key = ClusterKey::from_file("/etc/jobsched/cluster.key".as_ref())?;
//! let config = KafkaConfig::new("127.0.0.1:9092").with_cluster_key(key);
//! let kafka = KafkaDispatcher::connect(config).await?;
//! let backends = jobsched::Backends { dispatcher: Arc::new(kafka), ..jobsched::Backends::in_memory() };
//! # Ok(()) }
//! ```
//!
//! Delivery is at-least-once (a consumer commits only what was acknowledged); duplicates are harmless by
//! design (results apply once per `(task_id, attempt)` in storage; executors drop attempts they have
//! seen and tasks addressed to an earlier registration). Records that are not JSON of the stream's
//! message are poison: logged with topic, partition and offset, counted
//! ([`DispatchStats::poison`](jobsched::dispatch::DispatchStats)), and skipped.
//!
//! Every record is signed (HMAC-SHA256 under the cluster key, in the `jobsched-mac` header; see
//! [`ClusterKey`]): unsigned, forged, moved, replayed or expired records are poison too, so whoever can
//! write to the topics but holds no key can neither run a command on an executor nor forge a result.

mod config;
mod dispatcher;
mod error;
mod inbox;
mod output;
mod sign;
mod topics;

pub use config::{KafkaConfig, is_secret_property};
pub use dispatcher::{KafkaDispatcher, TopicCreator};
pub use sign::{ClusterKey, HEADER as MAC_HEADER, Refused};
