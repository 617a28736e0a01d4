//! Dispatch: how tasks reach executors and results come back.
//!
//! Three streams: tasks (to one chosen executor), results (from executors to the active scheduler) and
//! control messages (cancel, to one executor). Delivery is **at-least-once**: a message stays deliverable
//! until the consumer acknowledges it, so a consumer that dies before acknowledging gets it again (or its
//! successor does). Consumers make duplicates harmless: the scheduler applies a result once per
//! `(task_id, attempt)` (a conditional write in storage), and an executor never runs an attempt twice (it
//! acknowledges a task only after reporting it started, and drops copies of attempts it has seen).
//!
//! A fourth stream is best effort: the live output of running tasks ([`OutputChunk`]), sent by executors
//! and heard by every scheduler that listens ([`Dispatcher::output_feed`]). Nothing waits for it and
//! nothing depends on it: a chunk lost to a restart costs only the live view.

mod channel;

use std::fmt;

use async_trait::async_trait;

pub use channel::ChannelDispatcher;

use crate::error::Result;
use crate::model::{Control, ExecutorId, OutputChunk, Task, TaskResult};

/// Identifies a delivered message for acknowledgement. Opaque to consumers; backends define its meaning
/// (e.g. Kafka: partition and offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckTag {
    /// The sub-stream (partition) the message came from.
    pub stream: u32,
    /// Its position in that sub-stream.
    pub seq: u64,
}

/// A delivered message and its acknowledgement tag.
#[derive(Clone, Debug)]
pub struct Delivery<T> {
    /// The message.
    pub message: T,
    /// Pass it to [`Inbox::ack`] once the message is processed.
    pub tag: AckTag,
}

/// A consumer's view of one stream.
#[async_trait]
pub trait Inbox<T: Send>: Send {
    /// Waits for messages and returns between 1 and `max` of them, or an empty vector once the stream is
    /// closed for good. Cancel-safe: dropping the future loses no message. Malformed messages are never
    /// returned: the backend logs and counts them (see [`DispatchStats`]) and skips them.
    async fn recv(&mut self, max: usize) -> Result<Vec<Delivery<T>>>;

    /// Marks messages as processed, in any order. Messages not acknowledged when this inbox is dropped (or
    /// its process dies) are delivered again to the next consumer of the stream.
    async fn ack(&mut self, tags: &[AckTag]) -> Result<()>;
}

/// A listener of the live output stream: every chunk sent after it was opened, as far as it keeps up
/// (a listener that falls behind skips chunks rather than holding the senders back).
#[async_trait]
pub trait OutputFeed: Send {
    /// Waits for chunks and returns between 1 and `max` of them, or an empty vector once the stream is
    /// closed for good. Cancel-safe.
    async fn recv(&mut self, max: usize) -> Result<Vec<OutputChunk>>;
}

/// The feed of a dispatcher that carries no live output: nothing ever arrives.
#[derive(Debug, Default)]
pub struct SilentFeed;

#[async_trait]
impl OutputFeed for SilentFeed {
    async fn recv(&mut self, _max: usize) -> Result<Vec<OutputChunk>> {
        std::future::pending().await
    }
}

/// Counters a dispatcher keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Messages skipped because they could not be decoded (poison records).
    pub poison: u64,
    /// Messages delivered again after a consumer went away without acknowledging them.
    pub redelivered: u64,
}

/// Moves tasks to executors, results to the scheduler and control messages to executors.
#[async_trait]
pub trait Dispatcher: Send + Sync + fmt::Debug + 'static {
    /// A short name of the backend (`channel`, `kafka`) for messages.
    fn backend(&self) -> &'static str;

    /// Checks that the backend answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Queues each task for the executor named in its `executor_id` (tasks without one fail the call with
    /// `Invalid`, sending none). On `Ok` every task is durably queued for its executor: it reaches that
    /// executor, and no other, at least once, as long as the executor consumes its inbox. Order is kept per
    /// executor.
    async fn send_tasks(&self, tasks: &[Task]) -> Result<()>;

    /// The inbox of tasks for `executor`. One consumer per executor id at a time; a new inbox for the
    /// same id takes over what the previous one left unacknowledged.
    async fn task_inbox(&self, executor: &ExecutorId) -> Result<Box<dyn Inbox<Task>>>;

    /// Queues results for the scheduler. On `Ok` they are durably queued. Order is kept per task.
    async fn send_results(&self, results: &[TaskResult]) -> Result<()>;

    /// The inbox of results. Several inboxes share the stream (each result goes to one of them).
    async fn result_inbox(&self) -> Result<Box<dyn Inbox<TaskResult>>>;

    /// Queues a control message for one executor (same delivery as tasks).
    async fn send_control(&self, to: &ExecutorId, control: &Control) -> Result<()>;

    /// The inbox of control messages for `executor`.
    async fn control_inbox(&self, executor: &ExecutorId) -> Result<Box<dyn Inbox<Control>>>;

    /// Sends live output chunks to every listener, best effort: `Ok` does not promise delivery, and a
    /// backend may drop chunks under load. The default drops them.
    async fn send_output(&self, chunks: &[OutputChunk]) -> Result<()> {
        let _ = chunks;
        Ok(())
    }

    /// A new listener of the live output stream (every listener hears every chunk sent after it opened).
    /// The default never hears any.
    async fn output_feed(&self) -> Result<Box<dyn OutputFeed>> {
        Ok(Box::new(SilentFeed))
    }

    /// The largest message, serialised, this backend carries (Kafka: the producer's `message.max.bytes`
    /// less room for the record's key and framing). Executors cut a result's output to fit it; a task
    /// over it fails its send with `Invalid`. The default: no limit.
    fn max_message_bytes(&self) -> usize {
        usize::MAX
    }

    /// Counters of poison and redelivered messages.
    fn stats(&self) -> DispatchStats {
        DispatchStats::default()
    }
}
