//! Registration with the coordinator, and what happens when the session ends: everything held is
//! stopped and forgotten (the scheduler fails it over) and the executor registers again with a new epoch.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ExecutorBackends;
use super::runtime::Runtime;
use crate::coord::{CoordinatorExt, Registration};
use crate::error::{Error, Result};
use crate::model::{CancelReason, ExecutorInfo};

/// Registers `info`, waiting while a previous session of the same executor has not expired (or the
/// coordinator is unreachable), until `shutdown`.
pub(super) async fn register(
    backends: &ExecutorBackends,
    info: &ExecutorInfo,
    shutdown: Option<&CancellationToken>,
) -> Result<Box<dyn Registration>> {
    let mut waited = false;
    loop {
        match backends.coordinator.register_executor(info).await {
            Ok(r) => return Ok(r),
            Err(e) if e.is_retryable() || matches!(e, Error::AlreadyExists { .. }) => {
                if !waited {
                    info!(executor_id = %info.executor_id,
                        "waiting to register: a previous session of this executor has not expired yet, or the coordinator is unreachable");
                    waited = true;
                }
                let pause = tokio::time::sleep(Duration::from_millis(500));
                match shutdown {
                    Some(s) => tokio::select! {
                        _ = s.cancelled() => return Err(Error::Closed { component: "executor" }),
                        _ = pause => {}
                    },
                    None => pause.await,
                }
            }
            Err(e) => return Err(e),
        }
    }
}

impl Runtime {
    /// The session ended: everything this executor holds now belongs to the scheduler's failover. Stop it
    /// all, forget the queue, and register again with a new epoch.
    pub(super) async fn session_lost(&mut self) {
        warn!(
            epoch = self.epoch,
            running = self.running.len(),
            queued = self.queue.len(),
            "coordination session lost: stopping all tasks and registering again"
        );
        for r in self.running.values() {
            r.ctx.cancel(CancelReason::Shutdown);
        }
        while let Some(done) = self.join.join_next().await {
            if let Ok((key, _)) = done {
                self.running.remove(&key);
            }
        }
        self.state.set_running(0);
        let tags = self.queue.clear();
        let _ = self.tasks.ack(&tags).await;
        // Results that finished before the session ended are still sent: they may well apply (the writes
        // are conditional). Those of the tasks stopped just now were not collected.
        match register(&self.backends, &self.info, Some(&self.shutdown)).await {
            Ok(reg) => {
                self.epoch = reg.epoch();
                self.lost = reg.lost();
                self.registration = reg;
                self.state.set_epoch(self.epoch);
                info!(epoch = self.epoch, "registered again");
            }
            Err(e) => {
                // Shutting down, or a permanent error: try again after a pause unless shutting down.
                warn!(error = %e, "registering again failed");
                let retry = CancellationToken::new();
                retry.cancel();
                self.lost = retry;
                self.backoff();
            }
        }
    }
}
