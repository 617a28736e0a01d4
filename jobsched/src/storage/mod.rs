//! Storage: the durable source of truth for jobs, execution records, executors and settings.
//!
//! The engine keeps caches and timers in memory, but every state an attempt goes through is a conditional
//! write here, so a scheduler that restarts (or a standby that takes over) rebuilds everything from storage.
//! Two guarantees make several schedulers safe:
//!
//! * **A fire is recorded once.** [`Storage::insert_executions`] stores the first attempt of a scheduled fire
//!   only if no record with the same `(job_id, scheduled_time)` exists; a second attempt returns
//!   [`InsertOutcome::AlreadyFired`].
//! * **A transition is applied once.** [`Storage::update_executions`] changes an attempt only if it is still
//!   in the expected state (see [`Expect`]); a duplicate or stale update returns [`UpdateOutcome::Stale`].
//!
//! Writes made on behalf of a leader carry a [`Fence`]; a store rejects a fence older than one it has seen
//! ([`crate::Error::Fenced`]), so a scheduler that lost leadership cannot write afterwards.

mod accounts;
mod memory;
mod update_plan;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use accounts::Accounts;
pub use memory::MemoryStorage;
pub use update_plan::{UpdateTarget, apply_updates};

use crate::error::{Error, Result};
use crate::model::{
    AuditEntry, ExecutionQuery, ExecutionRecord, ExecutorHeartbeat, ExecutorId, ExecutorRecord,
    Job, JobId, JobQuery, Page, SystemConfig, TaskId, TaskStatus,
};

/// A fencing token: writes made under leadership or a lock carry it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The election or lock the token belongs to.
    pub scope: String,
    /// The token; grows with every new holder.
    pub token: u64,
}

/// A value with its version (1 for the first write, +1 per write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version.
    pub version: u64,
}

/// One change to the job table, in revision order.
#[derive(Clone, Debug)]
pub struct JobChange {
    /// Store-wide revision of this change; grows with every job write, and changes become visible in
    /// revision order.
    pub revision: u64,
    /// The job.
    pub job_id: JobId,
    /// The job as of this change (shared: the engine keeps it), or `None` if it was deleted.
    pub job: Option<Arc<Job>>,
}

/// One change of a [`Storage::write_jobs`] batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum JobWrite<'a> {
    /// Store a new job (version 1); `AlreadyExists` if its id is live.
    Create(&'a Job),
    /// Replace a live job whose stored version equals `job.version` (else `Conflict`; `NotFound` if
    /// absent); it is stored with version + 1.
    Update(&'a Job),
    /// Delete a live job (leaving a deletion in the change feed), at `expected_version` if given (else
    /// `Conflict`); `NotFound` if absent. Its execution records are kept.
    Delete {
        /// The job.
        job_id: &'a JobId,
        /// The version it must be at.
        expected_version: Option<u64>,
    },
}

impl JobWrite<'_> {
    /// The job this write changes.
    pub fn job_id(&self) -> &JobId {
        match self {
            JobWrite::Create(j) | JobWrite::Update(j) => &j.job_id,
            JobWrite::Delete { job_id, .. } => job_id,
        }
    }
}

/// The state an attempt must be in for an update to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Any active state (`queued`, `dispatched`, `running`).
    Active,
    /// `queued` (not given to an executor).
    Queued,
    /// `dispatched` or `running` on this executor.
    OnExecutor(ExecutorId),
}

/// A conditional change of one attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionUpdate {
    /// The task.
    pub task_id: TaskId,
    /// The attempt.
    pub attempt: u32,
    /// The update applies only in this state.
    pub expect: Expect,
    /// The new status.
    pub status: TaskStatus,
    /// Sets the executor (and its epoch) when given.
    pub executor: Option<(ExecutorId, u64)>,
    /// Sets `start_time` when given.
    pub start_time: Option<DateTime<Utc>>,
    /// Sets `end_time` when given.
    pub end_time: Option<DateTime<Utc>>,
    /// Sets `output` when given.
    pub output: Option<String>,
    /// Sets `error` when given.
    pub error: Option<String>,
    /// Sets `exit_code` when given.
    pub exit_code: Option<i32>,
    /// Inserted in the same transaction if, and only if, the update applies (the next attempt of a retry).
    pub next_attempt: Option<ExecutionRecord>,
}

impl ExecutionUpdate {
    /// An update of `(task_id, attempt)` to `status` under `expect`, changing nothing else.
    pub fn new(task_id: TaskId, attempt: u32, expect: Expect, status: TaskStatus) -> Self {
        ExecutionUpdate {
            task_id,
            attempt,
            expect,
            status,
            executor: None,
            start_time: None,
            end_time: None,
            output: None,
            error: None,
            exit_code: None,
            next_attempt: None,
        }
    }

    /// Applies this update to a record in memory (what a store does when the expectation holds).
    pub fn apply_to(&self, rec: &mut ExecutionRecord) {
        rec.status = self.status;
        if let Some((id, epoch)) = &self.executor {
            rec.executor_id = Some(id.clone());
            rec.executor_epoch = *epoch;
        }
        if let Some(t) = self.start_time {
            rec.start_time = Some(t);
        }
        if let Some(t) = self.end_time {
            rec.end_time = Some(t);
        }
        if let Some(o) = &self.output {
            rec.output.clone_from(o);
        }
        if let Some(e) = &self.error {
            rec.error.clone_from(e);
        }
        if let Some(c) = self.exit_code {
            rec.exit_code = Some(c);
        }
    }

    /// True if `rec` is in the state this update expects.
    pub fn expectation_holds(&self, rec: &ExecutionRecord) -> bool {
        match &self.expect {
            Expect::Active => !rec.status.is_terminal(),
            Expect::Queued => rec.status == TaskStatus::Queued,
            Expect::OnExecutor(e) => {
                matches!(rec.status, TaskStatus::Dispatched | TaskStatus::Running)
                    && rec.executor_id.as_ref() == Some(e)
            }
        }
    }
}

/// What happened to one record of [`Storage::insert_executions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored with this row id.
    Inserted {
        /// The row id.
        id: i64,
    },
    /// A record of the same scheduled fire exists already (another scheduler fired it); nothing stored.
    AlreadyFired {
        /// The task that recorded the fire.
        task_id: TaskId,
    },
}

/// What happened to one update of [`Storage::update_executions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Applied (and its `next_attempt`, if any, inserted with this id).
    Applied {
        /// Row id of the inserted next attempt.
        next_id: Option<i64>,
    },
    /// Not applied: the attempt is not in the expected state.
    Stale {
        /// Its status now.
        status: TaskStatus,
        /// Its executor now.
        executor_id: Option<ExecutorId>,
    },
    /// No such attempt.
    NotFound,
}

/// Durable storage of jobs, execution records, executors and settings.
///
/// Every method is atomic: it takes effect completely or not at all. A call that fails with a retryable
/// error ([`Error::is_retryable`]) may or may not have taken effect; the conditional writes make retrying it
/// safe. Implementations must be usable from many tasks at once.
#[async_trait]
pub trait Storage: Accounts + Send + Sync + fmt::Debug + 'static {
    /// A short name of the backend (`memory`, `mysql`, `sqlite`) for messages.
    fn backend(&self) -> &'static str;

    /// Checks that the store answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Applies job writes and stores `audit` with them, in one transaction: all or none. Each write takes
    /// a new revision of the change feed, in order. An id may appear only once in a batch (else
    /// `Invalid`). Returns the jobs of the `Create` and `Update` writes as stored, in order.
    async fn write_jobs(&self, writes: &[JobWrite<'_>], audit: &[AuditEntry]) -> Result<Vec<Job>>;

    /// Stores new jobs, all or none: fails with `AlreadyExists` naming the first id that is taken. Each
    /// stored job gets version 1 and a new revision; returns them as stored.
    async fn create_jobs(&self, jobs: &[Job]) -> Result<Vec<Job>> {
        let writes: Vec<JobWrite<'_>> = jobs.iter().map(JobWrite::Create).collect();
        self.write_jobs(&writes, &[]).await
    }

    /// One job; `NotFound` if absent.
    async fn get_job(&self, id: &JobId) -> Result<Job>;

    /// The live jobs among `ids` (absent ones are left out), in no particular order.
    async fn get_jobs(&self, ids: &[JobId]) -> Result<Vec<Job>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.get_job(id).await {
                Ok(j) => out.push(j),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Replaces a job if its stored version equals `job.version` (else `Conflict`; `NotFound` if absent).
    /// Stores it with version + 1 and a new revision, and returns it as stored.
    async fn update_job(&self, job: &Job) -> Result<Job> {
        Ok(self
            .write_jobs(&[JobWrite::Update(job)], &[])
            .await?
            .remove(0))
    }

    /// Deletes a job (and records a deletion revision). With `expected_version`, only at that version
    /// (else `Conflict`). `NotFound` if absent. Execution records of the job are kept.
    async fn delete_job(&self, id: &JobId, expected_version: Option<u64>) -> Result<()> {
        self.write_jobs(
            &[JobWrite::Delete {
                job_id: id,
                expected_version,
            }],
            &[],
        )
        .await
        .map(|_| ())
    }

    /// A page of jobs matching the query, ordered by `job_id`.
    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>>;

    /// Changes with revision greater than `after`, oldest first, at most `limit`: the latest state of each
    /// changed job (created, updated or deleted). Used to load every job at start-up (`after = 0`) and to
    /// follow changes made by other schedulers. Revisions are visible in order: once revision `r` is
    /// returned, no change with a smaller revision appears later.
    async fn job_changes(&self, after: u64, limit: usize) -> Result<Vec<JobChange>>;

    /// Inserts execution records (new attempts), in one transaction, returning one outcome per record in
    /// order. **A scheduled fire is recorded exactly once**: a record whose [`fire_key`] is set is inserted
    /// only if no record with the same key exists (else `AlreadyFired`), even under concurrent calls from
    /// several processes. Fails with `Fenced` (storing nothing) if `fence` is older than the newest seen.
    ///
    /// [`fire_key`]: ExecutionRecord::fire_key
    async fn insert_executions(
        &self,
        records: &[ExecutionRecord],
        fence: Option<&Fence>,
    ) -> Result<Vec<InsertOutcome>>;

    /// Applies conditional updates in one transaction, one outcome per update in order. **An update applies
    /// at most once**: only if the attempt is in the state of its [`Expect`]; a repeated or stale update
    /// changes nothing and returns `Stale`. An applied update's `next_attempt` is inserted in the same
    /// transaction. Fails with `Fenced` (changing nothing) if `fence` is older than the newest seen.
    async fn update_executions(
        &self,
        updates: &[ExecutionUpdate],
        fence: Option<&Fence>,
    ) -> Result<Vec<UpdateOutcome>>;

    /// One attempt; `NotFound` if absent.
    async fn get_execution(&self, task_id: &TaskId, attempt: u32) -> Result<ExecutionRecord>;

    /// Every attempt of a task, oldest first; `NotFound` if there is none.
    async fn task_attempts(&self, task_id: &TaskId) -> Result<Vec<ExecutionRecord>>;

    /// A page of execution records matching the query, newest (highest id) first, with the total count.
    async fn list_executions(&self, query: &ExecutionQuery) -> Result<Page<ExecutionRecord>>;

    /// The newest record (highest id) of each of `jobs` that has any, in no particular order: what a
    /// job list shows as each job's last run, in one read. The default asks once per job.
    async fn latest_executions(&self, jobs: &[JobId]) -> Result<Vec<ExecutionRecord>> {
        let mut out = Vec::new();
        for job in jobs {
            let q = ExecutionQuery {
                job_id: Some(job.clone()),
                page: crate::model::PageRequest::new(1, 1)?,
                ..ExecutionQuery::default()
            };
            out.extend(self.list_executions(&q).await?.items);
        }
        Ok(out)
    }

    /// How many attempts ended in each status in each UTC hour of `[from, to)` (by `end_time`), hours
    /// without any left out, oldest first then by status code. What the dashboard charts: stores answer
    /// it with one grouped query. The default pages through [`list_executions`](Self::list_executions)
    /// (for stores that hold little).
    async fn outcome_hours(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<crate::model::OutcomeHour>> {
        const PAGE: u32 = 1000;
        let mut counts = std::collections::BTreeMap::new();
        let mut page = 1;
        loop {
            let q = ExecutionQuery {
                page: crate::model::PageRequest::new(page, PAGE)?,
                ..ExecutionQuery::default()
            };
            let p = self.list_executions(&q).await?;
            for r in &p.items {
                if let Some(end) = r.end_time.filter(|e| *e >= from && *e < to) {
                    counts
                        .entry((crate::model::hour_of(end), r.status.code()))
                        .or_insert((r.status, 0u64))
                        .1 += 1;
                }
            }
            if p.items.len() < PAGE as usize {
                break;
            }
            page += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((hour, _), (status, count))| crate::model::OutcomeHour {
                hour,
                status,
                count,
            })
            .collect())
    }

    /// Active (queued, dispatched, running) records with `id > after_id`, by id, at most `limit`: what a
    /// scheduler loads to take over.
    async fn active_executions(&self, after_id: i64, limit: usize) -> Result<Vec<ExecutionRecord>>;

    /// Takes a fencing token for `scope` that exceeds every token stored or used for it so far: the
    /// stored token becomes `max(stored, candidate) + 1` and is returned. From then on fenced writes under
    /// any older token are refused with `Fenced`; the claim waits for fenced writes in flight to end. A
    /// new holder (an elected scheduler) claims before it reads anything, so a predecessor that wakes up
    /// late cannot write while the new one loads, and tokens keep growing even when the coordinator that
    /// elected it lost its data or restarted its counters.
    async fn claim_fence(&self, scope: &str, candidate: u64) -> Result<u64>;

    /// Deletes up to `limit` ended records whose `end_time` is before `before`, except those of jobs
    /// with their own `retention_days` (see [`purge_job_executions`](Self::purge_job_executions));
    /// returns how many.
    async fn purge_executions(&self, before: DateTime<Utc>, limit: usize) -> Result<u64>;

    /// Deletes up to `limit` ended records of job `job`: those whose `end_time` is before `before` (if
    /// given) and those beyond its newest `keep` ended records (if `keep > 0`; newest by record id).
    /// Returns how many. Records not ended are never deleted.
    async fn purge_job_executions(
        &self,
        job: &JobId,
        before: Option<DateTime<Utc>>,
        keep: u32,
        limit: usize,
    ) -> Result<u64>;

    /// Inserts an executor or updates it. Updates every field except `enabled`, which keeps its stored
    /// value (an operator's choice survives re-registration); on insert the given `enabled` is stored.
    /// Returns the record as stored.
    async fn upsert_executor(&self, record: &ExecutorRecord) -> Result<ExecutorRecord>;

    /// Records liveness of several executors at once (status, last heartbeat, running count). Unknown
    /// executors are ignored.
    async fn record_heartbeats(&self, beats: &[ExecutorHeartbeat]) -> Result<()>;

    /// One executor; `NotFound` if absent.
    async fn get_executor(&self, id: &ExecutorId) -> Result<ExecutorRecord>;

    /// Every executor, by id.
    async fn list_executors(&self) -> Result<Vec<ExecutorRecord>>;

    /// Enables or disables an executor and stores `audit` with the change; returns it. `NotFound` if
    /// absent. Idempotent.
    async fn set_executor_enabled(
        &self,
        id: &ExecutorId,
        enabled: bool,
        audit: &[AuditEntry],
    ) -> Result<ExecutorRecord>;

    /// A setting, with its version.
    async fn get_value(&self, key: &str) -> Result<Option<Versioned<String>>>;

    /// Writes a setting, returning its new version. `expected_version`: `None` writes unconditionally,
    /// `Some(0)` only if absent, `Some(v)` only at version `v` (else `Conflict`). Fenced like the other
    /// leader writes. `audit` is stored in the same transaction.
    async fn put_value(
        &self,
        key: &str,
        value: &str,
        expected_version: Option<u64>,
        fence: Option<&Fence>,
        audit: &[AuditEntry],
    ) -> Result<u64>;
}

/// Keys of the settings jobsched keeps through [`Storage::put_value`].
pub mod keys {
    /// The [`SystemConfig`](crate::SystemConfig) as JSON.
    pub const SYSTEM_CONFIG: &str = "system.config";
    /// The time up to which the active scheduler has handled every fire (RFC 3339).
    pub const WATERMARK: &str = "scheduler.watermark";
}

/// Typed conveniences over [`Storage`].
#[async_trait]
pub trait StorageExt: Storage {
    /// The stored system configuration (defaults if none is stored).
    async fn system_config(&self) -> Result<Versioned<SystemConfig>> {
        match self.get_value(keys::SYSTEM_CONFIG).await? {
            None => Ok(Versioned {
                value: SystemConfig::default(),
                version: 0,
            }),
            Some(v) => {
                let value = serde_json::from_str(&v.value).map_err(|e| {
                    Error::backend(
                        self.backend(),
                        format!("stored system config is not valid: {e}"),
                    )
                })?;
                Ok(Versioned {
                    value,
                    version: v.version,
                })
            }
        }
    }

    /// Stores the system configuration after validating it, with `audit`.
    async fn put_system_config(
        &self,
        config: &SystemConfig,
        expected_version: Option<u64>,
        audit: &[AuditEntry],
    ) -> Result<u64> {
        config.validate()?;
        let json = serde_json::to_string(config).expect("config serialises");
        self.put_value(keys::SYSTEM_CONFIG, &json, expected_version, None, audit)
            .await
    }

    /// Looks up a job and returns `None` when it does not exist.
    async fn find_job(&self, id: &JobId) -> Result<Option<Job>> {
        match self.get_job(id).await {
            Ok(j) => Ok(Some(j)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<S: Storage + ?Sized> StorageExt for S {}
