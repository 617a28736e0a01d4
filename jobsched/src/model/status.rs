//! Status enums with their stable numeric codes (the design stores them as `TINYINT` and sends `status` as an
//! integer). The codes are part of the wire format and the schema: never renumber them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The state of one attempt of a task (a `job_logs` row, a result message's `status`).
///
/// | code | status | terminal |
/// |---|---|---|
/// | 0 | `queued`: recorded, waiting for an executor or for its retry time | no |
/// | 1 | `succeeded` | yes |
/// | 2 | `failed` | yes |
/// | 3 | `timed_out`: ran longer than its timeout and was killed | yes |
/// | 4 | `cancelled` | yes |
/// | 5 | `running`: an executor started it | no |
/// | 6 | `dispatched`: sent to an executor, not yet started | no |
/// | 7 | `lost`: its executor died or was declared dead; a new attempt takes over if allowed | yes |
/// | 8 | `skipped`: fired while an earlier run was active and the overlap policy said skip | yes |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum TaskStatus {
    /// Recorded, waiting for an executor with capacity or for its retry time.
    Queued = 0,
    /// Finished successfully.
    Succeeded = 1,
    /// Finished with an error or a non-zero exit code.
    Failed = 2,
    /// Ran longer than its timeout and was killed.
    TimedOut = 3,
    /// Cancelled by a user or by the overlap policy `replace`.
    Cancelled = 4,
    /// Started on an executor.
    Running = 5,
    /// Sent to an executor, not yet started.
    Dispatched = 6,
    /// The executor running it was lost.
    Lost = 7,
    /// Not run because of the job's overlap policy.
    Skipped = 8,
}

impl TaskStatus {
    /// Every status, in code order.
    pub const ALL: [TaskStatus; 9] = [
        TaskStatus::Queued,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::TimedOut,
        TaskStatus::Cancelled,
        TaskStatus::Running,
        TaskStatus::Dispatched,
        TaskStatus::Lost,
        TaskStatus::Skipped,
    ];

    /// The statuses an attempt can still leave.
    pub const ACTIVE: [TaskStatus; 3] = [
        TaskStatus::Queued,
        TaskStatus::Dispatched,
        TaskStatus::Running,
    ];

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status for a numeric code.
    pub fn from_code(code: u8) -> Result<Self> {
        Self::ALL
            .get(code as usize)
            .copied()
            .ok_or_else(|| Error::invalid("status", format!("unknown task status code {code}")))
    }

    /// The lower-case name used in the API and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::TimedOut => "timed_out",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Running => "running",
            TaskStatus::Dispatched => "dispatched",
            TaskStatus::Lost => "lost",
            TaskStatus::Skipped => "skipped",
        }
    }

    /// Parses a name as returned by [`TaskStatus::as_str`], or a numeric code.
    pub fn parse(s: &str) -> Result<Self> {
        if let Ok(code) = s.parse::<u8>() {
            return Self::from_code(code);
        }
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "unknown status '{s}'; expected one of {}",
                        Self::ALL.map(|s| s.as_str()).join(", ")
                    ),
                )
            })
    }

    /// True once the attempt can no longer change.
    pub fn is_terminal(self) -> bool {
        !Self::ACTIVE.contains(&self)
    }

    /// True for the outcomes that may be retried (failed, timed out, lost).
    pub fn is_retryable_failure(self) -> bool {
        matches!(
            self,
            TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Lost
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An integer schema with the codes of a status enum, for the OpenAPI document.
#[cfg(feature = "openapi")]
fn code_schema(
    codes: impl Iterator<Item = (u8, &'static str)>,
    what: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let codes: Vec<(u8, &str)> = codes.collect();
    let described = codes
        .iter()
        .map(|(c, n)| format!("{c} = {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .enum_values(Some(codes.iter().map(|(c, _)| *c)))
        .description(Some(format!("{what} as its numeric code: {described}")))
        .into()
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for TaskStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        code_schema(
            TaskStatus::ALL.iter().map(|s| (s.code(), s.as_str())),
            "The attempt's status",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for TaskStatus {}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ExecutorStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        code_schema(
            [ExecutorStatus::Offline, ExecutorStatus::Online]
                .iter()
                .map(|s| (s.code(), s.as_str())),
            "The executor's status",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ExecutorStatus {}

impl Serialize for TaskStatus {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let code = u8::deserialize(d)?;
        TaskStatus::from_code(code).map_err(serde::de::Error::custom)
    }
}

/// Whether an executor is reachable (the design's `executors.status`).
///
/// | code | status |
/// |---|---|
/// | 0 | `offline`: its session ended or its heartbeats stopped |
/// | 1 | `online` |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExecutorStatus {
    /// Not reachable: its registration is gone.
    Offline = 0,
    /// Registered and heartbeating.
    Online = 1,
}

impl ExecutorStatus {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status for a numeric code.
    pub fn from_code(code: u8) -> Result<Self> {
        match code {
            0 => Ok(ExecutorStatus::Offline),
            1 => Ok(ExecutorStatus::Online),
            _ => Err(Error::invalid(
                "status",
                format!("unknown executor status code {code}"),
            )),
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorStatus::Offline => "offline",
            ExecutorStatus::Online => "online",
        }
    }
}

impl fmt::Display for ExecutorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ExecutorStatus {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for ExecutorStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let code = u8::deserialize(d)?;
        ExecutorStatus::from_code(code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_stable() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::from_code(s.code()).unwrap(), s);
            assert_eq!(TaskStatus::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(
            TaskStatus::Succeeded.code(),
            1,
            "design §4.2.2 sends 1 for success"
        );
        assert_eq!(serde_json::to_string(&TaskStatus::Failed).unwrap(), "2");
        assert!(TaskStatus::from_code(42).is_err());
        assert!(
            TaskStatus::parse("nope")
                .unwrap_err()
                .to_string()
                .contains("succeeded")
        );
    }

    #[test]
    fn terminal_statuses() {
        assert!(!TaskStatus::Queued.is_terminal());
        assert!(!TaskStatus::Running.is_terminal());
        assert!(!TaskStatus::Dispatched.is_terminal());
        for s in [
            TaskStatus::Succeeded,
            TaskStatus::Failed,
            TaskStatus::TimedOut,
            TaskStatus::Cancelled,
            TaskStatus::Lost,
            TaskStatus::Skipped,
        ] {
            assert!(s.is_terminal(), "{s}");
        }
    }
}
