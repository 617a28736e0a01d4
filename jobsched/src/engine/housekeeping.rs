//! Housekeeping on timers: executor liveness, the fire watermark, and starting the purge of old history
//! (`purge.rs`).

use chrono::TimeDelta;
use tokio::time::Instant;

use super::actor::Engine;
use crate::model::{ExecutorHeartbeat, ExecutorStatus};
use crate::storage::keys;

impl Engine {
    /// Writes executor liveness, the fire watermark, and purges old history, when due.
    pub async fn housekeeping(&mut self) {
        let now_i = Instant::now();
        if now_i >= self.ticks.heartbeat {
            self.ticks.heartbeat = now_i + self.sh.config.heartbeat_interval;
            let now = self.now();
            let beats: Vec<_> = self
                .execs
                .iter()
                .filter(|e| e.online)
                .map(|e| ExecutorHeartbeat {
                    executor_id: e.info.executor_id.clone(),
                    status: ExecutorStatus::Online,
                    at: now,
                    running: e.inflight,
                })
                .collect();
            if !beats.is_empty() {
                if let Err(e) = self.sh.storage.record_heartbeats(&beats).await {
                    self.backend_failed("recording executor heartbeats", e);
                    return;
                }
            }
        }
        if now_i >= self.ticks.watermark {
            self.ticks.watermark = now_i + self.sh.config.watermark_interval;
            self.write_watermark().await;
        }
        if now_i >= self.ticks.purge {
            self.ticks.purge = now_i + self.sh.config.purge_interval;
            self.start_purge();
        }
    }

    /// Records that every fire before the next pending one has been handled.
    pub async fn write_watermark(&mut self) {
        let mut mark = self.now();
        if let Some(next) = self.jobs.peek_time() {
            mark = mark.min(next - TimeDelta::milliseconds(1));
        }
        if let Some(floor) = self.writes.fire_floor() {
            mark = mark.min(floor - TimeDelta::milliseconds(1));
        }
        if let Some(synced) = self.jobs_synced_at {
            mark = mark.min(synced);
        }
        let value = mark.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if let Err(e) = self
            .sh
            .storage
            .put_value(keys::WATERMARK, &value, None, Some(&self.fence), &[])
            .await
        {
            self.backend_failed("writing the fire watermark", e);
        }
    }
}
