//! The purge of ended records: by the system's retention (jobs without their own), and by a job's own
//! retention in days and in runs.

use chrono::{DateTime, Utc};

use super::Inner;
use crate::model::JobId;

impl Inner {
    /// Whether job `job` keeps its history by its own `retention_days`.
    fn own_days(&self, job: &JobId) -> bool {
        self.jobs
            .get(job)
            .and_then(|(j, _)| j.as_ref())
            .is_some_and(|j| j.retention_days > 0)
    }

    /// See [`Storage::purge_executions`](crate::storage::Storage::purge_executions).
    pub(super) fn purge(&mut self, before: DateTime<Utc>, limit: usize) -> u64 {
        let victims: Vec<i64> = self
            .records
            .iter()
            .filter(|r| r.status.is_terminal() && r.end_time.is_some_and(|e| e < before))
            .filter(|r| !self.own_days(&r.job_id))
            .take(limit)
            .map(|r| r.id)
            .collect();
        self.remove_ids(&victims)
    }

    /// See [`Storage::purge_job_executions`](crate::storage::Storage::purge_job_executions).
    pub(super) fn purge_job(
        &mut self,
        job: &JobId,
        before: Option<DateTime<Utc>>,
        keep: u32,
        limit: usize,
    ) -> u64 {
        let Some(ids) = self.by_job.get(job) else {
            return 0;
        };
        // Newest first: the first `keep` ended ones stay whatever their age.
        let mut ended = 0usize;
        let mut victims = Vec::new();
        for id in ids.iter().rev() {
            let Some(r) = self.records.get(*id) else {
                continue;
            };
            if !r.status.is_terminal() {
                continue;
            }
            ended += 1;
            let too_many = keep > 0 && ended > keep as usize;
            let too_old = before.is_some_and(|b| r.end_time.is_some_and(|e| e < b));
            if too_many || too_old {
                victims.push(*id);
                if victims.len() >= limit {
                    break;
                }
            }
        }
        self.remove_ids(&victims)
    }

    fn remove_ids(&mut self, ids: &[i64]) -> u64 {
        for id in ids {
            let rec = self
                .records
                .get(*id)
                .cloned()
                .expect("listed by the caller");
            self.remove_record(*id, &rec);
        }
        ids.len() as u64
    }
}
