//! In-process dispatch over shared queues, with the same at-least-once contract as a broker: messages wait
//! for their consumer, and unacknowledged ones are delivered again when an inbox is dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::{Notify, broadcast};

use super::{AckTag, Delivery, DispatchStats, Dispatcher, Inbox, OutputFeed};
use crate::error::{Error, Result};
use crate::model::{Control, ExecutorId, OutputChunk, Task, TaskResult};

/// Dispatch between tasks of one process. Cheap to clone (shared state).
#[derive(Clone, Debug, Default)]
pub struct ChannelDispatcher {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    tasks: Mutex<HashMap<ExecutorId, Arc<Queue<Task>>>>,
    controls: Mutex<HashMap<ExecutorId, Arc<Queue<Control>>>>,
    results: Arc<Queue<TaskResult>>,
    redelivered: Arc<AtomicU64>,
    output: Output,
}

/// Chunks this many behind the newest are skipped by a listener that lags.
const OUTPUT_BACKLOG: usize = 4096;

/// The live output stream: a broadcast channel.
#[derive(Debug)]
struct Output(broadcast::Sender<OutputChunk>);

impl Default for Output {
    fn default() -> Self {
        Output(broadcast::channel(OUTPUT_BACKLOG).0)
    }
}

/// A listener of the in-process output stream.
struct ChannelFeed(broadcast::Receiver<OutputChunk>);

#[async_trait]
impl OutputFeed for ChannelFeed {
    async fn recv(&mut self, max: usize) -> Result<Vec<OutputChunk>> {
        let first = loop {
            match self.0.recv().await {
                Ok(c) => break c,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return Ok(Vec::new()),
            }
        };
        let mut out = vec![first];
        while out.len() < max {
            match self.0.try_recv() {
                Ok(c) => out.push(c),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        Ok(out)
    }
}

#[derive(Debug)]
struct Queue<T> {
    state: Mutex<QueueState<T>>,
    notify: Notify,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(QueueState {
                pending: VecDeque::new(),
                next_seq: 0,
            }),
            notify: Notify::new(),
        }
    }
}

#[derive(Debug)]
struct QueueState<T> {
    pending: VecDeque<(u64, T)>,
    next_seq: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T> Queue<T> {
    fn push_all(&self, items: impl IntoIterator<Item = T>) {
        {
            let mut s = lock(&self.state);
            for item in items {
                let seq = s.next_seq;
                s.next_seq += 1;
                s.pending.push_back((seq, item));
            }
        }
        self.notify.notify_waiters();
    }
}

fn queue_for<T>(map: &Mutex<HashMap<ExecutorId, Arc<Queue<T>>>>, id: &ExecutorId) -> Arc<Queue<T>> {
    lock(map).entry(id.clone()).or_default().clone()
}

/// A consumer of one queue. Keeps what it delivered until acknowledged; on drop, puts the rest back at
/// the front of the queue for the next consumer.
struct QueueInbox<T> {
    queue: Arc<Queue<T>>,
    unacked: BTreeMap<u64, T>,
    redelivered: Arc<AtomicU64>,
}

#[async_trait]
impl<T: Clone + Send + Sync + 'static> Inbox<T> for QueueInbox<T> {
    async fn recv(&mut self, max: usize) -> Result<Vec<Delivery<T>>> {
        let max = max.max(1);
        loop {
            let notified = self.queue.notify.notified();
            tokio::pin!(notified);
            // Register before looking, so a push between the look and the wait is not missed.
            notified.as_mut().enable();
            {
                let mut s = lock(&self.queue.state);
                if !s.pending.is_empty() {
                    let n = max.min(s.pending.len());
                    let mut out = Vec::with_capacity(n);
                    for (seq, msg) in s.pending.drain(..n) {
                        self.unacked.insert(seq, msg.clone());
                        out.push(Delivery {
                            message: msg,
                            tag: AckTag { stream: 0, seq },
                        });
                    }
                    return Ok(out);
                }
            }
            notified.await;
        }
    }

    async fn ack(&mut self, tags: &[AckTag]) -> Result<()> {
        for t in tags {
            self.unacked.remove(&t.seq);
        }
        Ok(())
    }
}

impl<T> Drop for QueueInbox<T> {
    fn drop(&mut self) {
        if self.unacked.is_empty() {
            return;
        }
        let back = std::mem::take(&mut self.unacked);
        self.redelivered
            .fetch_add(back.len() as u64, Ordering::Relaxed);
        {
            let mut s = lock(&self.queue.state);
            // Oldest first, ahead of everything not yet delivered.
            for (seq, msg) in back.into_iter().rev() {
                s.pending.push_front((seq, msg));
            }
        }
        self.queue.notify.notify_waiters();
    }
}

impl ChannelDispatcher {
    /// A dispatcher with empty queues.
    pub fn new() -> Self {
        Self::default()
    }

    fn inbox<T>(&self, queue: Arc<Queue<T>>) -> QueueInbox<T> {
        QueueInbox {
            queue,
            unacked: BTreeMap::new(),
            redelivered: self.shared.redelivered.clone(),
        }
    }
}

#[async_trait]
impl Dispatcher for ChannelDispatcher {
    fn backend(&self) -> &'static str {
        "channel"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn send_tasks(&self, tasks: &[Task]) -> Result<()> {
        if let Some(t) = tasks.iter().find(|t| t.executor_id.is_none()) {
            return Err(Error::invalid(
                "executor_id",
                format!("task '{}' attempt {} has no executor", t.task_id, t.attempt),
            ));
        }
        // Group by executor so each queue is locked once per call.
        let mut by_exec: HashMap<&ExecutorId, Vec<Task>> = HashMap::new();
        for t in tasks {
            by_exec
                .entry(t.executor_id.as_ref().expect("checked above"))
                .or_default()
                .push(t.clone());
        }
        for (exec, batch) in by_exec {
            queue_for(&self.shared.tasks, exec).push_all(batch);
        }
        Ok(())
    }

    async fn task_inbox(&self, executor: &ExecutorId) -> Result<Box<dyn Inbox<Task>>> {
        Ok(Box::new(
            self.inbox(queue_for(&self.shared.tasks, executor)),
        ))
    }

    async fn send_results(&self, results: &[TaskResult]) -> Result<()> {
        self.shared.results.push_all(results.iter().cloned());
        Ok(())
    }

    async fn result_inbox(&self) -> Result<Box<dyn Inbox<TaskResult>>> {
        Ok(Box::new(self.inbox(self.shared.results.clone())))
    }

    async fn send_control(&self, to: &ExecutorId, control: &Control) -> Result<()> {
        queue_for(&self.shared.controls, to).push_all([control.clone()]);
        Ok(())
    }

    async fn control_inbox(&self, executor: &ExecutorId) -> Result<Box<dyn Inbox<Control>>> {
        Ok(Box::new(
            self.inbox(queue_for(&self.shared.controls, executor)),
        ))
    }

    async fn send_output(&self, chunks: &[OutputChunk]) -> Result<()> {
        for c in chunks {
            // No listener is fine: the chunk is dropped.
            let _ = self.shared.output.0.send(c.clone());
        }
        Ok(())
    }

    async fn output_feed(&self) -> Result<Box<dyn OutputFeed>> {
        Ok(Box::new(ChannelFeed(self.shared.output.0.subscribe())))
    }

    fn stats(&self) -> DispatchStats {
        DispatchStats {
            poison: 0,
            redelivered: self.shared.redelivered.load(Ordering::Relaxed),
        }
    }
}
