//! A consumer behind the [`Inbox`] trait: a reader task decodes records into a channel (so `recv` is
//! cancel-safe), poison records are logged, counted and skipped, and offsets are committed only up to the
//! first record not yet acknowledged (at-least-once, acknowledgements in any order).

use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jobsched::dispatch::{AckTag, Delivery, Inbox};
use jobsched::{Error, Result};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ClusterKey;
use crate::error::{BACKEND, kafka};

/// Acknowledgement state of one partition.
#[derive(Debug, Default)]
pub(crate) struct PartitionAcks {
    /// Delivered, not yet acknowledged.
    outstanding: BTreeSet<i64>,
    /// One past the highest offset read.
    next: Option<i64>,
    /// The last committed position.
    committed: Option<i64>,
}

impl PartitionAcks {
    /// The position to commit: the first unacknowledged offset, or past everything read.
    fn position(&self) -> Option<i64> {
        self.outstanding.first().copied().or(self.next)
    }
}

pub(crate) type AckMap = Arc<Mutex<HashMap<i32, PartitionAcks>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Forgets the acknowledgement state of partitions taken away in a rebalance (their uncommitted records
/// go to the new owner).
pub(crate) struct InboxContext {
    acks: AckMap,
}

impl ClientContext for InboxContext {}

impl ConsumerContext for InboxContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut acks = lock(&self.acks);
        match rebalance {
            Rebalance::Revoke(tpl) => {
                for p in tpl.elements() {
                    acks.remove(&p.partition());
                }
            }
            Rebalance::Assign(tpl) => {
                for p in tpl.elements() {
                    acks.insert(p.partition(), PartitionAcks::default());
                }
                tracing::info!(partitions = tpl.count(), "consumer assigned partitions");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

pub(crate) type InboxConsumer = StreamConsumer<InboxContext>;

/// The context of a new consumer, sharing the inbox's acknowledgement state.
pub(crate) fn context() -> (InboxContext, AckMap) {
    let acks = AckMap::default();
    (InboxContext { acks: acks.clone() }, acks)
}

/// One stream's consumer.
pub(crate) struct KafkaInbox<T> {
    rx: mpsc::Receiver<Delivery<T>>,
    consumer: Arc<InboxConsumer>,
    acks: AckMap,
    topic: String,
    reader: JoinHandle<()>,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send + 'static> KafkaInbox<T> {
    /// Starts reading `consumer` (already subscribed or assigned to `topic`).
    pub fn start(
        consumer: InboxConsumer,
        acks: AckMap,
        topic: String,
        poison: Arc<AtomicU64>,
        verify: Verify,
    ) -> Self {
        let consumer = Arc::new(consumer);
        let (tx, rx) = mpsc::channel(4096);
        let reader = tokio::spawn(read(consumer.clone(), acks.clone(), tx, poison, verify));
        KafkaInbox {
            rx,
            consumer,
            acks,
            topic,
            reader,
            _t: PhantomData,
        }
    }
}

/// The key records must be signed with, and how old their signature may be.
pub(crate) type Verify = (ClusterKey, Option<Duration>);

/// A record's message, or why it is poison: unsigned, forged, expired, or not JSON of the stream.
fn decode<T: DeserializeOwned, M: Message>(
    msg: &M,
    (key, max_age): &Verify,
) -> std::result::Result<T, String> {
    crate::sign::check(key, msg, *max_age).map_err(|r| r.to_string())?;
    let payload = msg.payload().ok_or("no payload")?;
    serde_json::from_slice::<T>(payload).map_err(|e| e.to_string())
}

/// Reads records into the channel until the inbox goes away.
async fn read<T: DeserializeOwned>(
    consumer: Arc<InboxConsumer>,
    acks: AckMap,
    tx: mpsc::Sender<Delivery<T>>,
    poison: Arc<AtomicU64>,
    verify: Verify,
) {
    loop {
        let msg = match consumer.recv().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "reading from Kafka failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let (partition, offset) = (msg.partition(), msg.offset());
        let decoded = decode::<T, _>(&msg, &verify);
        let delivery = {
            let mut acks = lock(&acks);
            let state = acks.entry(partition).or_default();
            state.next = Some(state.next.map_or(offset + 1, |n| n.max(offset + 1)));
            match decoded {
                Ok(message) => {
                    state.outstanding.insert(offset);
                    Some(Delivery {
                        message,
                        tag: AckTag {
                            stream: partition as u32,
                            seq: offset as u64,
                        },
                    })
                }
                Err(why) => {
                    poison.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(topic = msg.topic(), partition, offset, error = %why,
                        "poison record skipped: not a signed message of this stream");
                    None
                }
            }
        };
        match delivery {
            Some(d) => {
                if tx.send(d).await.is_err() {
                    return;
                }
            }
            None => {
                // A poison record counts as handled: let the committed position pass it.
                let _ = commit_positions(&consumer, &acks, msg.topic(), CommitMode::Async);
            }
        }
    }
}

/// Commits the position of every partition that moved since its last commit.
fn commit_positions(
    consumer: &InboxConsumer,
    acks: &AckMap,
    topic: &str,
    mode: CommitMode,
) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    {
        let mut acks = lock(acks);
        for (partition, state) in acks.iter_mut() {
            if let Some(pos) = state.position() {
                if state.committed.is_none_or(|c| pos > c) {
                    tpl.add_partition_offset(topic, *partition, Offset::Offset(pos))
                        .map_err(|e| kafka(e, "committing"))?;
                    state.committed = Some(pos);
                }
            }
        }
    }
    if tpl.count() == 0 {
        return Ok(());
    }
    consumer
        .commit(&tpl, mode)
        .map_err(|e| kafka(e, "committing"))
}

#[async_trait]
impl<T: Send + 'static> Inbox<T> for KafkaInbox<T> {
    async fn recv(&mut self, max: usize) -> Result<Vec<Delivery<T>>> {
        let Some(first) = self.rx.recv().await else {
            return Ok(Vec::new());
        };
        let mut out = vec![first];
        while out.len() < max.max(1) {
            match self.rx.try_recv() {
                Ok(d) => out.push(d),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    async fn ack(&mut self, tags: &[AckTag]) -> Result<()> {
        {
            let mut acks = lock(&self.acks);
            for t in tags {
                if let Some(state) = acks.get_mut(&(t.stream as i32)) {
                    state.outstanding.remove(&(t.seq as i64));
                }
            }
        }
        // Synchronous: once `ack` returns, the next consumer of the stream starts after these records.
        let (consumer, acks, topic) =
            (self.consumer.clone(), self.acks.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            commit_positions(&consumer, &acks, &topic, CommitMode::Sync)
        })
        .await
        .map_err(|e| Error::backend(BACKEND, format!("commit task failed: {e}")))?
    }
}

impl<T> Drop for KafkaInbox<T> {
    fn drop(&mut self) {
        self.reader.abort();
        // Closing a consumer (leaving its group) blocks: do it off the runtime's threads.
        let consumer = self.consumer.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn_blocking(move || drop(consumer));
        }
    }
}
