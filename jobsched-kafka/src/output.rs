//! The live output stream on Kafka: topic `<prefix>.output` (`result_partitions`, keyed by task, so a
//! task's chunks stay in order). Best effort on both sides: executors produce without waiting for the
//! broker on a producer of their own (a refused chunk never disturbs the task and result producer), and
//! each listener reads every partition from its end at the time it opened, commits nothing, and drops
//! chunks when its reader falls behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use jobsched::dispatch::OutputFeed;
use jobsched::{OutputChunk, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ClusterKey;
use crate::error::kafka;

/// How old a live output chunk may be (the feed reads from the end; older ones are replays).
const MAX_AGE: Duration = Duration::from_secs(600);

/// Chunks a listener holds before it drops new ones.
const BACKLOG: usize = 4096;

/// A producer for chunks: no idempotence, one acknowledgement, a short linger that batches the chunks
/// of many tasks.
pub(crate) fn producer(mut config: ClientConfig) -> Result<FutureProducer> {
    config
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "10000")
        .create()
        .map_err(|e| kafka(e, "creating the output producer"))
}

/// Queues chunks on `producer` without waiting for the broker; a full queue drops the chunk.
pub(crate) fn send(
    producer: &FutureProducer,
    key: &ClusterKey,
    topic: &str,
    chunks: &[OutputChunk],
) {
    for c in chunks {
        let payload = serde_json::to_vec(c).expect("chunks serialise");
        let headers = crate::sign::headers(key, topic, c.task_id.as_str().as_bytes(), &payload);
        let record = FutureRecord::to(topic)
            .key(c.task_id.as_str())
            .payload(&payload)
            .headers(headers);
        match producer.send_result(record) {
            // The delivery future is dropped: the record is still delivered, nobody waits for it.
            Ok(_) => {}
            Err((e, _)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                tracing::debug!(task_id = %c.task_id, "live output chunk dropped: the producer queue is full");
            }
            Err((e, _)) => {
                tracing::debug!(task_id = %c.task_id, error = %e, "live output chunk not sent");
            }
        }
    }
}

/// A listener of the output topic.
pub(crate) struct KafkaFeed {
    rx: mpsc::Receiver<OutputChunk>,
    reader: JoinHandle<()>,
}

impl Drop for KafkaFeed {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl KafkaFeed {
    /// Reads all `partitions` of `topic` from their ends with a consumer made from `config`.
    pub(crate) fn start(
        config: ClientConfig,
        topic: &str,
        partitions: i32,
        poison: Arc<AtomicU64>,
        key: ClusterKey,
    ) -> Result<KafkaFeed> {
        let consumer: StreamConsumer = config
            .clone()
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "latest")
            .set("fetch.wait.max.ms", "50")
            .create()
            .map_err(|e| kafka(e, "creating the output consumer"))?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::End)
                .map_err(|e| kafka(e, "assigning the output topic"))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| kafka(e, &format!("assigning {topic}")))?;
        let (tx, rx) = mpsc::channel(BACKLOG);
        let reader = tokio::spawn(async move {
            loop {
                let msg = match consumer.recv().await {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::debug!(error = %e, "reading live output from Kafka failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                let decoded = crate::sign::check(&key, &msg, Some(MAX_AGE))
                    .map_err(|r| r.to_string())
                    .and_then(|()| {
                        serde_json::from_slice::<OutputChunk>(msg.payload().unwrap_or_default())
                            .map_err(|e| e.to_string())
                    });
                match decoded {
                    Ok(c) => match tx.try_send(c) {
                        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    },
                    Err(why) => {
                        poison.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            topic = msg.topic(),
                            partition = msg.partition(),
                            offset = msg.offset(),
                            error = %why,
                            "poison record skipped: not a signed live output chunk"
                        );
                    }
                }
            }
        });
        Ok(KafkaFeed { rx, reader })
    }
}

#[async_trait]
impl OutputFeed for KafkaFeed {
    async fn recv(&mut self, max: usize) -> Result<Vec<OutputChunk>> {
        let Some(first) = self.rx.recv().await else {
            return Ok(Vec::new());
        };
        let mut out = vec![first];
        while out.len() < max {
            match self.rx.try_recv() {
                Ok(c) => out.push(c),
                Err(_) => break,
            }
        }
        Ok(out)
    }
}
