//! The memory store's reads for lists and dashboards: job listing with its filters and orders, each
//! job's newest record, outcome counts by hour.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Inner, page};
use crate::model::{
    ExecutionRecord, Job, JobId, JobOrder, JobQuery, OutcomeHour, Page, TaskStatus, hour_of,
};

impl Inner {
    /// The status of the newest record of `job`, if it has any.
    fn last_status(&self, job: &JobId) -> Option<TaskStatus> {
        let id = self.by_job.get(job)?.last()?;
        self.records.get(*id).map(|r| r.status)
    }

    /// A page of live jobs matching `q`, in its order (ties by id).
    pub(super) fn list_jobs(&self, q: &JobQuery) -> Page<Job> {
        let mut matching: Vec<&Arc<Job>> = self
            .jobs
            .values()
            .filter_map(|(j, _)| j.as_ref())
            .filter(|j| {
                q.name.as_ref().is_none_or(|n| j.name.contains(n.as_str()))
                    && q.enabled.is_none_or(|e| j.enabled == e)
                    && q.owner.as_ref().is_none_or(|o| j.owner == *o)
                    && q.schedule_type.is_none_or(|t| j.schedule_type == t)
                    && (q.last_status.is_empty()
                        || self
                            .last_status(&j.job_id)
                            .is_some_and(|s| q.last_status.contains(&s)))
            })
            .collect();
        matching.sort_by(|a, b| {
            let by = match q.order {
                JobOrder::JobId => Ordering::Equal,
                JobOrder::Name => a.name.cmp(&b.name),
                JobOrder::UpdateTime => a.update_time.cmp(&b.update_time),
            }
            .then_with(|| a.job_id.cmp(&b.job_id));
            if q.descending { by.reverse() } else { by }
        });
        page(matching.into_iter().map(|j| (**j).clone()), q.page)
    }

    /// The newest record of each of `jobs` that has any.
    pub(super) fn latest(&self, jobs: &[JobId]) -> Vec<ExecutionRecord> {
        jobs.iter()
            .filter_map(|j| self.by_job.get(j)?.last())
            .filter_map(|id| self.records.get(*id).cloned())
            .collect()
    }

    /// Attempts that ended in `[from, to)`, counted by UTC hour and status.
    pub(super) fn outcome_hours(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<OutcomeHour> {
        let mut counts = BTreeMap::new();
        for r in self.records.iter() {
            if let Some(end) = r.end_time.filter(|e| *e >= from && *e < to) {
                counts
                    .entry((hour_of(end), r.status.code()))
                    .or_insert((r.status, 0u64))
                    .1 += 1;
            }
        }
        counts
            .into_iter()
            .map(|((hour, _), (status, count))| OutcomeHour {
                hour,
                status,
                count,
            })
            .collect()
    }
}
