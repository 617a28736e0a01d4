//! System configuration: kept centrally (`GET/PUT /api/system/config`), applied at run time.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Settings shared by every scheduler and executor. Unknown fields are rejected by name; absent ones take
/// their defaults. Each field says who applies it and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct SystemConfig {
    /// Executors keep at most this many bytes of a task's stdout and of its stderr (the tail), marking the
    /// cut. Executors apply it to tasks they start after the change.
    #[cfg_attr(feature = "openapi", schema(minimum = 256, maximum = 16777216))]
    pub max_output_bytes: u32,
    /// Seconds between SIGTERM and SIGKILL when an executor stops a task (timeout, cancel, shutdown).
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 600))]
    pub kill_grace_secs: u32,
    /// Seconds the scheduler waits past a task's timeout for its result before it records it timed out
    /// itself (the backstop for a silent executor).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
    pub timeout_grace_secs: u32,
    /// A fire later than this many seconds is a misfire and follows the job's misfire policy.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub misfire_threshold_secs: u32,
    /// New attempts a task gets when its executor is lost, on top of `retry_count`.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub max_failovers: u32,
    /// Seconds after which a dispatched task that has not started is sent to its executor again (an
    /// executor ignores a copy of an attempt it already has).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub redispatch_after_secs: u32,
    /// Seconds the scheduler waits for a cancelled task's executor to confirm before it records the task
    /// cancelled itself.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
    pub cancel_grace_secs: u32,
    /// Tasks the scheduler may send to an executor beyond its capacity, so it never waits for work over
    /// a slow transport. 0 keeps priority strict: a task is sent only when a slot is free, so a waiting
    /// higher-priority task always starts before a lower-priority one; a prefetched task starts in the
    /// executor's own priority order, ahead of anything still waiting at the scheduler.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10000))]
    pub executor_prefetch: u32,
    /// Days execution records are kept after they end (0: forever).
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 36500))]
    pub history_retention_days: u32,
    /// Days audit log entries are kept (0: forever). The active scheduler's daemon purges older ones.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 36500))]
    pub audit_retention_days: u32,
    /// Milliseconds between two chunks of a running task's live output (executors send at most one
    /// chunk per task per interval). Executors apply it to tasks they start after the change.
    #[cfg_attr(feature = "openapi", schema(minimum = 20, maximum = 60000))]
    pub live_output_interval_ms: u32,
    /// Largest chunk of live output, in bytes (0: no live output). A task writing faster has the older
    /// bytes of an interval skipped in the live view (never in its recorded output).
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 262144))]
    pub live_output_chunk_bytes: u32,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            max_output_bytes: 64 * 1024,
            kill_grace_secs: 5,
            timeout_grace_secs: 10,
            misfire_threshold_secs: 5,
            max_failovers: 3,
            redispatch_after_secs: 60,
            cancel_grace_secs: 30,
            executor_prefetch: 0,
            history_retention_days: 30,
            audit_retention_days: 365,
            live_output_interval_ms: 200,
            live_output_chunk_bytes: 64 * 1024,
        }
    }
}

impl SystemConfig {
    /// Largest `max_output_bytes` accepted (16 MiB; a MySQL `MEDIUMTEXT` holds 16 MiB).
    pub const MAX_OUTPUT_BYTES: u32 = 16 * 1024 * 1024;

    /// Checks the ranges; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.max_output_bytes < 256 || self.max_output_bytes > Self::MAX_OUTPUT_BYTES {
            return Err(Error::invalid(
                "max_output_bytes",
                format!(
                    "must be between 256 and {}, got {}",
                    Self::MAX_OUTPUT_BYTES,
                    self.max_output_bytes
                ),
            ));
        }
        for (field, v, min, max) in [
            ("kill_grace_secs", self.kill_grace_secs, 0, 600),
            ("timeout_grace_secs", self.timeout_grace_secs, 1, 3600),
            (
                "misfire_threshold_secs",
                self.misfire_threshold_secs,
                1,
                86_400,
            ),
            ("max_failovers", self.max_failovers, 0, 100),
            (
                "redispatch_after_secs",
                self.redispatch_after_secs,
                1,
                86_400,
            ),
            ("cancel_grace_secs", self.cancel_grace_secs, 1, 3600),
            ("executor_prefetch", self.executor_prefetch, 0, 10_000),
            (
                "history_retention_days",
                self.history_retention_days,
                0,
                36_500,
            ),
            ("audit_retention_days", self.audit_retention_days, 0, 36_500),
            (
                "live_output_interval_ms",
                self.live_output_interval_ms,
                20,
                60_000,
            ),
            (
                "live_output_chunk_bytes",
                self.live_output_chunk_bytes,
                0,
                262_144,
            ),
        ] {
            if v < min || v > max {
                return Err(Error::invalid(
                    field,
                    format!("must be between {min} and {max}, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_unknown_fields_named() {
        SystemConfig::default().validate().unwrap();
        let e = serde_json::from_str::<SystemConfig>(r#"{"max_output_byte": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_output_byte"), "{e}");
        let c: SystemConfig = serde_json::from_str(r#"{"kill_grace_secs": 1}"#).unwrap();
        assert_eq!(c.kill_grace_secs, 1);
        assert_eq!(c.max_output_bytes, 65536);
        let e = SystemConfig {
            timeout_grace_secs: 0,
            ..c
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("timeout_grace_secs"), "{e}");
    }
}
