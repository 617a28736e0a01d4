//! The execution record: one attempt of one task (a `job_logs` row).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ExecutorId, JobId, TaskId};
use super::job::{Job, Params};
use super::status::TaskStatus;
use super::task::{Task, TaskResult, Trigger};

/// One attempt of one task: the design's `job_logs` columns (`id`, `job_id`, `executor_id`, `status`,
/// `start_time`, `end_time`, `output`, `error`) plus what jobsched needs to recover and explain it: the task
/// and attempt, the fire time, the exit code, and a snapshot of the task as fired (so a job changed after the
/// fire does not change what this attempt runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionRecord {
    /// Row id assigned by the store (0 before it is stored); grows with insertion order.
    pub id: i64,
    /// The task (shared by its attempts).
    pub task_id: TaskId,
    /// Which attempt (1-based).
    pub attempt: u32,
    /// The job.
    pub job_id: JobId,
    /// The executor it was given to, once dispatched.
    pub executor_id: Option<ExecutorId>,
    /// That executor's registration epoch at dispatch.
    #[serde(default)]
    pub executor_epoch: u64,
    /// Where the attempt is.
    pub status: TaskStatus,
    /// Why the attempt exists.
    pub trigger: Trigger,
    /// The fire time of the task.
    pub scheduled_time: DateTime<Utc>,
    /// Earliest time the attempt may start (the fire time, or when its retry is due).
    pub due_time: DateTime<Utc>,
    /// When the record was created.
    pub create_time: DateTime<Utc>,
    /// When it started on the executor.
    pub start_time: Option<DateTime<Utc>>,
    /// When it ended.
    pub end_time: Option<DateTime<Utc>>,
    /// Captured standard output.
    pub output: String,
    /// Captured standard error and the failure reason.
    pub error: String,
    /// Exit code, once ended.
    pub exit_code: Option<i32>,
    /// The command as fired.
    pub command: String,
    /// The handler type as fired.
    #[serde(rename = "type")]
    pub task_type: String,
    /// The parameters as fired.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Params,
    /// Timeout in seconds as fired.
    pub timeout: u32,
    /// Retries allowed as fired.
    pub retry_count: u32,
    /// Retry interval as fired.
    pub retry_interval: u32,
    /// Priority as fired.
    pub priority: i32,
}

impl ExecutionRecord {
    /// The first attempt of a new task of `job`, fired for `scheduled_time`, created at `now`, queued.
    pub fn first_attempt(
        job: &Job,
        task_id: TaskId,
        trigger: Trigger,
        scheduled_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        ExecutionRecord {
            id: 0,
            task_id,
            attempt: 1,
            job_id: job.job_id.clone(),
            executor_id: None,
            executor_epoch: 0,
            status: TaskStatus::Queued,
            trigger,
            scheduled_time,
            due_time: scheduled_time.max(now),
            create_time: now,
            start_time: None,
            end_time: None,
            output: String::new(),
            error: String::new(),
            exit_code: None,
            command: job.command.clone(),
            task_type: job.job_type.clone(),
            params: job.params.clone(),
            timeout: job.timeout,
            retry_count: job.retry_count,
            retry_interval: job.retry_interval,
            priority: job.priority,
        }
    }

    /// The next attempt of the same task, queued until `due`.
    pub fn next_attempt(&self, trigger: Trigger, due: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        ExecutionRecord {
            id: 0,
            attempt: self.attempt + 1,
            executor_id: None,
            executor_epoch: 0,
            status: TaskStatus::Queued,
            trigger,
            due_time: due,
            create_time: now,
            start_time: None,
            end_time: None,
            output: String::new(),
            error: String::new(),
            exit_code: None,
            ..self.clone()
        }
    }

    /// The `(job_id, scheduled_time)` key that a store records exactly once, for scheduled fires (first
    /// attempts of `schedule` and `misfire` triggers). `None` for manual runs and later attempts.
    pub fn fire_key(&self) -> Option<(&JobId, DateTime<Utc>)> {
        (self.attempt == 1 && self.trigger.is_scheduled_fire())
            .then_some((&self.job_id, self.scheduled_time))
    }

    /// The task message for this attempt.
    pub fn to_task(&self) -> Task {
        Task {
            task_id: self.task_id.clone(),
            job_id: self.job_id.clone(),
            command: self.command.clone(),
            timeout: self.timeout,
            retry_count: self.retry_count,
            retry_interval: self.retry_interval,
            priority: self.priority,
            create_time: self.create_time,
            attempt: self.attempt,
            scheduled_time: self.scheduled_time,
            task_type: self.task_type.clone(),
            params: self.params.clone(),
            trigger: self.trigger,
            executor_id: self.executor_id.clone(),
            executor_epoch: self.executor_epoch,
        }
    }

    /// Copies a result's fields onto this record (as a store does when it applies the result).
    pub fn apply_result(&mut self, r: &TaskResult) {
        self.status = r.status;
        self.executor_id = Some(r.executor_id.clone());
        self.start_time = Some(r.start_time);
        self.end_time = r.end_time;
        if r.status.is_terminal() {
            self.output = r.output.clone();
            self.error = r.error.clone();
            self.exit_code = Some(r.exit_code);
        }
    }
}
