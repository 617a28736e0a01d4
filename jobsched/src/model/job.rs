//! The job definition: the design's `jobs` columns plus what the engine needs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::ids::JobId;
use super::policy::{MisfirePolicy, OverlapPolicy, RetryBackoff, RoutingStrategy, ScheduleType};
use crate::error::{Error, Result};
use crate::schedule::Schedule;

/// Free-form parameters handed to the handler (and, for shell tasks, as environment variables).
pub type Params = serde_json::Map<String, serde_json::Value>;

/// Limits applied to job fields. Documented so stores can size their columns.
pub mod limits {
    /// Longest `name`, in characters (the design's `VARCHAR(255)`).
    pub const NAME_CHARS: usize = 255;
    /// Longest `command`, in bytes (a MySQL `TEXT` holds 65,535).
    pub const COMMAND_BYTES: usize = 65_535;
    /// Longest `cron_expression`, in bytes (the design's `VARCHAR(100)`).
    pub const CRON_BYTES: usize = 100;
    /// Longest `type` name, in bytes.
    pub const TYPE_BYTES: usize = 32;
    /// Longest `owner`, `executor_group`, label key or label value, in bytes.
    pub const SHORT_TEXT_BYTES: usize = 64;
    /// Longest `description`, in characters.
    pub const DESCRIPTION_CHARS: usize = 1_000;
    /// Largest `params`, serialised as JSON, in bytes.
    pub const PARAMS_BYTES: usize = 16_384;
    /// Longest `timeout`, `retry_interval`, `retry_max_interval` and `interval`, in seconds (30 days).
    pub const MAX_SECONDS: u32 = 30 * 24 * 3600;
    /// Most retries.
    pub const MAX_RETRIES: u32 = 100;
    /// Most fires `misfire_policy = fire_all` may catch up at once.
    pub const MAX_MISFIRE_FIRES: u32 = 1_000;
    /// Most days a job may keep its ended runs (100 years).
    pub const MAX_RETENTION_DAYS: u32 = 36_500;
    /// Most ended runs a job may keep by count.
    pub const MAX_RETENTION_RUNS: u32 = 1_000_000;
}

/// The handler type of the built-in shell handler.
pub const SHELL: &str = "shell";

fn default_type() -> String {
    SHELL.to_owned()
}

fn default_true() -> bool {
    true
}

fn default_misfire_max() -> u32 {
    100
}

/// A job: what to run, when, where and how to handle failures.
///
/// Field names are the design's `jobs` columns (`job_id`, `name`, `command`, `type`, `priority`,
/// `cron_expression`, `timeout`, `retry_count`, `retry_interval`, `create_time`, `update_time`) and the fields
/// jobsched adds. Durations are whole seconds, as in the design; `0` means "none" for `timeout`.
/// Build one from a [`JobSpec`](crate::JobSpec).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    /// Unique id (`VARCHAR(64)`).
    pub job_id: JobId,
    /// Human name.
    pub name: String,
    /// The command (for `shell`: run by `sh -c`), or the handler's input.
    pub command: String,
    /// The handler that runs it: `shell`, `http`, or a registered custom handler name.
    #[serde(rename = "type", default = "default_type")]
    pub job_type: String,
    /// Higher starts first when executors are saturated.
    #[serde(default)]
    pub priority: i32,
    /// How fire times are produced.
    #[serde(default)]
    pub schedule_type: ScheduleType,
    /// Cron expression for `schedule_type = cron`.
    #[serde(default)]
    pub cron_expression: Option<String>,
    /// Seconds between fires for `fixed_rate` and `fixed_delay`.
    #[serde(default)]
    pub interval: Option<u32>,
    /// First fire for `fixed_rate`/`fixed_delay`, the fire time for `once`.
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    /// IANA time zone the cron expression is read in.
    #[serde(default = "default_tz")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "Europe/Berlin"))]
    pub time_zone: Tz,
    /// Seconds a task may run before it is killed and recorded as timed out (`0`: no limit).
    #[serde(default)]
    pub timeout: u32,
    /// How many times a failed, timed-out or lost attempt is retried.
    #[serde(default)]
    pub retry_count: u32,
    /// Seconds before the first retry.
    #[serde(default)]
    pub retry_interval: u32,
    /// How the wait grows between retries.
    #[serde(default)]
    pub retry_backoff: RetryBackoff,
    /// Cap of the wait between retries with exponential backoff (`0`: one day,
    /// [`RetryBackoff::DEFAULT_CAP_SECS`]).
    #[serde(default)]
    pub retry_max_interval: u32,
    /// Disabled jobs do not fire by schedule (they can still be executed on request).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The user who owns the job.
    #[serde(default)]
    pub owner: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Parameters for the handler.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Params,
    /// Only executors of this group run it (empty: any group).
    #[serde(default)]
    pub executor_group: String,
    /// Only executors having all these labels run it.
    #[serde(default)]
    pub executor_labels: BTreeMap<String, String>,
    /// How an executor is chosen.
    #[serde(default)]
    pub routing_strategy: RoutingStrategy,
    /// What happens to fires missed while the scheduler was down.
    #[serde(default)]
    pub misfire_policy: MisfirePolicy,
    /// Most missed fires caught up by `misfire_policy = fire_all`.
    #[serde(default = "default_misfire_max")]
    pub misfire_max_fires: u32,
    /// What happens when it fires while an earlier task is still active.
    #[serde(default)]
    pub overlap_policy: OverlapPolicy,
    /// Days its ended runs are kept (`0`: the system's `history_retention_days`).
    #[serde(default)]
    pub retention_days: u32,
    /// Most ended runs kept, the newest (`0`: no limit by count).
    #[serde(default)]
    pub retention_runs: u32,
    /// Whether it gets its own metrics series (`jobsched_job_*`, labelled with its id; at most
    /// [`MAX_JOB_SERIES`](crate::metrics::MAX_JOB_SERIES) jobs per process).
    #[serde(default)]
    pub metrics: bool,
    /// When it was created.
    pub create_time: DateTime<Utc>,
    /// When it was last changed.
    pub update_time: DateTime<Utc>,
    /// Optimistic-concurrency version: 1 on creation, +1 on every update.
    #[serde(default)]
    pub version: u64,
}

fn default_tz() -> Tz {
    Tz::UTC
}

pub(crate) fn check_text(field: &str, value: &str, max_chars: usize) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(field, "must not contain NUL bytes"));
    }
    let n = value.chars().count();
    if n > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters, got {n}"),
        ));
    }
    Ok(())
}

pub(crate) fn check_seconds(field: &str, v: u32) -> Result<()> {
    if v > limits::MAX_SECONDS {
        return Err(Error::invalid(
            field,
            format!(
                "must be at most {} seconds (30 days), got {v}",
                limits::MAX_SECONDS
            ),
        ));
    }
    Ok(())
}

/// Checks params: at most [`limits::PARAMS_BYTES`] as JSON; no NUL byte in a name or a string value (a
/// process environment cannot carry one, so every spawn would fail); no two names that map to the same
/// environment variable (see [`param_env_name`]), which would silently replace one another.
pub fn check_params(field: &str, params: &Params) -> Result<()> {
    let len = serde_json::to_vec(params).map(|v| v.len()).unwrap_or(0);
    if len > limits::PARAMS_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "must be at most {} bytes as JSON, got {len}",
                limits::PARAMS_BYTES
            ),
        ));
    }
    let mut env: std::collections::HashMap<String, &str> = Default::default();
    for (k, v) in params {
        if k.contains('\0') || v.as_str().is_some_and(|s| s.contains('\0')) {
            return Err(Error::invalid(
                field,
                format!(
                    "'{}' contains a NUL byte, which a task's environment cannot carry",
                    k.escape_debug()
                ),
            ));
        }
        if let Some(other) = env.insert(param_env_name(k), k) {
            return Err(Error::invalid(
                field,
                format!(
                    "'{other}' and '{k}' both become the environment variable JOBSCHED_PARAM_{}; rename one",
                    param_env_name(k)
                ),
            ));
        }
    }
    Ok(())
}

/// The environment name a param gets (after `JOBSCHED_PARAM_`): ASCII letters and digits upper-cased,
/// anything else `_`.
pub fn param_env_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Checks a handler type name: 1–32 bytes of lower-case ASCII letters, digits, `-` and `_`.
pub(crate) fn check_type_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= limits::TYPE_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "type",
            format!(
                "'{name}' is not a handler name (1–{} bytes of a-z, 0-9, - and _)",
                limits::TYPE_BYTES
            ),
        ))
    }
}

impl Job {
    /// Checks every field and the schedule (the cron expression parses and fires at least once, the time
    /// zone is known, the intervals are in range). Errors name the field and say why.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        check_text("name", &self.name, limits::NAME_CHARS)?;
        if self.command.contains('\0') {
            return Err(Error::invalid(
                "command",
                "must not contain NUL bytes (a process argument cannot carry them)",
            ));
        }
        if self.command.len() > limits::COMMAND_BYTES {
            return Err(Error::invalid(
                "command",
                format!(
                    "must be at most {} bytes, got {}",
                    limits::COMMAND_BYTES,
                    self.command.len()
                ),
            ));
        }
        check_type_name(&self.job_type)?;
        if self.job_type == SHELL && self.command.trim().is_empty() {
            return Err(Error::invalid(
                "command",
                "must not be empty for type 'shell'",
            ));
        }
        check_text("description", &self.description, limits::DESCRIPTION_CHARS)?;
        for (field, v) in [
            ("owner", &self.owner),
            ("executor_group", &self.executor_group),
        ] {
            check_text(field, v, limits::SHORT_TEXT_BYTES)?;
        }
        for (k, v) in &self.executor_labels {
            if k.is_empty()
                || k.len() > limits::SHORT_TEXT_BYTES
                || v.len() > limits::SHORT_TEXT_BYTES
            {
                return Err(Error::invalid(
                    "executor_labels",
                    format!(
                        "label '{k}' must have a key of 1–{0} bytes and a value of at most {0} bytes",
                        limits::SHORT_TEXT_BYTES
                    ),
                ));
            }
        }
        for (field, v) in [
            ("timeout", self.timeout),
            ("retry_interval", self.retry_interval),
            ("retry_max_interval", self.retry_max_interval),
        ] {
            check_seconds(field, v)?;
        }
        if self.retry_count > limits::MAX_RETRIES {
            return Err(Error::invalid(
                "retry_count",
                format!(
                    "must be at most {}, got {}",
                    limits::MAX_RETRIES,
                    self.retry_count
                ),
            ));
        }
        if self.misfire_max_fires == 0 || self.misfire_max_fires > limits::MAX_MISFIRE_FIRES {
            return Err(Error::invalid(
                "misfire_max_fires",
                format!(
                    "must be between 1 and {}, got {}",
                    limits::MAX_MISFIRE_FIRES,
                    self.misfire_max_fires
                ),
            ));
        }
        if self.retention_days > limits::MAX_RETENTION_DAYS {
            return Err(Error::invalid(
                "retention_days",
                format!(
                    "must be at most {} days (0: the system's history_retention_days), got {}",
                    limits::MAX_RETENTION_DAYS,
                    self.retention_days
                ),
            ));
        }
        if self.retention_runs > limits::MAX_RETENTION_RUNS {
            return Err(Error::invalid(
                "retention_runs",
                format!(
                    "must be at most {} runs (0: no limit by count), got {}",
                    limits::MAX_RETENTION_RUNS,
                    self.retention_runs
                ),
            ));
        }
        if let Some(i) = self.interval
            && (i == 0 || i > limits::MAX_SECONDS)
        {
            return Err(Error::invalid(
                "interval",
                format!(
                    "must be between 1 and {} seconds (30 days), got {i}",
                    limits::MAX_SECONDS
                ),
            ));
        }
        check_params("params", &self.params)?;
        Schedule::from_job(self).map(|_| ())
    }

    /// The compiled schedule of this job.
    pub fn schedule(&self) -> Result<Schedule> {
        Schedule::from_job(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect()
    }

    #[test]
    fn params_with_a_nul_byte_or_colliding_names_are_refused_with_their_names() {
        assert!(check_params("params", &params(&[("region", "eu"), ("max_items", "3")])).is_ok());
        let e = check_params("params", &params(&[("file", "a\0b")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'file'") && e.contains("NUL"), "{e}");
        let e = check_params("params", &params(&[("a\0", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("NUL"), "{e}");
        let e = check_params("params", &params(&[("a-b", "1"), ("a_b", "2")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'a-b'") && e.contains("'a_b'") && e.contains("JOBSCHED_PARAM_A_B"),
            "{e}"
        );
        assert_eq!(param_env_name("max-items.v2"), "MAX_ITEMS_V2");
        let big = "x".repeat(limits::PARAMS_BYTES);
        let e = check_params("params", &params(&[("p", &big)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 16384 bytes"), "{e}");
    }
}
