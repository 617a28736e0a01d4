//! Row types and their conversions to and from the model.

use chrono::{DateTime, NaiveDateTime, Utc};
use jobsched::{
    Error, ExecutionRecord, ExecutorId, ExecutorRecord, ExecutorStatus, Job, JobId, MisfirePolicy,
    OverlapPolicy, Result, RetryBackoff, RoutingStrategy, ScheduleType, TaskId, TaskStatus,
    Trigger,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A stored time (UTC, whole milliseconds: the precision every store keeps) from the model.
pub fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    jobsched::clock::trunc_ms(t).naive_utc()
}

/// A model time from a stored one (stored times are UTC).
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// The design's `jobs.type TINYINT` for a handler name: 1 `shell`, 2 `http`, 0 any other (its name is in
/// `type_name`).
pub fn type_code(name: &str) -> i8 {
    match name {
        jobsched::SHELL => 1,
        "http" => 2,
        _ => 0,
    }
}

/// JSON text of a value (params, labels, handler lists).
pub fn to_json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("params, labels and handler lists serialise")
}

/// A value from JSON text; a corrupt value is a backend error naming the column. Empty text (a row written
/// before the column existed) reads as an empty map or list.
pub fn from_json_text<T: DeserializeOwned>(
    backend: &'static str,
    column: &str,
    text: &str,
) -> Result<T> {
    if text.is_empty() {
        return serde_json::from_str("{}")
            .or_else(|_| serde_json::from_str("[]"))
            .map_err(|e| Error::backend(backend, format!("empty {column}: {e}")));
    }
    serde_json::from_str(text)
        .map_err(|e| Error::backend(backend, format!("stored {column} is not valid JSON: {e}")))
}

pub(crate) fn parse<T>(backend: &'static str, what: &str, r: Result<T>) -> Result<T> {
    r.map_err(|e| Error::backend(backend, format!("stored {what} is invalid: {e}")))
}

fn unsigned(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// The job columns, in the order of [`JobRow`].
pub const JOB_COLUMNS: &str = "job_id, name, command, type, type_name, priority, schedule_type, cron_expression, \
     `interval`, start_time, time_zone, timeout, retry_count, retry_interval, retry_backoff, retry_max_interval, \
     enabled, owner, description, params, executor_group, executor_labels, routing_strategy, misfire_policy, \
     misfire_max_fires, overlap_policy, retention_days, retention_runs, metrics, create_time, update_time, \
     version, revision, deleted";

/// A `jobs` row.
#[derive(Debug, Clone, sqlx::FromRow)]
#[allow(missing_docs)] // Each field is the column of the same name.
pub struct JobRow {
    pub job_id: String,
    pub name: String,
    pub command: String,
    #[sqlx(rename = "type")]
    pub type_code: i8,
    pub type_name: String,
    pub priority: i32,
    pub schedule_type: String,
    pub cron_expression: Option<String>,
    pub interval: Option<i32>,
    pub start_time: Option<NaiveDateTime>,
    pub time_zone: String,
    pub timeout: i32,
    pub retry_count: i32,
    pub retry_interval: i32,
    pub retry_backoff: String,
    pub retry_max_interval: i32,
    pub enabled: bool,
    pub owner: String,
    pub description: String,
    pub params: String,
    pub executor_group: String,
    pub executor_labels: String,
    pub routing_strategy: String,
    pub misfire_policy: String,
    pub misfire_max_fires: i32,
    pub overlap_policy: String,
    pub retention_days: i32,
    pub retention_runs: i32,
    pub metrics: bool,
    pub create_time: NaiveDateTime,
    pub update_time: NaiveDateTime,
    pub version: i64,
    pub revision: i64,
    pub deleted: bool,
}

impl JobRow {
    /// The row for a job (revision and deleted are set by the store).
    pub fn from_job(j: &Job) -> Self {
        JobRow {
            job_id: j.job_id.to_string(),
            name: j.name.clone(),
            command: j.command.clone(),
            type_code: type_code(&j.job_type),
            type_name: j.job_type.clone(),
            priority: j.priority,
            schedule_type: j.schedule_type.as_str().to_owned(),
            cron_expression: j.cron_expression.clone(),
            interval: j.interval.map(|i| i as i32),
            start_time: j.start_time.map(naive),
            time_zone: j.time_zone.name().to_owned(),
            timeout: j.timeout as i32,
            retry_count: j.retry_count as i32,
            retry_interval: j.retry_interval as i32,
            retry_backoff: j.retry_backoff.as_str().to_owned(),
            retry_max_interval: j.retry_max_interval as i32,
            enabled: j.enabled,
            owner: j.owner.clone(),
            description: j.description.clone(),
            params: to_json_text(&j.params),
            executor_group: j.executor_group.clone(),
            executor_labels: to_json_text(&j.executor_labels),
            routing_strategy: j.routing_strategy.as_str().to_owned(),
            misfire_policy: j.misfire_policy.as_str().to_owned(),
            misfire_max_fires: j.misfire_max_fires as i32,
            overlap_policy: j.overlap_policy.as_str().to_owned(),
            retention_days: j.retention_days as i32,
            retention_runs: j.retention_runs as i32,
            metrics: j.metrics,
            create_time: naive(j.create_time),
            update_time: naive(j.update_time),
            version: j.version as i64,
            revision: 0,
            deleted: false,
        }
    }

    /// The job of a row.
    pub fn into_job(self, backend: &'static str) -> Result<Job> {
        Ok(Job {
            job_id: JobId::from_trusted(self.job_id),
            name: self.name,
            command: self.command,
            job_type: self.type_name,
            priority: self.priority,
            schedule_type: parse(
                backend,
                "schedule_type",
                ScheduleType::parse(&self.schedule_type),
            )?,
            cron_expression: self.cron_expression,
            interval: self.interval.map(|i| unsigned(i64::from(i))),
            start_time: self.start_time.map(utc),
            time_zone: parse(
                backend,
                "time_zone",
                jobsched::parse_time_zone(&self.time_zone),
            )?,
            timeout: unsigned(i64::from(self.timeout)),
            retry_count: unsigned(i64::from(self.retry_count)),
            retry_interval: unsigned(i64::from(self.retry_interval)),
            retry_backoff: parse(
                backend,
                "retry_backoff",
                RetryBackoff::parse(&self.retry_backoff),
            )?,
            retry_max_interval: unsigned(i64::from(self.retry_max_interval)),
            enabled: self.enabled,
            owner: self.owner,
            description: self.description,
            params: from_json_text(backend, "params", &self.params)?,
            executor_group: self.executor_group,
            executor_labels: from_json_text(backend, "executor_labels", &self.executor_labels)?,
            routing_strategy: parse(
                backend,
                "routing_strategy",
                RoutingStrategy::parse(&self.routing_strategy),
            )?,
            misfire_policy: parse(
                backend,
                "misfire_policy",
                MisfirePolicy::parse(&self.misfire_policy),
            )?,
            misfire_max_fires: unsigned(i64::from(self.misfire_max_fires)),
            overlap_policy: parse(
                backend,
                "overlap_policy",
                OverlapPolicy::parse(&self.overlap_policy),
            )?,
            retention_days: unsigned(i64::from(self.retention_days)),
            retention_runs: unsigned(i64::from(self.retention_runs)),
            metrics: self.metrics,
            create_time: utc(self.create_time),
            update_time: utc(self.update_time),
            version: self.version.max(0) as u64,
        })
    }
}

/// The `job_logs` columns, in the order of [`ExecRow`].
pub const EXEC_COLUMNS: &str = "id, task_id, attempt, job_id, executor_id, executor_epoch, status, trigger_kind, \
     scheduled_time, due_time, create_time, start_time, end_time, output, error, exit_code, command, type_name, \
     params, timeout, retry_count, retry_interval, priority, fire_time";

/// A `job_logs` row: one attempt of a task.
#[derive(Debug, Clone, sqlx::FromRow)]
#[allow(missing_docs)] // Each field is the column of the same name.
pub struct ExecRow {
    pub id: i64,
    pub task_id: String,
    pub attempt: i32,
    pub job_id: String,
    pub executor_id: String,
    pub executor_epoch: i64,
    pub status: i8,
    pub trigger_kind: String,
    pub scheduled_time: NaiveDateTime,
    pub due_time: NaiveDateTime,
    pub create_time: NaiveDateTime,
    pub start_time: Option<NaiveDateTime>,
    pub end_time: Option<NaiveDateTime>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub command: String,
    pub type_name: String,
    pub params: String,
    pub timeout: i32,
    pub retry_count: i32,
    pub retry_interval: i32,
    pub priority: i32,
    /// The fire time for the first attempt of a scheduled fire (unique per job), else NULL.
    pub fire_time: Option<NaiveDateTime>,
}

impl ExecRow {
    /// The row for a record (`id` as given; stores assign it on insert).
    pub fn from_record(r: &ExecutionRecord) -> Self {
        ExecRow {
            id: r.id,
            task_id: r.task_id.to_string(),
            attempt: r.attempt as i32,
            job_id: r.job_id.to_string(),
            executor_id: r
                .executor_id
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            executor_epoch: r.executor_epoch as i64,
            status: r.status.code() as i8,
            trigger_kind: r.trigger.as_str().to_owned(),
            scheduled_time: naive(r.scheduled_time),
            due_time: naive(r.due_time),
            create_time: naive(r.create_time),
            start_time: r.start_time.map(naive),
            end_time: r.end_time.map(naive),
            output: Some(r.output.clone()),
            error: Some(r.error.clone()),
            exit_code: r.exit_code,
            command: r.command.clone(),
            type_name: r.task_type.clone(),
            params: to_json_text(&r.params),
            timeout: r.timeout as i32,
            retry_count: r.retry_count as i32,
            retry_interval: r.retry_interval as i32,
            priority: r.priority,
            fire_time: r.fire_key().map(|(_, at)| naive(at)),
        }
    }

    /// Roughly how many bytes the row takes in a statement (to keep statements under the server's packet
    /// limit).
    pub fn approx_bytes(&self) -> usize {
        256 + self.task_id.len()
            + self.job_id.len()
            + self.executor_id.len()
            + self.command.len()
            + self.params.len()
            + self.output.as_ref().map_or(0, String::len)
            + self.error.as_ref().map_or(0, String::len)
    }

    /// The record of a row.
    pub fn into_record(self, backend: &'static str) -> Result<ExecutionRecord> {
        Ok(ExecutionRecord {
            id: self.id,
            task_id: TaskId::from_trusted(self.task_id),
            attempt: unsigned(i64::from(self.attempt)),
            job_id: JobId::from_trusted(self.job_id),
            executor_id: (!self.executor_id.is_empty())
                .then(|| ExecutorId::from_trusted(self.executor_id)),
            executor_epoch: self.executor_epoch.max(0) as u64,
            status: parse(backend, "status", TaskStatus::from_code(self.status as u8))?,
            trigger: parse(backend, "trigger_kind", Trigger::parse(&self.trigger_kind))?,
            scheduled_time: utc(self.scheduled_time),
            due_time: utc(self.due_time),
            create_time: utc(self.create_time),
            start_time: self.start_time.map(utc),
            end_time: self.end_time.map(utc),
            output: self.output.unwrap_or_default(),
            error: self.error.unwrap_or_default(),
            exit_code: self.exit_code,
            command: self.command,
            task_type: self.type_name,
            params: from_json_text(backend, "params", &self.params)?,
            timeout: unsigned(i64::from(self.timeout)),
            retry_count: unsigned(i64::from(self.retry_count)),
            retry_interval: unsigned(i64::from(self.retry_interval)),
            priority: self.priority,
        })
    }
}

/// The `executors` columns, in the order of [`ExecutorRow`].
pub const EXECUTOR_COLUMNS: &str = "executor_id, host, port, status, last_heartbeat_time, register_time, capacity, \
     running, group_name, labels, handlers, enabled";

/// An `executors` row.
#[derive(Debug, Clone, sqlx::FromRow)]
#[allow(missing_docs)] // Each field is the column of the same name.
pub struct ExecutorRow {
    pub executor_id: String,
    pub host: String,
    pub port: i32,
    pub status: i8,
    pub last_heartbeat_time: NaiveDateTime,
    pub register_time: NaiveDateTime,
    pub capacity: i32,
    pub running: i32,
    pub group_name: String,
    pub labels: String,
    pub handlers: String,
    pub enabled: bool,
}

impl ExecutorRow {
    /// The row for a record.
    pub fn from_record(r: &ExecutorRecord) -> Self {
        ExecutorRow {
            executor_id: r.executor_id.to_string(),
            host: r.host.clone(),
            port: i32::from(r.port),
            status: r.status.code() as i8,
            last_heartbeat_time: naive(r.last_heartbeat_time),
            register_time: naive(r.register_time),
            capacity: r.capacity as i32,
            running: r.running as i32,
            group_name: r.group.clone(),
            labels: to_json_text(&r.labels),
            handlers: to_json_text(&r.handlers),
            enabled: r.enabled,
        }
    }

    /// The record of a row.
    pub fn into_record(self, backend: &'static str) -> Result<ExecutorRecord> {
        Ok(ExecutorRecord {
            executor_id: ExecutorId::from_trusted(self.executor_id),
            host: self.host,
            port: u16::try_from(self.port).unwrap_or(0),
            status: parse(
                backend,
                "status",
                ExecutorStatus::from_code(self.status as u8),
            )?,
            last_heartbeat_time: utc(self.last_heartbeat_time),
            register_time: utc(self.register_time),
            capacity: unsigned(i64::from(self.capacity)),
            running: unsigned(i64::from(self.running)),
            group: self.group_name,
            labels: from_json_text(backend, "labels", &self.labels)?,
            handlers: from_json_text(backend, "handlers", &self.handlers)?,
            enabled: self.enabled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobsched::testing::{sample_job, sample_record, t0};

    #[test]
    fn rows_round_trip() {
        let job = sample_job("round-trip");
        let mut job = job;
        job.version = 3;
        job.params.insert("k".into(), serde_json::json!([1, "two"]));
        job.executor_labels.insert("zone".into(), "eu".into());
        assert_eq!(JobRow::from_job(&job).into_job("test").unwrap(), job);
        let mut rec = sample_record(&job, Trigger::Misfire, t0());
        rec.id = 42;
        rec.executor_id = Some(ExecutorId::new("e1").unwrap());
        rec.exit_code = Some(3);
        rec.start_time = Some(t0());
        assert_eq!(ExecRow::from_record(&rec).into_record("test").unwrap(), rec);
        assert_eq!(type_code("shell"), 1);
        assert_eq!(type_code("http"), 2);
        assert_eq!(type_code("my-handler"), 0);
    }
}
