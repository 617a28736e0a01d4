//! The messages that travel between scheduler and executors: [`Task`] (design §4.2.1), [`TaskResult`]
//! (design §4.2.2) and [`Control`]. Their JSON keeps every field of the design, with the same names and types;
//! jobsched only adds fields.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ExecutorId, JobId, TaskId};
use super::job::Params;
use super::status::TaskStatus;

/// Why a task attempt exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A regular fire of the job's schedule.
    #[default]
    Schedule,
    /// A fire that was due while the scheduler was down or stalled, fired late by the misfire policy.
    Misfire,
    /// Executed on request (`POST /api/jobs/{jobId}/execute`).
    Manual,
    /// A retry after a failed or timed-out attempt.
    Retry,
    /// A new attempt after the executor of the previous one was lost.
    Failover,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 5] = [
        Trigger::Schedule,
        Trigger::Misfire,
        Trigger::Manual,
        Trigger::Retry,
        Trigger::Failover,
    ];

    /// The name used in the API and the stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Misfire => "misfire",
            Trigger::Manual => "manual",
            Trigger::Retry => "retry",
            Trigger::Failover => "failover",
        }
    }

    /// Parses the name returned by [`Trigger::as_str`].
    pub fn parse(s: &str) -> crate::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("trigger", format!("unknown trigger '{s}'")))
    }

    /// True for fires of the schedule, whose `(job_id, scheduled_time)` is recorded exactly once.
    pub fn is_scheduled_fire(self) -> bool {
        matches!(self, Trigger::Schedule | Trigger::Misfire)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt of a task, as sent to an executor (design §4.2.1 plus jobsched's fields).
///
/// ```json
/// {"task_id":"task-…","job_id":"job-…","command":"echo 'Hello World'","timeout":3600,"retry_count":3,
///  "retry_interval":60,"priority":10,"create_time":"2023-01-01T12:00:00Z",
///  "attempt":1,"scheduled_time":"2023-01-01T12:00:00Z","type":"shell","params":{},"trigger":"schedule",
///  "executor_id":"executor-1","executor_epoch":7}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The task (one fire); shared by all its attempts.
    pub task_id: TaskId,
    /// The job it belongs to.
    pub job_id: JobId,
    /// What to run.
    pub command: String,
    /// Seconds before it is killed (`0`: no limit).
    pub timeout: u32,
    /// Retries allowed for this task.
    pub retry_count: u32,
    /// Seconds before the first retry.
    pub retry_interval: u32,
    /// Higher starts first.
    pub priority: i32,
    /// When this attempt was created.
    pub create_time: DateTime<Utc>,
    /// 1 for the first attempt, +1 per retry or failover.
    #[serde(default = "one")]
    pub attempt: u32,
    /// The fire time this task belongs to.
    #[serde(default = "epoch")]
    pub scheduled_time: DateTime<Utc>,
    /// The handler that runs it.
    #[serde(rename = "type", default = "shell")]
    pub task_type: String,
    /// Parameters for the handler.
    #[serde(default)]
    pub params: Params,
    /// Why this attempt exists.
    #[serde(default)]
    pub trigger: Trigger,
    /// The executor chosen for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    /// The registration epoch of that executor when it was chosen. An executor that has re-registered
    /// since (a new epoch) drops the task: the scheduler has already given it to someone else.
    #[serde(default)]
    pub executor_epoch: u64,
}

fn one() -> u32 {
    1
}

fn epoch() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

fn shell() -> String {
    super::job::SHELL.to_owned()
}

/// The outcome (or start) of one attempt, as an executor reports it (design §4.2.2 plus jobsched's fields).
///
/// An executor sends a `running` (5) result when it starts an attempt and one terminal result when it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task.
    pub task_id: TaskId,
    /// Its job.
    pub job_id: JobId,
    /// The executor that ran it.
    pub executor_id: ExecutorId,
    /// The numeric status (see [`TaskStatus`]).
    pub status: TaskStatus,
    /// When it started on the executor.
    pub start_time: DateTime<Utc>,
    /// When it ended (absent while running).
    pub end_time: Option<DateTime<Utc>>,
    /// Captured standard output (the tail, if it was longer than the cap).
    pub output: String,
    /// Captured standard error and the reason of a failure; empty on success.
    pub error: String,
    /// Process exit code; `128 + signal` when killed by a signal; 0/1 for handlers without a process.
    pub exit_code: i32,
    /// Which attempt this is.
    #[serde(default = "one")]
    pub attempt: u32,
    /// The executor's registration epoch.
    #[serde(default)]
    pub executor_epoch: u64,
    /// The handler asked not to retry this failure (permanent error).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_retry: bool,
    /// The handler asked to retry after this many milliseconds instead of the job's interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Why a cancel was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// A user cancelled it.
    User,
    /// The overlap policy `replace` cancelled it for a newer fire.
    Replaced,
    /// The scheduler's timeout backstop: the attempt ran past its timeout and grace.
    Timeout,
    /// The executor is shutting down.
    Shutdown,
    /// Its job was deleted (only queued attempts and pending retries are cancelled for it).
    JobDeleted,
    /// Its job was disabled (only its queued scheduled fires and pending retries are cancelled for it).
    JobDisabled,
}

impl CancelReason {
    /// The status an attempt cancelled for this reason ends in.
    pub fn status(self) -> TaskStatus {
        match self {
            CancelReason::Timeout => TaskStatus::TimedOut,
            _ => TaskStatus::Cancelled,
        }
    }
}

/// A command from the scheduler to one executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Control {
    /// Stop an attempt: kill its process, report it with the reason's status.
    Cancel {
        /// The task.
        task_id: TaskId,
        /// The attempt.
        attempt: u32,
        /// Why.
        reason: CancelReason,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The design's 4.2.1 task message.
    const SEED_TASK: &str = r#"{
        "task_id": "task-123456", "job_id": "job-123456", "command": "echo 'Hello World'",
        "timeout": 3600, "retry_count": 3, "retry_interval": 60, "priority": 10,
        "create_time": "2023-01-01T12:00:00Z" }"#;

    /// The design's 4.2.2 result message.
    const SEED_RESULT: &str = r#"{
        "task_id": "task-123456", "job_id": "job-123456", "executor_id": "executor-123456", "status": 1,
        "start_time": "2023-01-01T12:00:00Z", "end_time": "2023-01-01T12:01:00Z",
        "output": "Hello World", "error": "", "exit_code": 0 }"#;

    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "float",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Every field of the design's example is present in ours with the same JSON type.
    fn assert_superset(seed: &str, ours: &Value) {
        let seed: Value = serde_json::from_str(seed).unwrap();
        for (field, value) in seed.as_object().unwrap() {
            let mine = ours
                .get(field)
                .unwrap_or_else(|| panic!("field `{field}` of the seed message is missing"));
            assert_eq!(
                kind(mine),
                kind(value),
                "field `{field}` has another JSON type"
            );
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn task_message_has_the_seed_fields_and_types() {
        let task = Task {
            task_id: TaskId::new("task-123456").unwrap(),
            job_id: JobId::new("job-123456").unwrap(),
            command: "echo 'Hello World'".into(),
            timeout: 3600,
            retry_count: 3,
            retry_interval: 60,
            priority: 10,
            create_time: t("2023-01-01T12:00:00Z"),
            attempt: 1,
            scheduled_time: t("2023-01-01T12:00:00Z"),
            task_type: "shell".into(),
            params: Params::new(),
            trigger: Trigger::Schedule,
            executor_id: None,
            executor_epoch: 0,
        };
        let json = serde_json::to_value(&task).unwrap();
        assert_superset(SEED_TASK, &json);
        assert_eq!(json["create_time"], "2023-01-01T12:00:00Z");
        // The design's own message (without our additions) is accepted as is.
        let parsed: Task = serde_json::from_str(SEED_TASK).unwrap();
        assert_eq!(parsed.attempt, 1);
        assert_eq!(parsed.task_type, "shell");
        assert_eq!(parsed.timeout, 3600);
    }

    #[test]
    fn result_message_has_the_seed_fields_and_types() {
        let result = TaskResult {
            task_id: TaskId::new("task-123456").unwrap(),
            job_id: JobId::new("job-123456").unwrap(),
            executor_id: ExecutorId::new("executor-123456").unwrap(),
            status: TaskStatus::Succeeded,
            start_time: t("2023-01-01T12:00:00Z"),
            end_time: Some(t("2023-01-01T12:01:00Z")),
            output: "Hello World".into(),
            error: String::new(),
            exit_code: 0,
            attempt: 1,
            executor_epoch: 3,
            no_retry: false,
            retry_after_ms: None,
        };
        let json = serde_json::to_value(&result).unwrap();
        assert_superset(SEED_RESULT, &json);
        assert_eq!(json["status"], 1);
        assert_eq!(json["end_time"], "2023-01-01T12:01:00Z");
        let parsed: TaskResult = serde_json::from_str(SEED_RESULT).unwrap();
        assert_eq!(parsed.status, TaskStatus::Succeeded);
        assert_eq!(parsed.attempt, 1);
    }

    #[test]
    fn malformed_messages_are_rejected_with_the_field_named() {
        let e = serde_json::from_str::<TaskResult>(
            &SEED_RESULT.replace("\"status\": 1", "\"status\": 99"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("99"), "{e}");
        let e = serde_json::from_str::<Task>(&SEED_TASK.replace("3600", "\"soon\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn control_is_tagged() {
        let c = Control::Cancel {
            task_id: TaskId::new("t").unwrap(),
            attempt: 2,
            reason: CancelReason::User,
        };
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(
            s,
            r#"{"kind":"cancel","task_id":"t","attempt":2,"reason":"user"}"#
        );
        assert_eq!(serde_json::from_str::<Control>(&s).unwrap(), c);
    }
}

/// A piece of a running attempt's output, sent while it runs so it can be watched live (best effort: a
/// lost chunk costs only the live view; the result still carries the output's capped tail).
///
/// `offset` counts the bytes of the attempt's output (standard output and error, as written) before
/// `text`; a chunk whose offset is past the end of the previous one says that many bytes were skipped
/// (the executor sends at most a chunk's size per interval and keeps the newest bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    /// The task.
    pub task_id: TaskId,
    /// Its attempt.
    pub attempt: u32,
    /// Bytes of output before `text`.
    pub offset: u64,
    /// The output (UTF-8; invalid bytes replaced).
    pub text: String,
}
