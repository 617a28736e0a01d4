//! [`KafkaDispatcher`]: the [`Dispatcher`] trait on Kafka.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jobsched::dispatch::{DispatchStats, Dispatcher, Inbox};
use jobsched::{Control, Error, ExecutorId, Result, Task, TaskResult};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::KafkaConfig;
use crate::error::{BACKEND, kafka};
use crate::inbox::{self, InboxConsumer, KafkaInbox};

/// Creates a topic with a partition count. The default uses the admin API; librdkafka's mock cluster
/// has none, so its tests pass their own.
pub type TopicCreator =
    Arc<dyn Fn(String, i32) -> Pin<Box<dyn Future<Output = Result<()>> + Send>> + Send + Sync>;

/// jobsched's [`Dispatcher`] on Kafka.
///
/// | stream | topic | key | consumer |
/// |---|---|---|---|
/// | tasks for executor X | `<prefix>.tasks.<X>` (1 partition) | X | X's inbox, group `<prefix>-executor-<X>`, assigned (no rebalance) |
/// | control for X | `<prefix>.control.<X>` (1 partition) | X | the same |
/// | results | `<prefix>.results` (`result_partitions`) | task id | the active scheduler, every partition assigned, offsets committed in group `<prefix>-schedulers` |
/// | live output (best effort) | `<prefix>.output` (`result_partitions`) | task id | every scheduler, every partition assigned from its end, nothing committed |
///
/// Routing is by topic: a task reaches the executor the scheduler chose and no other. Order is kept per
/// executor (one partition, idempotent producer) and per task for results (keyed by task). Priority is
/// kept upstream: the scheduler sends a task only when its executor has a free slot (plus
/// `executor_prefetch`), so an executor's topic never holds a queue for Kafka's FIFO to reorder.
/// Delivery is at-least-once: a consumer commits a record's offset only after it was acknowledged, and
/// the offsets committed are those below the first unacknowledged record.
#[derive(Clone)]
pub struct KafkaDispatcher {
    config: Arc<KafkaConfig>,
    /// Replaced when it fails fatally (an idempotent producer's sequence broke at the broker): a new one
    /// gets a new producer id and sends on.
    producer: Arc<Mutex<(u64, FutureProducer)>>,
    creator: TopicCreator,
    known_topics: Arc<Mutex<HashSet<String>>>,
    poison: Arc<AtomicU64>,
    /// The live output producer, made on the first chunk (a scheduler never sends any).
    output: Arc<std::sync::OnceLock<FutureProducer>>,
}

impl fmt::Debug for KafkaDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaDispatcher")
            .field("brokers", &self.config.brokers)
            .field("prefix", &self.config.prefix)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// librdkafka settings every client starts from (the configuration's own properties override them).
/// librdkafka backs off reconnecting up to 10 s by default: after a broker outage a client could wait
/// that long once the broker is back. A scheduler's clients are few, so a 1 s ceiling costs nothing.
const CLIENT_DEFAULTS: [(&str, &str); 2] = [
    ("reconnect.backoff.max.ms", "1000"),
    ("retry.backoff.max.ms", "1000"),
];

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room kept beside a payload for its key (an id) and the record's framing.
const RECORD_OVERHEAD: usize = 1_024;

/// The largest payload a producer with `config` sends: its `message.max.bytes` (client setting or
/// librdkafka's default) less the room a record's key and framing take.
fn max_message_bytes(config: &KafkaConfig) -> usize {
    config
        .client
        .get("message.max.bytes")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
        .saturating_sub(RECORD_OVERHEAD)
}

fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers);
    for (k, v) in CLIENT_DEFAULTS {
        c.set(k, v);
    }
    for (k, v) in &config.client {
        c.set(k, v);
    }
    c
}

/// The admin API's topic creation (an existing topic is fine).
fn admin_creator(config: &KafkaConfig) -> Result<TopicCreator> {
    let admin: AdminClient<DefaultClientContext> = client_config(config)
        .create()
        .map_err(|e| kafka(e, "creating the admin client"))?;
    let admin = Arc::new(admin);
    let replication = config.replication;
    let timeout = config.send_timeout;
    Ok(Arc::new(move |topic: String, partitions: i32| {
        let admin = admin.clone();
        Box::pin(async move {
            let opts = AdminOptions::new().operation_timeout(Some(timeout));
            let new = NewTopic::new(&topic, partitions, TopicReplication::Fixed(replication));
            let results = admin
                .create_topics([&new], &opts)
                .await
                .map_err(|e| kafka(e, &format!("creating topic {topic}")))?;
            for r in results {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((t, code)) => {
                        return Err(Error::unavailable(
                            BACKEND,
                            format!("creating topic {t}: {code}"),
                        ));
                    }
                }
            }
            Ok(())
        })
    }))
}

fn new_producer(config: &KafkaConfig) -> Result<FutureProducer> {
    client_config(config)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set(
            "message.timeout.ms",
            config.send_timeout.as_millis().to_string(),
        )
        .create()
        .map_err(|e| kafka(e, "creating the producer"))
}

impl KafkaDispatcher {
    /// The current producer and its generation.
    fn producer(&self) -> (u64, FutureProducer) {
        lock(&self.producer).clone()
    }

    /// Replaces producer generation `generation` after a failed send: later sends use a new producer
    /// with a new producer id. An idempotent producer whose sends failed (refused by a restarted broker
    /// that lost its producer state, or timed out with messages in flight) may never send again; a new
    /// one always starts clean. The old one is dropped off the runtime (its destruction blocks).
    fn renew(&self, generation: u64, why: &Error) {
        let mut slot = lock(&self.producer);
        if slot.0 != generation {
            return;
        }
        match new_producer(&self.config) {
            Ok(p) => {
                tracing::warn!(error = %why, "sending to Kafka failed; the producer is replaced by a new one");
                let old = std::mem::replace(&mut *slot, (generation + 1, p));
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn_blocking(move || drop(old));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "replacing the failed Kafka producer failed; will try again")
            }
        }
    }

    /// Connects: creates the producer and the results topic, and checks that the brokers answer (a clear
    /// `Unavailable` naming them if not).
    pub async fn connect(config: KafkaConfig) -> Result<Self> {
        let creator = admin_creator(&config)?;
        Self::connect_with(config, creator).await
    }

    /// [`KafkaDispatcher::connect`] with another way to create topics.
    pub async fn connect_with(config: KafkaConfig, creator: TopicCreator) -> Result<Self> {
        config.validate()?;
        let producer = new_producer(&config)?;
        let d = KafkaDispatcher {
            config: Arc::new(config),
            producer: Arc::new(Mutex::new((1, producer))),
            creator,
            known_topics: Arc::default(),
            poison: Arc::default(),
            output: Arc::default(),
        };
        d.ping().await?;
        d.ensure_topic(&d.config.results_topic(), d.config.result_partitions)
            .await?;
        tracing::info!(brokers = %d.config.brokers, prefix = %d.config.prefix, "Kafka dispatch ready");
        Ok(d)
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// The cluster key (checked present when connecting).
    fn key(&self) -> &crate::ClusterKey {
        self.config
            .cluster_key
            .as_ref()
            .expect("connect refuses a configuration without a cluster key")
    }

    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        if lock(&self.known_topics).contains(topic) {
            return Ok(());
        }
        (self.creator)(topic.to_owned(), partitions).await?;
        lock(&self.known_topics).insert(topic.to_owned());
        Ok(())
    }

    /// Produces records and waits until the brokers have every one of them.
    async fn produce<M: Serialize>(&self, topic: &str, records: &[(&str, &M)]) -> Result<()> {
        let (generation, producer) = self.producer();
        match self.produce_with(&producer, topic, records).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(topic, records = records.len(), error = %e, "sending to Kafka failed");
                // A message the brokers refuse (too big) says nothing about the producer's health.
                if e.is_retryable() {
                    self.renew(generation, &e);
                }
                Err(e)
            }
        }
    }

    /// Produces on `producer` and waits for every acknowledgement.
    async fn produce_with<M: Serialize>(
        &self,
        producer: &FutureProducer,
        topic: &str,
        records: &[(&str, &M)],
    ) -> Result<()> {
        // Every payload is checked before any is sent, so a refused batch sends nothing.
        let max = max_message_bytes(&self.config);
        let mut payloads = Vec::with_capacity(records.len());
        for (key, msg) in records {
            let payload = serde_json::to_vec(msg).expect("messages serialise");
            if payload.len() > max {
                return Err(Error::invalid(
                    "message",
                    format!(
                        "sending to {topic}: message {key} is {} bytes, over the {max} bytes a \
                         record may carry (message.max.bytes less framing)",
                        payload.len()
                    ),
                ));
            }
            payloads.push((*key, payload));
        }
        let mut pending = Vec::with_capacity(records.len());
        let signer = self.key();
        for (key, payload) in &payloads {
            let headers = crate::sign::headers(signer, topic, key.as_bytes(), payload);
            let mut record = FutureRecord::to(topic)
                .key(*key)
                .payload(payload)
                .headers(headers);
            loop {
                match producer.send_result(record) {
                    Ok(f) => {
                        pending.push(f);
                        break;
                    }
                    Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(kafka(e, &format!("sending to {topic}"))),
                }
            }
        }
        for f in pending {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(kafka(e, &format!("sending to {topic}"))),
                Err(_) => {
                    return Err(Error::unavailable(
                        BACKEND,
                        format!("sending to {topic}: the producer went away"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A consumer of every partition of `topic` in `group`, from the group's committed offsets, taking
    /// only records signed with the cluster key (and, with `max_age`, signed recently).
    async fn assigned_inbox<T: DeserializeOwned + Send + 'static>(
        &self,
        topic: &str,
        partitions: i32,
        group: &str,
        max_age: Option<Duration>,
    ) -> Result<Box<dyn Inbox<T>>> {
        self.ensure_topic(topic, partitions).await?;
        let (context, acks) = inbox::context();
        let consumer: InboxConsumer = client_config(&self.config)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .create_with_context(context)
            .map_err(|e| kafka(e, "creating a consumer"))?;
        let partitions = self.partitions(topic).await?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Stored)
                .map_err(|e| kafka(e, "assigning"))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| kafka(e, &format!("assigning {topic}")))?;
        Ok(Box::new(KafkaInbox::<T>::start(
            consumer,
            acks,
            topic.to_owned(),
            self.poison.clone(),
            (self.key().clone(), max_age),
        )))
    }

    /// The partition count of a topic (waiting briefly for a topic just created to show up).
    async fn partitions(&self, topic: &str) -> Result<i32> {
        let producer = self.producer().1;
        let topic = topic.to_owned();
        let timeout = self.config.send_timeout;
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let md = producer
                    .client()
                    .fetch_metadata(Some(&topic), Duration::from_secs(5))
                    .map_err(|e| kafka(e, &format!("reading the metadata of {topic}")))?;
                if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                    if t.error().is_none() && !t.partitions().is_empty() {
                        return Ok(t.partitions().len() as i32);
                    }
                }
                if std::time::Instant::now() > deadline {
                    return Err(Error::unavailable(
                        BACKEND,
                        format!("topic {topic} does not exist"),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .await
        .map_err(|e| Error::backend(BACKEND, format!("metadata task failed: {e}")))?
    }
}

#[async_trait]
impl Dispatcher for KafkaDispatcher {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        let producer = self.producer().1;
        let brokers = self.config.brokers.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|_| ())
                .map_err(|e| kafka(e, &format!("no Kafka broker at {brokers} answered")))
        })
        .await
        .map_err(|e| Error::backend(BACKEND, format!("ping task failed: {e}")))?
    }

    async fn send_tasks(&self, tasks: &[Task]) -> Result<()> {
        if let Some(t) = tasks.iter().find(|t| t.executor_id.is_none()) {
            return Err(Error::invalid(
                "executor_id",
                format!("task '{}' attempt {} has no executor", t.task_id, t.attempt),
            ));
        }
        // One produce call per executor topic; order within each is the order given.
        let mut by_exec: Vec<(&ExecutorId, Vec<&Task>)> = Vec::new();
        for t in tasks {
            let e = t.executor_id.as_ref().expect("checked above");
            match by_exec.iter_mut().find(|(x, _)| *x == e) {
                Some((_, v)) => v.push(t),
                None => by_exec.push((e, vec![t])),
            }
        }
        for (exec, batch) in by_exec {
            let topic = self.config.tasks_topic(exec.as_str());
            self.ensure_topic(&topic, 1).await?;
            let records: Vec<(&str, &Task)> = batch.iter().map(|t| (exec.as_str(), *t)).collect();
            self.produce(&topic, &records).await?;
        }
        Ok(())
    }

    async fn task_inbox(&self, executor: &ExecutorId) -> Result<Box<dyn Inbox<Task>>> {
        self.assigned_inbox(
            &self.config.tasks_topic(executor.as_str()),
            1,
            &self.config.executor_group(executor.as_str()),
            Some(self.config.message_max_age),
        )
        .await
    }

    async fn send_results(&self, results: &[TaskResult]) -> Result<()> {
        let topic = self.config.results_topic();
        let records: Vec<(&str, &TaskResult)> =
            results.iter().map(|r| (r.task_id.as_str(), r)).collect();
        self.produce(&topic, &records).await
    }

    async fn result_inbox(&self) -> Result<Box<dyn Inbox<TaskResult>>> {
        // Assigned, not subscribed: only the active scheduler reads results (leadership is fenced), so a
        // consumer group's membership would add nothing but a rebalance that waits out a dead leader's
        // group session before its successor gets the partitions.
        self.assigned_inbox(
            &self.config.results_topic(),
            self.config.result_partitions,
            &self.config.scheduler_group(),
            None,
        )
        .await
    }

    async fn send_control(&self, to: &ExecutorId, control: &Control) -> Result<()> {
        let topic = self.config.control_topic(to.as_str());
        self.ensure_topic(&topic, 1).await?;
        self.produce(&topic, &[(to.as_str(), control)]).await
    }

    async fn control_inbox(&self, executor: &ExecutorId) -> Result<Box<dyn Inbox<Control>>> {
        self.assigned_inbox(
            &self.config.control_topic(executor.as_str()),
            1,
            &format!("{}-control", self.config.executor_group(executor.as_str())),
            Some(self.config.message_max_age),
        )
        .await
    }

    async fn send_output(&self, chunks: &[jobsched::OutputChunk]) -> Result<()> {
        let topic = self.config.output_topic();
        self.ensure_topic(&topic, self.config.result_partitions)
            .await?;
        let producer = match self.output.get() {
            Some(p) => p,
            None => {
                let p = crate::output::producer(client_config(&self.config))?;
                self.output.get_or_init(|| p)
            }
        };
        crate::output::send(producer, self.key(), &topic, chunks);
        Ok(())
    }

    async fn output_feed(&self) -> Result<Box<dyn jobsched::dispatch::OutputFeed>> {
        let topic = self.config.output_topic();
        self.ensure_topic(&topic, self.config.result_partitions)
            .await?;
        let partitions = self.partitions(&topic).await?;
        let mut config = client_config(&self.config);
        config.set("group.id", format!("{}-output", self.config.prefix));
        Ok(Box::new(crate::output::KafkaFeed::start(
            config,
            &topic,
            partitions,
            self.poison.clone(),
            self.key().clone(),
        )?))
    }

    fn max_message_bytes(&self) -> usize {
        max_message_bytes(&self.config)
    }

    fn stats(&self) -> DispatchStats {
        DispatchStats {
            poison: self.poison.load(Ordering::Relaxed),
            redelivered: 0,
        }
    }
}
