//! The purge of old history, in the background and one run at a time: the records past the system's
//! `history_retention_days` (jobs without their own), then each job with its own `retention_days` or
//! `retention_runs`. Every deletion is a batch of [`PURGE_BATCH`] rows in a transaction of its own, so
//! no lock is held long and fires and results go on between batches.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{info, warn};

use super::actor::Engine;
use crate::model::JobId;
use crate::storage::Storage;

/// Ended records deleted per storage call.
pub(crate) const PURGE_BATCH: usize = 1_000;

/// What one purge run deletes.
#[derive(Debug)]
pub(crate) struct PurgePlan {
    /// Records of jobs without their own retention that ended before this.
    pub before: Option<DateTime<Utc>>,
    /// Jobs with their own retention: the job, the end time before which its records go, and how many
    /// of its newest ended records stay (0: no limit by count).
    pub jobs: Vec<(JobId, Option<DateTime<Utc>>, u32)>,
}

impl PurgePlan {
    /// The plan at `now` for the system's `days` (0: forever) and the jobs' own `(job, days, runs)`.
    pub fn new(now: DateTime<Utc>, days: u32, jobs: Vec<(JobId, u32, u32)>) -> Self {
        let cutoff = |d: u32| (d > 0).then(|| now - TimeDelta::days(i64::from(d)));
        PurgePlan {
            before: cutoff(days),
            jobs: jobs
                .into_iter()
                .map(|(job, own_days, runs)| {
                    let days = if own_days > 0 { own_days } else { days };
                    (job, cutoff(days), runs)
                })
                .collect(),
        }
    }

    /// Runs the plan to the end; returns how many records were deleted.
    pub async fn run(self, storage: Arc<dyn Storage>) -> crate::Result<u64> {
        let mut total = 0;
        if let Some(before) = self.before {
            total += drain(|| storage.purge_executions(before, PURGE_BATCH)).await?;
        }
        for (job, before, keep) in self.jobs {
            if before.is_some() || keep > 0 {
                total +=
                    drain(|| storage.purge_job_executions(&job, before, keep, PURGE_BATCH)).await?;
            }
        }
        Ok(total)
    }
}

/// Calls `batch` until it deletes fewer than a full batch; the total.
async fn drain<F, Fut>(mut batch: F) -> crate::Result<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::Result<u64>>,
{
    let mut total = 0;
    loop {
        let n = batch().await?;
        total += n;
        if (n as usize) < PURGE_BATCH {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

impl Engine {
    /// Starts a purge run unless one is still going.
    pub(crate) fn start_purge(&mut self) {
        if self.purge.as_ref().is_some_and(|p| !p.is_finished()) {
            return;
        }
        let plan = PurgePlan::new(
            self.now(),
            self.sys.history_retention_days,
            self.jobs.own_retention(),
        );
        if plan.before.is_none() && plan.jobs.is_empty() {
            return;
        }
        let storage = self.sh.storage.clone();
        self.purge = Some(tokio::spawn(async move {
            let t0 = std::time::Instant::now();
            match plan.run(storage).await {
                Ok(0) => {}
                Ok(n) => info!(
                    purged = n,
                    elapsed_ms = t0.elapsed().as_millis() as u64,
                    "purged old execution records"
                ),
                Err(e) => {
                    warn!(error = %e, "purging old execution records failed; the next run goes on")
                }
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_takes_a_job_s_own_days_else_the_system_s() {
        let now: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        let id = |s: &str| JobId::new(s).unwrap();
        let plan = PurgePlan::new(now, 30, vec![(id("own"), 90, 0), (id("count"), 0, 5)]);
        assert_eq!(plan.before, Some(now - TimeDelta::days(30)));
        assert_eq!(
            plan.jobs[0],
            (id("own"), Some(now - TimeDelta::days(90)), 0)
        );
        assert_eq!(
            plan.jobs[1],
            (id("count"), Some(now - TimeDelta::days(30)), 5)
        );
        // Kept forever by the system: a job's count still applies, its age only if it has its own.
        let plan = PurgePlan::new(now, 0, vec![(id("own"), 7, 0), (id("count"), 0, 5)]);
        assert_eq!(plan.before, None);
        assert_eq!(plan.jobs[0].1, Some(now - TimeDelta::days(7)));
        assert_eq!(plan.jobs[1], (id("count"), None, 5));
    }
}
