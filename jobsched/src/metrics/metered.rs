//! [`MeteredDispatcher`]: any [`Dispatcher`] with its sends timed and its receipts and errors counted,
//! so every transport (Kafka, in-process) reports the same series.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::Metrics;
use crate::dispatch::{AckTag, Delivery, DispatchStats, Dispatcher, Inbox, OutputFeed};
use crate::error::Result;
use crate::model::{Control, ExecutorId, OutputChunk, Task, TaskResult};

/// A dispatcher that records into [`Metrics`] (`jobsched_dispatch_*`) and otherwise behaves exactly
/// like the one it wraps.
#[derive(Debug)]
pub struct MeteredDispatcher {
    inner: Arc<dyn Dispatcher>,
    metrics: Metrics,
}

impl MeteredDispatcher {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn Dispatcher>, metrics: Metrics) -> Arc<dyn Dispatcher> {
        Arc::new(MeteredDispatcher { inner, metrics })
    }

    async fn timed<T>(&self, op: &'static str, f: impl Future<Output = Result<T>>) -> Result<T> {
        let t0 = Instant::now();
        let r = f.await;
        self.metrics.dispatch_call(op, t0.elapsed(), r.is_ok());
        r
    }
}

struct MeteredInbox<T> {
    inner: Box<dyn Inbox<T>>,
    stream: &'static str,
    metrics: Metrics,
}

#[async_trait]
impl<T: Send + 'static> Inbox<T> for MeteredInbox<T> {
    async fn recv(&mut self, max: usize) -> Result<Vec<Delivery<T>>> {
        let r = self.inner.recv(max).await;
        match &r {
            Ok(v) => self.metrics.dispatch_received(self.stream, v.len(), true),
            Err(_) => self.metrics.dispatch_received(self.stream, 0, false),
        }
        r
    }

    async fn ack(&mut self, tags: &[AckTag]) -> Result<()> {
        let t0 = Instant::now();
        let r = self.inner.ack(tags).await;
        self.metrics.dispatch_call("ack", t0.elapsed(), r.is_ok());
        r
    }
}

impl MeteredDispatcher {
    fn inbox<T: Send + 'static>(
        &self,
        stream: &'static str,
        r: Result<Box<dyn Inbox<T>>>,
    ) -> Result<Box<dyn Inbox<T>>> {
        let inner = r?;
        Ok(Box::new(MeteredInbox {
            inner,
            stream,
            metrics: self.metrics.clone(),
        }))
    }
}

#[async_trait]
impl Dispatcher for MeteredDispatcher {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn send_tasks(&self, tasks: &[Task]) -> Result<()> {
        self.timed("send_tasks", self.inner.send_tasks(tasks)).await
    }

    async fn task_inbox(&self, executor: &ExecutorId) -> Result<Box<dyn Inbox<Task>>> {
        self.inbox("tasks", self.inner.task_inbox(executor).await)
    }

    async fn send_results(&self, results: &[TaskResult]) -> Result<()> {
        self.timed("send_results", self.inner.send_results(results))
            .await
    }

    async fn result_inbox(&self) -> Result<Box<dyn Inbox<TaskResult>>> {
        self.inbox("results", self.inner.result_inbox().await)
    }

    async fn send_control(&self, to: &ExecutorId, control: &Control) -> Result<()> {
        self.timed("send_control", self.inner.send_control(to, control))
            .await
    }

    async fn control_inbox(&self, executor: &ExecutorId) -> Result<Box<dyn Inbox<Control>>> {
        self.inbox("control", self.inner.control_inbox(executor).await)
    }

    async fn send_output(&self, chunks: &[OutputChunk]) -> Result<()> {
        self.timed("send_output", self.inner.send_output(chunks))
            .await
    }

    async fn output_feed(&self) -> Result<Box<dyn OutputFeed>> {
        self.inner.output_feed().await
    }

    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }

    fn stats(&self) -> DispatchStats {
        self.inner.stats()
    }
}
