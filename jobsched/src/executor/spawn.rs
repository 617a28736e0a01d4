//! One attempt's run: its context (cancellation, output capping, live output), the handler through the
//! runtime's layers (`handler::layers::run`), and its result.

use std::future::Future;

use tracing::{Instrument, debug, info_span};

use super::attempt::{fit_message, into_result};
use super::runtime::{Running, Runtime};
use crate::clock::secs;
use crate::handler::{LiveOutput, TaskContext, layers};
use crate::model::{Task, TaskStatus};

impl Runtime {
    /// Runs one attempt that was reported `running` at `start_time`. An attempt that finishes in its first
    /// poll has its result in the outbox when this returns; any other runs as a task of its own.
    pub(super) fn spawn(&mut self, task: Task, start_time: chrono::DateTime<chrono::Utc>) {
        let key = (task.task_id.clone(), task.attempt);
        let mut ctx = TaskContext::new(
            self.info.executor_id.clone(),
            self.sys.max_output_bytes as usize,
            secs(self.sys.kill_grace_secs),
        );
        let mut base = self.result(&task, TaskStatus::Running);
        base.start_time = start_time;
        let Some(handler) = self.handlers.get(&task.task_type).cloned() else {
            base.status = TaskStatus::Failed;
            base.exit_code = 127;
            base.end_time = Some(self.clock.now());
            base.error = format!(
                "no handler for type '{}' on executor '{}' (it has: {})",
                task.task_type,
                base.executor_id,
                self.handlers.names().join(", ")
            );
            self.outbox.push(base);
            return;
        };
        // Started only for a task that runs: its sender stops when the handler returns.
        if self.sys.live_output_chunk_bytes > 0 {
            ctx = ctx.with_live_output(LiveOutput::start(
                self.backends.dispatcher.clone(),
                task.task_id.clone(),
                task.attempt,
                std::time::Duration::from_millis(u64::from(self.sys.live_output_interval_ms)),
                self.sys.live_output_chunk_bytes as usize,
            ));
        }
        let clock = self.clock.clone();
        let max_message = self.backends.dispatcher.max_message_bytes();
        let span = info_span!("task", job_id = %task.job_id, task_id = %task.task_id, attempt = task.attempt,
            executor_id = %self.info.executor_id);
        let run_ctx = ctx.clone();
        let run_key = key.clone();
        let mut run = Box::pin(
            async move {
                let outcome = layers::run(handler.as_ref(), &run_ctx, &task).await;
                let mut result = into_result(outcome, &run_ctx, &task, base, &clock);
                fit_message(&mut result, max_message);
                run_ctx.end_output();
                debug!(status = %result.status, exit_code = result.exit_code, "task ended");
                (run_key, result)
            }
            .instrument(span),
        );
        // The first poll runs here, in the loop, with a waker that does nothing. Sound because:
        // * a future that returns `Ready` has finished: its result is taken at once;
        // * a future that returns `Pending` has registered its interest with the no-op waker only, so it
        //   is then spawned, and tokio polls it again at once with a real waker (a future must expect a
        //   poll at any time after `Pending`, and the spawned task's first poll registers the real waker);
        // * a panic in that poll is caught by the panic layer inside the future.
        // What it saves: a handler that finishes without waiting (the no-op benchmark handler, validation
        // failures, cached answers) skips the spawn — a task allocation, a trip through tokio's scheduler
        // and a `join_next` wake-up of this loop — and its result goes out in this turn's flush. Not
        // measured on its own; the W1 memory figures in BENCHMARKS.md are taken with it.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match run.as_mut().poll(&mut cx) {
            std::task::Poll::Ready((_, result)) => self.outbox.push(result),
            std::task::Poll::Pending => {
                self.running.insert(key, Running { ctx });
                self.state.set_running(self.running.len());
                self.join.spawn(run);
            }
        }
    }
}
