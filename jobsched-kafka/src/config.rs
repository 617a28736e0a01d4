//! Where the brokers are, how topics are named and sized, and client settings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Configuration of a [`KafkaDispatcher`](crate::KafkaDispatcher).
///
/// ```
/// use jobsched_kafka::KafkaConfig;
/// let c = KafkaConfig::new("127.0.0.1:9092").with_prefix("prod").with_result_partitions(16);
/// assert_eq!(c.results_topic(), "prod.results");
/// ```
#[derive(Clone, Debug, Deserialize)]
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
    /// More librdkafka properties for every client (`security.protocol`, `sasl.*`, …).
    #[serde(default)]
    pub client: BTreeMap<String, String>,
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
        }
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
        if !(1..=1000).contains(&self.result_partitions) {
            return Err(Error::invalid(
                "kafka.result_partitions",
                format!("must be between 1 and 1000, got {}", self.result_partitions),
            ));
        }
        Ok(())
    }
}
