//! Shutdown: take no more tasks, let running ones finish within the grace, stop the rest, report what
//! ended, deregister.

use std::time::Duration;

use tracing::info;

use super::runtime::Runtime;
use crate::model::CancelReason;

impl Runtime {
    /// Shutdown: take no more tasks, let running ones finish within the grace, stop the rest (reported
    /// `lost` so they run elsewhere), report, deregister.
    pub(super) async fn drain(mut self) {
        info!(
            running = self.running.len(),
            grace_secs = self.shutdown_grace.as_secs(),
            "executor shutting down"
        );
        let deadline = tokio::time::sleep(self.shutdown_grace);
        tokio::pin!(deadline);
        let mut stopping = false;
        while !self.join.is_empty() {
            tokio::select! {
                Some(done) = self.join.join_next() => self.finished(done),
                _ = &mut deadline, if !stopping => {
                    stopping = true;
                    for r in self.running.values() {
                        r.ctx.cancel(CancelReason::Shutdown);
                    }
                }
            }
        }
        for _ in 0..3 {
            self.flush_outbox().await;
            if self.outbox.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Tasks queued here but not started stay unacknowledged: the scheduler fails them over when this
        // executor's registration goes.
        let _ = self.registration.deregister().await;
        info!("executor stopped");
    }
}
