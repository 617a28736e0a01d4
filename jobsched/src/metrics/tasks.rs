//! What the engine records when an attempt ends: outcomes, waits, durations, fire lag, retries and
//! failovers, overall and for the jobs that ask for their own series.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{Histograms, JobLabel, JobOutcome, Label, task_buckets};
use crate::model::{ExecutionRecord, Job, Trigger};

/// Most jobs with their own series in one process; opted-in jobs beyond it are counted only in the
/// overall series (and a warning says so once).
pub const MAX_JOB_SERIES: usize = 1000;

pub(crate) struct TaskMetrics {
    finished: Family<Label, Counter>,
    wait: Histogram,
    run: Histogram,
    lag: Histogram,
    retries: Counter,
    failovers: Counter,
    job_finished: Family<JobOutcome, Counter>,
    job_run: Histograms<JobLabel>,
    job_lag: Histograms<JobLabel>,
    jobs_with_series: Mutex<HashSet<String>>,
}

impl Default for TaskMetrics {
    fn default() -> Self {
        TaskMetrics {
            finished: Family::default(),
            wait: task_buckets(),
            run: task_buckets(),
            lag: task_buckets(),
            retries: Counter::default(),
            failovers: Counter::default(),
            job_finished: Family::default(),
            job_run: Family::new_with_constructor(task_buckets),
            job_lag: Family::new_with_constructor(task_buckets),
            jobs_with_series: Mutex::default(),
        }
    }
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6).max(0.0)
}

impl TaskMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "tasks_finished",
            "Attempts ended, by outcome (succeeded, failed, timed_out, lost, cancelled, skipped)",
            self.finished.clone(),
        );
        r.register(
            "task_wait_seconds",
            "From an attempt's due time to its start on an executor",
            self.wait.clone(),
        );
        r.register(
            "task_run_seconds",
            "From an attempt's start to its end",
            self.run.clone(),
        );
        r.register(
            "fire_lag_seconds",
            "From a scheduled fire's instant to its start on an executor (first attempts of schedule fires)",
            self.lag.clone(),
        );
        r.register(
            "task_retries",
            "Retries planned after a failed or timed-out attempt",
            self.retries.clone(),
        );
        r.register(
            "task_failovers",
            "New attempts planned after an attempt's executor was lost",
            self.failovers.clone(),
        );
        r.register(
            "job_tasks_finished",
            "Attempts ended, by job and outcome (only jobs with `metrics: true`)",
            self.job_finished.clone(),
        );
        r.register(
            "job_task_run_seconds",
            "From an attempt's start to its end, by job (only jobs with `metrics: true`)",
            self.job_run.clone(),
        );
        r.register(
            "job_fire_lag_seconds",
            "Fire lag by job (only jobs with `metrics: true`)",
            self.job_lag.clone(),
        );
    }

    /// Whether `job` gets its own series (it asked, and the cap leaves room).
    fn has_series(&self, job: &Job) -> bool {
        if !job.metrics {
            return false;
        }
        let mut set = self
            .jobs_with_series
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if set.contains(job.job_id.as_str()) {
            return true;
        }
        if set.len() >= MAX_JOB_SERIES {
            if set.len() == MAX_JOB_SERIES {
                tracing::warn!(job_id = %job.job_id, cap = MAX_JOB_SERIES,
                    "more jobs ask for their own metrics series than the cap; the rest are counted overall only");
                // A marker so the warning is given once.
                set.insert(String::new());
            }
            return false;
        }
        set.insert(job.job_id.as_str().to_owned());
        true
    }

    /// Records an attempt that ended as `rec` (its job as of the fire, if known) and whether a next
    /// attempt was planned.
    pub fn attempt_ended(&self, rec: &ExecutionRecord, job: Option<&Job>, next: Option<Trigger>) {
        let outcome = rec.status.as_str();
        self.finished.get_or_create(&[("outcome", outcome)]).inc();
        let own = job.filter(|j| self.has_series(j));
        if let Some(j) = own {
            self.job_finished
                .get_or_create(&[
                    ("job", j.job_id.as_str().to_owned()),
                    ("outcome", outcome.to_owned()),
                ])
                .inc();
        }
        if let Some(start) = rec.start_time {
            self.wait.observe(secs(rec.due_time, start));
            if let Some(end) = rec.end_time {
                let run = secs(start, end);
                self.run.observe(run);
                if let Some(j) = own {
                    self.job_run
                        .get_or_create(&[("job", j.job_id.as_str().to_owned())])
                        .observe(run);
                }
            }
            if rec.attempt == 1 && rec.trigger == Trigger::Schedule {
                let lag = secs(rec.scheduled_time, start);
                self.lag.observe(lag);
                if let Some(j) = own {
                    self.job_lag
                        .get_or_create(&[("job", j.job_id.as_str().to_owned())])
                        .observe(lag);
                }
            }
        }
        match next {
            Some(Trigger::Retry) => {
                self.retries.inc();
            }
            Some(Trigger::Failover) => {
                self.failovers.inc();
            }
            _ => {}
        }
    }
}
