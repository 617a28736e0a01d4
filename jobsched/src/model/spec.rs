//! `JobSpec`: the input that creates a job or changes one (the body of `POST /api/jobs` and
//! `PUT /api/jobs/{jobId}`). Every field is optional; unknown fields are rejected by name.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::ids::JobId;
use super::job::{Job, Params, SHELL};
use super::policy::{MisfirePolicy, OverlapPolicy, RetryBackoff, RoutingStrategy, ScheduleType};
use crate::error::{Error, Result};

/// A job as a user writes it: for creation (`name` is required, defaults fill the rest) or as a change
/// (only the fields given are changed).
///
/// ```
/// use jobsched::JobSpec;
/// let job = JobSpec::cron("nightly report", "0 30 2 * * *", "echo report")
///     .with_time_zone("Europe/Berlin")
///     .with_timeout(600)
///     .with_retry(3, 60)
///     .build(chrono::Utc::now())
///     .unwrap();
/// assert_eq!(job.timeout, 600);
/// assert_eq!(job.time_zone.name(), "Europe/Berlin");
///
/// let bad = JobSpec::cron("x", "0 61 * * * *", "true").build(chrono::Utc::now());
/// assert!(bad.unwrap_err().to_string().contains("minute"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Each field is the `Job` field of the same name.
pub struct JobSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 65535))]
    pub command: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[a-z0-9_-]{1,32}$"))]
    pub job_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_type: Option<ScheduleType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    pub cron_expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2592000))]
    pub interval: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 2592000))]
    pub timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 100))]
    pub retry_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 2592000))]
    pub retry_interval: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<RetryBackoff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 2592000))]
    pub retry_max_interval: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub params: Option<Params>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub executor_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_strategy: Option<RoutingStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub misfire_policy: Option<MisfirePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub misfire_max_fires: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap_policy: Option<OverlapPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 36500))]
    pub retention_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 1000000))]
    pub retention_runs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<bool>,
    /// On a change: the version the caller read; the change fails with a conflict if the job moved on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// Every field of a job as a spec (without its version): what an export writes, so that importing it
/// creates the same job, or makes an existing one the same.
impl From<&Job> for JobSpec {
    fn from(j: &Job) -> Self {
        JobSpec {
            job_id: Some(j.job_id.clone()),
            name: Some(j.name.clone()),
            command: Some(j.command.clone()),
            job_type: Some(j.job_type.clone()),
            priority: Some(j.priority),
            schedule_type: Some(j.schedule_type),
            cron_expression: j.cron_expression.clone(),
            interval: j.interval,
            start_time: j.start_time,
            time_zone: Some(j.time_zone.name().to_owned()),
            timeout: Some(j.timeout),
            retry_count: Some(j.retry_count),
            retry_interval: Some(j.retry_interval),
            retry_backoff: Some(j.retry_backoff),
            retry_max_interval: Some(j.retry_max_interval),
            enabled: Some(j.enabled),
            owner: Some(j.owner.clone()),
            description: Some(j.description.clone()),
            params: Some(j.params.clone()),
            executor_group: Some(j.executor_group.clone()),
            executor_labels: Some(j.executor_labels.clone()),
            routing_strategy: Some(j.routing_strategy),
            misfire_policy: Some(j.misfire_policy),
            misfire_max_fires: Some(j.misfire_max_fires),
            overlap_policy: Some(j.overlap_policy),
            retention_days: Some(j.retention_days),
            retention_runs: Some(j.retention_runs),
            metrics: Some(j.metrics),
            version: None,
        }
    }
}

/// Parses an IANA time zone name, naming the field on error.
pub fn parse_time_zone(name: &str) -> Result<Tz> {
    name.parse::<Tz>().map_err(|_| {
        Error::invalid(
            "time_zone",
            format!(
                "'{name}' is not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)"
            ),
        )
    })
}

impl JobSpec {
    /// A job fired by a cron expression.
    pub fn cron(
        name: impl Into<String>,
        expression: impl Into<String>,
        command: impl Into<String>,
    ) -> Self {
        Self {
            name: Some(name.into()),
            command: Some(command.into()),
            schedule_type: Some(ScheduleType::Cron),
            cron_expression: Some(expression.into()),
            ..Self::default()
        }
    }

    /// A job fired only on request.
    pub fn manual(name: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            command: Some(command.into()),
            schedule_type: Some(ScheduleType::Manual),
            ..Self::default()
        }
    }

    /// A job fired every `interval_secs` seconds.
    pub fn fixed_rate(
        name: impl Into<String>,
        interval_secs: u32,
        command: impl Into<String>,
    ) -> Self {
        Self {
            name: Some(name.into()),
            command: Some(command.into()),
            schedule_type: Some(ScheduleType::FixedRate),
            interval: Some(interval_secs),
            ..Self::default()
        }
    }

    /// A job fired `interval_secs` seconds after its previous run ended.
    pub fn fixed_delay(
        name: impl Into<String>,
        interval_secs: u32,
        command: impl Into<String>,
    ) -> Self {
        Self {
            schedule_type: Some(ScheduleType::FixedDelay),
            ..Self::fixed_rate(name, interval_secs, command)
        }
    }

    /// A job fired once at `at`.
    pub fn once(name: impl Into<String>, at: DateTime<Utc>, command: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            command: Some(command.into()),
            schedule_type: Some(ScheduleType::Once),
            start_time: Some(at),
            ..Self::default()
        }
    }

    /// Sets the job id (otherwise one is generated).
    pub fn with_job_id(mut self, id: JobId) -> Self {
        self.job_id = Some(id);
        self
    }

    /// Sets the handler type (default `shell`).
    pub fn with_type(mut self, job_type: impl Into<String>) -> Self {
        self.job_type = Some(job_type.into());
        self
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the time zone of the cron expression.
    pub fn with_time_zone(mut self, tz: impl Into<String>) -> Self {
        self.time_zone = Some(tz.into());
        self
    }

    /// Sets the timeout in seconds.
    pub fn with_timeout(mut self, secs: u32) -> Self {
        self.timeout = Some(secs);
        self
    }

    /// Sets the number of retries and the seconds before the first one.
    pub fn with_retry(mut self, count: u32, interval_secs: u32) -> Self {
        self.retry_count = Some(count);
        self.retry_interval = Some(interval_secs);
        self
    }

    /// Sets the retry backoff and its cap in seconds.
    pub fn with_backoff(mut self, backoff: RetryBackoff, max_interval_secs: u32) -> Self {
        self.retry_backoff = Some(backoff);
        self.retry_max_interval = Some(max_interval_secs);
        self
    }

    /// Sets the first fire time (fixed rate/delay) or the fire time (once).
    pub fn with_start_time(mut self, at: DateTime<Utc>) -> Self {
        self.start_time = Some(at);
        self
    }

    /// Enables or disables the job.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Sets the owner.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Sets the handler parameters.
    pub fn with_params(mut self, params: Params) -> Self {
        self.params = Some(params);
        self
    }

    /// Restricts the job to executors of a group.
    pub fn with_executor_group(mut self, group: impl Into<String>) -> Self {
        self.executor_group = Some(group.into());
        self
    }

    /// Restricts the job to executors having a label.
    pub fn with_executor_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.executor_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self
    }

    /// Sets the routing strategy.
    pub fn with_routing(mut self, strategy: RoutingStrategy) -> Self {
        self.routing_strategy = Some(strategy);
        self
    }

    /// Sets the misfire policy.
    pub fn with_misfire(mut self, policy: MisfirePolicy) -> Self {
        self.misfire_policy = Some(policy);
        self
    }

    /// Sets the overlap policy.
    pub fn with_overlap(mut self, policy: OverlapPolicy) -> Self {
        self.overlap_policy = Some(policy);
        self
    }

    /// Creates the job this spec describes at time `now`: fills defaults, generates a `job_id` when none
    /// is given, and validates everything.
    pub fn build(self, now: DateTime<Utc>) -> Result<Job> {
        if self.name.is_none() {
            return Err(Error::invalid("name", "is required"));
        }
        let now = crate::clock::trunc_ms(now);
        let base = Job {
            job_id: self.job_id.clone().unwrap_or_else(JobId::generate),
            name: String::new(),
            command: String::new(),
            job_type: SHELL.to_owned(),
            priority: 0,
            schedule_type: if self.cron_expression.is_some() {
                ScheduleType::Cron
            } else {
                ScheduleType::Manual
            },
            cron_expression: None,
            interval: None,
            start_time: None,
            time_zone: Tz::UTC,
            timeout: 0,
            retry_count: 0,
            retry_interval: 0,
            retry_backoff: RetryBackoff::Fixed,
            retry_max_interval: 0,
            enabled: true,
            owner: String::new(),
            description: String::new(),
            params: Params::new(),
            executor_group: String::new(),
            executor_labels: BTreeMap::new(),
            routing_strategy: RoutingStrategy::default(),
            misfire_policy: MisfirePolicy::default(),
            misfire_max_fires: 100,
            overlap_policy: OverlapPolicy::default(),
            retention_days: 0,
            retention_runs: 0,
            metrics: false,
            create_time: now,
            update_time: now,
            version: 0,
        };
        self.merge_into(base, now)
    }

    /// Applies this change to `job` at time `now` and validates the result. Fields not given keep their
    /// values; `job_id`, if given, must be the job's; `version`, if given, must be the job's current version.
    pub fn apply(self, job: &Job, now: DateTime<Utc>) -> Result<Job> {
        if let Some(id) = &self.job_id {
            if *id != job.job_id {
                return Err(Error::invalid(
                    "job_id",
                    format!(
                        "'{id}' does not match the job being changed ('{}')",
                        job.job_id
                    ),
                ));
            }
        }
        if let Some(v) = self.version {
            if v != job.version {
                return Err(Error::conflict(format!(
                    "job '{}' is at version {}, the change was made against version {v}",
                    job.job_id, job.version
                )));
            }
        }
        self.merge_into(job.clone(), crate::clock::trunc_ms(now))
    }

    fn merge_into(self, mut job: Job, now: DateTime<Utc>) -> Result<Job> {
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { job.$field = v; } )* };
        }
        set!(
            name,
            command,
            job_type,
            priority,
            schedule_type,
            timeout,
            retry_count,
            retry_interval,
            retry_backoff,
            retry_max_interval,
            enabled,
            owner,
            description,
            params,
            executor_group,
            executor_labels,
            routing_strategy,
            misfire_policy,
            misfire_max_fires,
            overlap_policy,
            retention_days,
            retention_runs,
            metrics
        );
        if let Some(expr) = self.cron_expression {
            job.cron_expression = Some(expr);
        }
        if let Some(i) = self.interval {
            job.interval = Some(i);
        }
        if let Some(t) = self.start_time {
            job.start_time = Some(crate::clock::trunc_ms(t));
        }
        if let Some(tz) = self.time_zone {
            job.time_zone = parse_time_zone(&tz)?;
        }
        job.update_time = now;
        job.validate()?;
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn build_fills_defaults() {
        let job = JobSpec::cron("a", "*/5 * * * * *", "echo hi")
            .build(now())
            .unwrap();
        assert_eq!(job.job_type, "shell");
        assert_eq!(job.time_zone, Tz::UTC);
        assert!(job.enabled);
        assert!(job.job_id.as_str().starts_with("job-"));
        assert_eq!(job.create_time, now());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let e = serde_json::from_str::<JobSpec>(r#"{"name":"a","cron":"* * * * *"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `cron`"), "{e}");
        let e = JobSpec::cron("a", "* * * * *", "x")
            .with_time_zone("Mars/Olympus")
            .build(now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("time_zone") && e.contains("Mars/Olympus"), "{e}");
        let e = JobSpec::manual("a", "x\0y")
            .build(now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("command") && e.contains("NUL"), "{e}");
        let e = JobSpec::manual("a", "x")
            .with_timeout(u32::MAX)
            .build(now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("timeout"), "{e}");
        let e = JobSpec::default().build(now()).unwrap_err().to_string();
        assert!(e.contains("name") && e.contains("required"), "{e}");
        let e = JobSpec::manual("a", "x")
            .with_type("Not A Type")
            .build(now())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("invalid type"), "{e}");
    }

    #[test]
    fn quotes_backslashes_and_emoji_are_kept_verbatim() {
        let cmd = r#"echo "it's \"quoted\"" \\ 🚀"#;
        let job = JobSpec::manual("naïve 🚀 'name'", cmd)
            .build(now())
            .unwrap();
        assert_eq!(job.command, cmd);
        assert_eq!(job.name, "naïve 🚀 'name'");
    }

    #[test]
    fn apply_changes_only_given_fields_and_checks_version() {
        let mut job = JobSpec::cron("a", "* * * * *", "echo")
            .with_priority(5)
            .build(now())
            .unwrap();
        job.version = 3;
        let later = now() + chrono::Duration::seconds(10);
        let changed = JobSpec {
            timeout: Some(9),
            ..JobSpec::default()
        }
        .apply(&job, later)
        .unwrap();
        assert_eq!(changed.timeout, 9);
        assert_eq!(changed.priority, 5);
        assert_eq!(changed.update_time, later);
        let e = JobSpec {
            version: Some(2),
            ..JobSpec::default()
        }
        .apply(&job, later)
        .unwrap_err();
        assert!(matches!(e, Error::Conflict { .. }), "{e}");
    }
}
