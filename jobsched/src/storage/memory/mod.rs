//! In-process storage: complete and thread-safe, kept in memory (lost when the process ends).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::fastmap::FastMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

mod accounts;
mod purge;
mod records;
mod stats;

use records::Records;

use super::{
    ExecutionUpdate, Fence, InsertOutcome, JobChange, JobWrite, Storage, UpdateOutcome, Versioned,
};
use crate::error::{Error, Result};
use crate::model::{
    AuditEntry, ExecutionQuery, ExecutionRecord, ExecutorHeartbeat, ExecutorId, ExecutorRecord,
    Job, JobId, JobQuery, Page, TaskId,
};

const BACKEND: &str = "memory";

/// Storage in memory, for embedding and tests. Every guarantee of [`Storage`] holds within the process.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every job ever stored with its latest revision; `None` for a deleted one (its tombstone). One map
    /// for both: a million jobs make every per-job byte count.
    jobs: FastMap<JobId, (Option<Arc<Job>>, u64)>,
    /// The latest revision of each job, in revision order (the change feed).
    changes: BTreeMap<u64, JobId>,
    revision: u64,
    records: Records,
    /// Record ids of each task's attempts: `(attempt, id)`, in attempt order.
    by_task: FastMap<TaskId, Vec<(u32, i64)>>,
    /// Record ids per job, ascending (ids only grow).
    by_job: FastMap<JobId, Vec<i64>>,
    fires: FastMap<(JobId, i64), TaskId>,
    active: BTreeSet<i64>,
    next_id: i64,
    executors: BTreeMap<ExecutorId, ExecutorRecord>,
    kv: HashMap<String, Versioned<String>>,
    fences: HashMap<String, u64>,
    accounts: accounts::AccountData,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The critical sections never leave the data half-changed, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn check_fence(&mut self, fence: Option<&Fence>) -> Result<()> {
        let Some(f) = fence else { return Ok(()) };
        let current = self.fences.entry(f.scope.clone()).or_insert(0);
        if f.token < *current {
            return Err(Error::Fenced {
                scope: f.scope.clone(),
                token: f.token,
                current: *current,
            });
        }
        *current = f.token;
        Ok(())
    }

    fn record_change(&mut self, id: &JobId, job: Option<Arc<Job>>) -> u64 {
        self.revision += 1;
        let rev = self.revision;
        // Only the latest change of a job is kept; a re-created job replaces its tombstone.
        let slot = self.jobs.entry(id.clone()).or_insert((None, 0));
        if slot.1 != 0 {
            self.changes.remove(&slot.1);
        }
        *slot = (job, rev);
        self.changes.insert(rev, id.clone());
        rev
    }

    fn attempt_id(&self, task: &TaskId, attempt: u32) -> Option<i64> {
        self.by_task
            .get(task)?
            .iter()
            .find(|(a, _)| *a == attempt)
            .map(|(_, id)| *id)
    }

    /// Fails with `AlreadyExists` if any of `keys` is stored already or repeated, before anything changes.
    fn check_new_attempts<'a>(&self, keys: impl Iterator<Item = (&'a TaskId, u32)>) -> Result<()> {
        let mut seen: crate::fastmap::FastSet<(&TaskId, u32)> = Default::default();
        for (task, attempt) in keys {
            if self.attempt_id(task, attempt).is_some() || !seen.insert((task, attempt)) {
                return Err(Error::AlreadyExists {
                    kind: "task attempt",
                    id: format!("{task}#{attempt}"),
                });
            }
        }
        Ok(())
    }

    /// Reverts a partly applied update batch: restores changed records, removes inserted ones.
    fn undo(&mut self, changed: Vec<(i64, ExecutionRecord)>, inserted: Vec<i64>) {
        for id in inserted.into_iter().rev() {
            if let Some(rec) = self.records.get(id).cloned() {
                self.remove_record(id, &rec);
            }
        }
        for (id, before) in changed.into_iter().rev() {
            if !before.status.is_terminal() {
                self.active.insert(id);
            }
            if let Some(rec) = self.records.get_mut(id) {
                *rec = before;
            }
        }
    }

    /// Drops a record and its index entries.
    fn remove_record(&mut self, id: i64, rec: &ExecutionRecord) {
        self.records.remove(id);
        self.active.remove(&id);
        if let Some(v) = self.by_task.get_mut(&rec.task_id) {
            v.retain(|(a, _)| *a != rec.attempt);
            if v.is_empty() {
                self.by_task.remove(&rec.task_id);
            }
        }
        if let Some(s) = self.by_job.get_mut(&rec.job_id) {
            s.retain(|x| *x != id);
        }
        if let Some((job, at)) = rec.fire_key() {
            self.fires.remove(&(job.clone(), at.timestamp_millis()));
        }
    }

    fn job(&self, id: &JobId) -> Option<&Arc<Job>> {
        self.jobs.get(id).and_then(|(j, _)| j.as_ref())
    }

    fn insert_record(&mut self, mut rec: ExecutionRecord) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        rec.id = id;
        if let Some((job, at)) = rec.fire_key() {
            self.fires
                .insert((job.clone(), at.timestamp_millis()), rec.task_id.clone());
        }
        if !rec.status.is_terminal() {
            self.active.insert(id);
        }
        self.by_task
            .entry(rec.task_id.clone())
            .or_default()
            .push((rec.attempt, id));
        self.by_job.entry(rec.job_id.clone()).or_default().push(id);
        self.records.insert(id, rec);
        id
    }

    fn matches(q: &ExecutionQuery, r: &ExecutionRecord) -> bool {
        q.job_id.as_ref().is_none_or(|j| *j == r.job_id)
            && q.task_id.as_ref().is_none_or(|t| *t == r.task_id)
            && (q.statuses.is_empty() || q.statuses.contains(&r.status))
            && q.executor_id
                .as_ref()
                .is_none_or(|e| r.executor_id.as_ref() == Some(e))
            && q.from.is_none_or(|f| r.scheduled_time >= f)
            && q.to.is_none_or(|t| r.scheduled_time < t)
            && q.after_id.is_none_or(|a| r.id > a)
            && q.created_from.is_none_or(|t| r.create_time >= t)
    }
}

fn page<T>(items: impl Iterator<Item = T>, req: crate::model::PageRequest) -> Page<T> {
    let mut total = 0u64;
    let skip = req.offset();
    let take = req.limit();
    let mut out = Vec::new();
    for item in items {
        if total >= skip && (out.len() as u64) < take {
            out.push(item);
        }
        total += 1;
    }
    Page::counted(out, total, req)
}

#[async_trait]
impl Storage for MemoryStorage {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn write_jobs(&self, writes: &[JobWrite<'_>], audit: &[AuditEntry]) -> Result<Vec<Job>> {
        let mut g = self.lock();
        // Check every write before changing anything: the batch is all or none.
        let mut seen = std::collections::HashSet::new();
        for w in writes {
            let id = w.job_id();
            if !seen.insert(id) {
                return Err(match w {
                    JobWrite::Create(_) => Error::AlreadyExists {
                        kind: "job",
                        id: id.to_string(),
                    },
                    _ => Error::invalid(
                        "jobs",
                        format!("job '{id}' appears more than once in one batch"),
                    ),
                });
            }
            let stored = g.job(id).map(|j| j.version);
            match (w, stored) {
                (JobWrite::Create(_), Some(_)) => {
                    return Err(Error::AlreadyExists {
                        kind: "job",
                        id: id.to_string(),
                    });
                }
                (JobWrite::Create(_), None) => {}
                (_, None) => return Err(Error::not_found("job", id.as_str())),
                (JobWrite::Update(j), Some(v)) => check_version(id, v, Some(j.version), "update")?,
                (
                    JobWrite::Delete {
                        expected_version, ..
                    },
                    Some(v),
                ) => {
                    check_version(id, v, *expected_version, "delete")?;
                }
            }
        }
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            match w {
                JobWrite::Create(j) | JobWrite::Update(j) => {
                    let mut job = (*j).clone();
                    job.version = g.job(&j.job_id).map_or(1, |s| s.version + 1);
                    let job = Arc::new(job);
                    g.record_change(&job.job_id, Some(job.clone()));
                    out.push((*job).clone());
                }
                JobWrite::Delete { job_id, .. } => {
                    g.record_change(job_id, None);
                }
            }
        }
        g.accounts.append_audit(audit);
        Ok(out)
    }

    async fn get_job(&self, id: &JobId) -> Result<Job> {
        self.lock()
            .job(id)
            .map(|j| (**j).clone())
            .ok_or_else(|| Error::not_found("job", id.as_str()))
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Page<Job>> {
        Ok(self.lock().list_jobs(query))
    }

    async fn job_changes(&self, after: u64, limit: usize) -> Result<Vec<JobChange>> {
        let g = self.lock();
        Ok(g.changes
            .range(after + 1..)
            .take(limit)
            .map(|(rev, id)| JobChange {
                revision: *rev,
                job_id: id.clone(),
                job: g.job(id).cloned(),
            })
            .collect())
    }

    async fn insert_executions(
        &self,
        records: &[ExecutionRecord],
        fence: Option<&Fence>,
    ) -> Result<Vec<InsertOutcome>> {
        let mut g = self.lock();
        g.check_new_attempts(records.iter().map(|r| (&r.task_id, r.attempt)))?;
        g.check_fence(fence)?;
        let mut out = Vec::with_capacity(records.len());
        for rec in records {
            if let Some((job, at)) = rec.fire_key() {
                if let Some(existing) = g.fires.get(&(job.clone(), at.timestamp_millis())) {
                    out.push(InsertOutcome::AlreadyFired {
                        task_id: existing.clone(),
                    });
                    continue;
                }
            }
            let id = g.insert_record(rec.clone());
            out.push(InsertOutcome::Inserted { id });
        }
        Ok(out)
    }

    async fn update_executions(
        &self,
        updates: &[ExecutionUpdate],
        fence: Option<&Fence>,
    ) -> Result<Vec<UpdateOutcome>> {
        let mut g = self.lock();
        g.check_fence(fence)?;
        // Like a transaction: if an applied update's next attempt is taken, everything is undone. That can
        // only happen if some next attempt's key exists (or repeats) already; otherwise keep no undo log.
        let may_collide = g
            .check_new_attempts(
                updates
                    .iter()
                    .filter_map(|u| u.next_attempt.as_ref())
                    .map(|n| (&n.task_id, n.attempt)),
            )
            .is_err();
        let mut target = Target {
            g: &mut g,
            keep_undo: may_collide,
            undo: Vec::new(),
            inserted: Vec::new(),
        };
        match super::apply_updates(&mut target, updates) {
            Ok(out) => Ok(out),
            Err(e) => {
                let (undo, inserted) = (target.undo, target.inserted);
                g.undo(undo, inserted);
                Err(e)
            }
        }
    }

    async fn get_execution(&self, task_id: &TaskId, attempt: u32) -> Result<ExecutionRecord> {
        let g = self.lock();
        g.attempt_id(task_id, attempt)
            .and_then(|id| g.records.get(id))
            .cloned()
            .ok_or_else(|| Error::not_found("task attempt", format!("{task_id}#{attempt}")))
    }

    async fn task_attempts(&self, task_id: &TaskId) -> Result<Vec<ExecutionRecord>> {
        let g = self.lock();
        let mut out: Vec<ExecutionRecord> = g
            .by_task
            .get(task_id)
            .into_iter()
            .flatten()
            .filter_map(|(_, id)| g.records.get(*id).cloned())
            .collect();
        out.sort_by_key(|r| r.attempt);
        if out.is_empty() {
            return Err(Error::not_found("task", task_id.as_str()));
        }
        Ok(out)
    }

    async fn list_executions(&self, query: &ExecutionQuery) -> Result<Page<ExecutionRecord>> {
        let g = self.lock();
        let filtered = |r: &&ExecutionRecord| Inner::matches(query, r);
        let result = if let Some(job) = &query.job_id {
            let ids = g.by_job.get(job);
            page(
                ids.into_iter()
                    .flat_map(|s| s.iter().rev())
                    .filter_map(|id| g.records.get(*id))
                    .filter(filtered)
                    .cloned(),
                query.page,
            )
        } else if !query.statuses.is_empty() && query.statuses.iter().all(|s| !s.is_terminal()) {
            page(
                g.active
                    .iter()
                    .rev()
                    .filter_map(|id| g.records.get(*id))
                    .filter(filtered)
                    .cloned(),
                query.page,
            )
        } else {
            page(g.records.iter().rev().filter(filtered).cloned(), query.page)
        };
        Ok(result)
    }

    async fn latest_executions(&self, jobs: &[JobId]) -> Result<Vec<ExecutionRecord>> {
        Ok(self.lock().latest(jobs))
    }

    async fn outcome_hours(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<crate::model::OutcomeHour>> {
        Ok(self.lock().outcome_hours(from, to))
    }

    async fn active_executions(&self, after_id: i64, limit: usize) -> Result<Vec<ExecutionRecord>> {
        let g = self.lock();
        Ok(g.active
            .range(after_id + 1..)
            .take(limit)
            .filter_map(|id| g.records.get(*id).cloned())
            .collect())
    }

    async fn claim_fence(&self, scope: &str, candidate: u64) -> Result<u64> {
        let mut g = self.lock();
        let current = g.fences.entry(scope.to_owned()).or_insert(0);
        *current = (*current).max(candidate).saturating_add(1);
        Ok(*current)
    }

    async fn purge_executions(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        Ok(self.lock().purge(before, limit))
    }

    async fn purge_job_executions(
        &self,
        job: &JobId,
        before: Option<DateTime<Utc>>,
        keep: u32,
        limit: usize,
    ) -> Result<u64> {
        Ok(self.lock().purge_job(job, before, keep, limit))
    }

    async fn upsert_executor(&self, record: &ExecutorRecord) -> Result<ExecutorRecord> {
        let mut g = self.lock();
        let mut rec = record.clone();
        if let Some(existing) = g.executors.get(&record.executor_id) {
            rec.enabled = existing.enabled;
        }
        g.executors.insert(rec.executor_id.clone(), rec.clone());
        Ok(rec)
    }

    async fn record_heartbeats(&self, beats: &[ExecutorHeartbeat]) -> Result<()> {
        let mut g = self.lock();
        for b in beats {
            if let Some(e) = g.executors.get_mut(&b.executor_id) {
                e.status = b.status;
                e.last_heartbeat_time = b.at;
                e.running = b.running;
            }
        }
        Ok(())
    }

    async fn get_executor(&self, id: &ExecutorId) -> Result<ExecutorRecord> {
        self.lock()
            .executors
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found("executor", id.as_str()))
    }

    async fn list_executors(&self) -> Result<Vec<ExecutorRecord>> {
        Ok(self.lock().executors.values().cloned().collect())
    }

    async fn set_executor_enabled(
        &self,
        id: &ExecutorId,
        enabled: bool,
        audit: &[AuditEntry],
    ) -> Result<ExecutorRecord> {
        let mut g = self.lock();
        let e = g
            .executors
            .get_mut(id)
            .ok_or_else(|| Error::not_found("executor", id.as_str()))?;
        e.enabled = enabled;
        let out = e.clone();
        g.accounts.append_audit(audit);
        Ok(out)
    }

    async fn get_value(&self, key: &str) -> Result<Option<Versioned<String>>> {
        Ok(self.lock().kv.get(key).cloned())
    }

    async fn put_value(
        &self,
        key: &str,
        value: &str,
        expected_version: Option<u64>,
        fence: Option<&Fence>,
        audit: &[AuditEntry],
    ) -> Result<u64> {
        let mut g = self.lock();
        g.check_fence(fence)?;
        let current = g.kv.get(key).map(|v| v.version).unwrap_or(0);
        if let Some(expected) = expected_version {
            if expected != current {
                return Err(Error::conflict(format!(
                    "setting '{key}' is at version {current}, the write expected version {expected}"
                )));
            }
        }
        let version = current + 1;
        g.kv.insert(
            key.to_owned(),
            Versioned {
                value: value.to_owned(),
                version,
            },
        );
        g.accounts.append_audit(audit);
        Ok(version)
    }
}

/// Fails with `Conflict` unless `stored` is the `expected` version (if one is given).
fn check_version(id: &JobId, stored: u64, expected: Option<u64>, verb: &str) -> Result<()> {
    match expected {
        Some(v) if v != stored => Err(Error::conflict(format!(
            "job '{id}' is at version {stored}, the {verb} was made against version {v}"
        ))),
        _ => Ok(()),
    }
}

/// The store's own records as the target of a batch of updates, with an undo log when the batch may fail.
struct Target<'a> {
    g: &'a mut Inner,
    keep_undo: bool,
    undo: Vec<(i64, ExecutionRecord)>,
    inserted: Vec<i64>,
}

impl super::UpdateTarget for Target<'_> {
    type Slot = i64;

    fn find(&mut self, task_id: &TaskId, attempt: u32) -> Option<i64> {
        self.g.attempt_id(task_id, attempt)
    }

    fn record(&mut self, id: i64) -> &mut ExecutionRecord {
        self.g
            .records
            .get_mut(id)
            .expect("index points at a record")
    }

    fn changing(&mut self, id: i64) {
        if self.keep_undo {
            let before = self.record(id).clone();
            self.undo.push((id, before));
        }
    }

    fn changed(&mut self, id: i64) {
        if self.record(id).status.is_terminal() {
            self.g.active.remove(&id);
        }
    }

    fn insert_next(&mut self, next: &ExecutionRecord) -> Result<Option<i64>> {
        self.g
            .check_new_attempts(std::iter::once((&next.task_id, next.attempt)))?;
        let id = self.g.insert_record(next.clone());
        self.inserted.push(id);
        Ok(Some(id))
    }
}
