//! Where the brokers are, how topics are named and sized, and client settings.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::ClusterKey;

/// Configuration of a [`KafkaDispatcher`](crate::KafkaDispatcher).
///
/// ```
/// use jobsched_kafka::{ClusterKey, KafkaConfig};
/// let c = KafkaConfig::new("127.0.0.1:9092")
///     .with_prefix("prod")
///     .with_result_partitions(16)
///     .with_cluster_key(ClusterKey::generate())
///     .with_client_property("sasl.password", "hunter2");
/// assert_eq!(c.results_topic(), "prod.results");
/// assert!(c.validate().is_ok());
/// assert!(!format!("{c:?}").contains("hunter2"));
/// ```
///
/// Every record is signed with the cluster key ([`ClusterKey`]): [`KafkaDispatcher::connect`] refuses a
/// configuration without one. `Debug` shows neither the key nor client settings that hold secrets
/// (`sasl.password`, `ssl.key.password`, `ssl.key.pem`, …).
///
/// [`KafkaDispatcher::connect`]: crate::KafkaDispatcher::connect
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port,host:port`.
    pub brokers: String,
    /// Prefix of every topic and consumer group (several clusters can share brokers).
    #[serde(default = "defaults::prefix")]
    pub prefix: String,
    /// Partitions of the results topic (results are keyed by task, so a task's results stay in order).
    #[serde(default = "defaults::result_partitions")]
    pub result_partitions: i32,
    /// Replication factor of created topics.
    #[serde(default = "defaults::replication")]
    pub replication: i32,
    /// How long a send may wait for the brokers before it fails with a retryable error.
    #[serde(default = "defaults::send_timeout", with = "secs")]
    pub send_timeout: Duration,
    /// More librdkafka properties for every client (`security.protocol`, `sasl.*`, `ssl.*`, …).
    #[serde(default)]
    pub client: BTreeMap<String, String>,
    /// The key every record is signed and checked with (required; never read from a file of this
    /// configuration, only given by the program: [`ClusterKey::from_file`]).
    #[serde(skip)]
    pub cluster_key: Option<ClusterKey>,
    /// How old (or how far ahead, for clock differences) a task's or control message's signing time may
    /// be when an executor reads it; older ones are refused as replays. Results have no limit.
    #[serde(default = "defaults::message_max_age", with = "secs")]
    pub message_max_age: Duration,
}

/// True for a librdkafka property whose value is a secret.
pub fn is_secret_property(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password", "secret", "key.pem", "keystore", ".key", "token", "jaas",
    ]
    .iter()
    .any(|s| n.contains(s))
        && !n.ends_with(".location")
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client: BTreeMap<&str, &str> = self
            .client
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_property(k) {
                    "***"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("prefix", &self.prefix)
            .field("result_partitions", &self.result_partitions)
            .field("replication", &self.replication)
            .field("send_timeout", &self.send_timeout)
            .field("client", &client)
            .field("cluster_key", &self.cluster_key)
            .field("message_max_age", &self.message_max_age)
            .finish()
    }
}

mod defaults {
    use std::time::Duration;
    pub fn prefix() -> String {
        "jobsched".to_owned()
    }
    pub fn result_partitions() -> i32 {
        8
    }
    pub fn replication() -> i32 {
        1
    }
    pub fn send_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn message_max_age() -> Duration {
        Duration::from_secs(15 * 60)
    }
}

mod secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(f64::deserialize(d)?))
    }
}

impl KafkaConfig {
    /// The defaults for a broker list.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            prefix: defaults::prefix(),
            result_partitions: defaults::result_partitions(),
            replication: defaults::replication(),
            send_timeout: defaults::send_timeout(),
            client: BTreeMap::new(),
            cluster_key: None,
            message_max_age: defaults::message_max_age(),
        }
    }

    /// Sets the cluster key records are signed and checked with.
    pub fn with_cluster_key(mut self, key: ClusterKey) -> Self {
        self.cluster_key = Some(key);
        self
    }

    /// Sets the maximum age of tasks and control messages.
    pub fn with_message_max_age(mut self, d: Duration) -> Self {
        self.message_max_age = d;
        self
    }

    /// Sets the topic prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the partitions of the results topic.
    pub fn with_result_partitions(mut self, n: i32) -> Self {
        self.result_partitions = n;
        self
    }

    /// Sets a librdkafka property for every client.
    pub fn with_client_property(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.client.insert(key.into(), value.into());
        self
    }

    /// Sets how long a send may wait.
    pub fn with_send_timeout(mut self, d: Duration) -> Self {
        self.send_timeout = d;
        self
    }

    /// The results topic.
    pub fn results_topic(&self) -> String {
        format!("{}.results", self.prefix)
    }

    /// The live output topic (running tasks' output, best effort).
    pub fn output_topic(&self) -> String {
        format!("{}.output", self.prefix)
    }

    /// The tasks topic of one executor.
    pub fn tasks_topic(&self, executor: &str) -> String {
        format!("{}.tasks.{}", self.prefix, crate::topics::encode(executor))
    }

    /// The control topic of one executor.
    pub fn control_topic(&self, executor: &str) -> String {
        format!(
            "{}.control.{}",
            self.prefix,
            crate::topics::encode(executor)
        )
    }

    /// The consumer group of an executor's inboxes.
    pub fn executor_group(&self, executor: &str) -> String {
        format!(
            "{}-executor-{}",
            self.prefix,
            crate::topics::encode(executor)
        )
    }

    /// The consumer group of the schedulers' result inboxes.
    pub fn scheduler_group(&self) -> String {
        format!("{}-schedulers", self.prefix)
    }

    /// Checks the values, naming the field that is wrong.
    pub fn validate(&self) -> jobsched::Result<()> {
        use jobsched::Error;
        if self.brokers.trim().is_empty() {
            return Err(Error::invalid(
                "kafka.brokers",
                "must name at least one host:port",
            ));
        }
        if self.prefix.is_empty()
            || !self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(Error::invalid(
                "kafka.prefix",
                format!("'{}' must be letters, digits, '-', '_' or '.'", self.prefix),
            ));
        }
        if self.cluster_key.is_none() {
            return Err(Error::invalid(
                "kafka.cluster_key",
                "required: every task, cancel and result is signed with the cluster key, so that \
                 nobody who can write to the topics can run commands or forge results (make one with \
                 `jobsched keygen` and give every scheduler and executor the same file)",
            ));
        }
        if self.message_max_age < Duration::from_secs(10) {
            return Err(Error::invalid(
                "kafka.message_max_age",
                "must be at least 10 seconds (it also allows for clock differences between hosts)",
            ));
        }
        if !(1..=1000).contains(&self.result_partitions) {
            return Err(Error::invalid(
                "kafka.result_partitions",
                format!("must be between 1 and 1000, got {}", self.result_partitions),
            ));
        }
        Ok(())
    }
}
