//! Executors: what one announces about itself ([`ExecutorInfo`]) and what is stored ([`ExecutorRecord`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::ExecutorId;
use super::status::ExecutorStatus;

/// What an executor announces when it registers (the payload of its membership entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutorInfo {
    /// Its id.
    pub executor_id: ExecutorId,
    /// Host it runs on (for operators; jobsched does not connect to it).
    pub host: String,
    /// Port of its HTTP endpoint, 0 if none.
    pub port: u16,
    /// How many tasks it runs at once.
    pub capacity: u32,
    /// Its group (jobs may ask for one).
    #[serde(default)]
    pub group: String,
    /// Its labels (jobs may ask for some).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The handler types it can run.
    pub handlers: Vec<String>,
    /// jobsched version it runs.
    #[serde(default)]
    pub version: String,
}

/// A stored executor: the design's `executors` columns (`executor_id`, `host`, `port`, `status`,
/// `last_heartbeat_time`, `register_time`) plus capacity, running count, group, labels, handlers and whether
/// an operator disabled it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutorRecord {
    /// Its id.
    pub executor_id: ExecutorId,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Online or offline (numeric code, see [`ExecutorStatus`]).
    pub status: ExecutorStatus,
    /// Last time the scheduler saw it alive.
    pub last_heartbeat_time: DateTime<Utc>,
    /// When it (last) registered.
    pub register_time: DateTime<Utc>,
    /// How many tasks it runs at once.
    pub capacity: u32,
    /// Tasks the scheduler has given it that have not ended (as of the last heartbeat).
    pub running: u32,
    /// Its group.
    pub group: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Handler types it runs.
    pub handlers: Vec<String>,
    /// False when an operator disabled it: it gets no new tasks.
    pub enabled: bool,
}

impl ExecutorRecord {
    /// A record for a newly seen executor, online and enabled.
    pub fn from_info(info: &ExecutorInfo, now: DateTime<Utc>) -> Self {
        ExecutorRecord {
            executor_id: info.executor_id.clone(),
            host: info.host.clone(),
            port: info.port,
            status: ExecutorStatus::Online,
            last_heartbeat_time: now,
            register_time: now,
            capacity: info.capacity,
            running: 0,
            group: info.group.clone(),
            labels: info.labels.clone(),
            handlers: info.handlers.clone(),
            enabled: true,
        }
    }
}

/// A change of an executor's liveness, as the scheduler records it (in batches).
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutorHeartbeat {
    /// Which executor.
    pub executor_id: ExecutorId,
    /// Its status now.
    pub status: ExecutorStatus,
    /// When it was seen.
    pub at: DateTime<Utc>,
    /// Tasks in flight on it.
    pub running: u32,
}
