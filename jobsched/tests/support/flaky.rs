//! A store that can be switched off: every call fails as `Unavailable` while it is down.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobsched::storage::{
    Accounts, ExecutionUpdate, Fence, InsertOutcome, JobChange, JobWrite, MemoryStorage, Storage,
    UpdateOutcome, Versioned,
};
use jobsched::{
    AuditEntry, Error, ExecutionQuery, ExecutionRecord, ExecutorHeartbeat, ExecutorId,
    ExecutorRecord, Job, JobId, JobQuery, Page, Result, TaskId,
};

#[derive(Debug, Default)]
pub struct Flaky {
    inner: MemoryStorage,
    down: AtomicBool,
    pub refused: AtomicU64,
    /// Milliseconds each insert takes after it has been applied (a slow network round trip).
    insert_delay_ms: AtomicU64,
    /// Refuse (as `Invalid`, like MySQL's error 1366 on a latin1 column) any update batch whose output
    /// holds a character outside Latin-1.
    latin1: AtomicBool,
}

impl Flaky {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
    pub fn set_insert_delay(&self, d: std::time::Duration) {
        self.insert_delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn set_latin1(&self, on: bool) {
        self.latin1.store(on, Ordering::SeqCst);
    }

    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Err(Error::unavailable("flaky", "the store is down"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Storage for Flaky {
    fn backend(&self) -> &'static str {
        "flaky"
    }
    async fn ping(&self) -> Result<()> {
        self.check()?;
        self.inner.ping().await
    }
    async fn write_jobs(&self, w: &[JobWrite<'_>], a: &[AuditEntry]) -> Result<Vec<Job>> {
        self.check()?;
        self.inner.write_jobs(w, a).await
    }
    async fn get_job(&self, id: &JobId) -> Result<Job> {
        self.check()?;
        self.inner.get_job(id).await
    }
    async fn list_jobs(&self, q: &JobQuery) -> Result<Page<Job>> {
        self.check()?;
        self.inner.list_jobs(q).await
    }
    async fn job_changes(&self, after: u64, limit: usize) -> Result<Vec<JobChange>> {
        self.check()?;
        self.inner.job_changes(after, limit).await
    }
    async fn insert_executions(
        &self,
        r: &[ExecutionRecord],
        f: Option<&Fence>,
    ) -> Result<Vec<InsertOutcome>> {
        self.check()?;
        let out = self.inner.insert_executions(r, f).await;
        let delay = self.insert_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        out
    }
    async fn update_executions(
        &self,
        u: &[ExecutionUpdate],
        f: Option<&Fence>,
    ) -> Result<Vec<UpdateOutcome>> {
        self.check()?;
        let wide = |t: &Option<String>| {
            t.as_deref()
                .is_some_and(|t| t.chars().any(|c| c as u32 > 0xff))
        };
        if self.latin1.load(Ordering::SeqCst) && u.iter().any(|u| wide(&u.output) || wide(&u.error))
        {
            return Err(Error::invalid(
                "output",
                "Incorrect string value: '\\xE2\\x9C\\x93' for column 'output'",
            ));
        }
        self.inner.update_executions(u, f).await
    }
    async fn claim_fence(&self, scope: &str, candidate: u64) -> Result<u64> {
        self.check()?;
        self.inner.claim_fence(scope, candidate).await
    }
    async fn get_execution(&self, t: &TaskId, a: u32) -> Result<ExecutionRecord> {
        self.check()?;
        self.inner.get_execution(t, a).await
    }
    async fn task_attempts(&self, t: &TaskId) -> Result<Vec<ExecutionRecord>> {
        self.check()?;
        self.inner.task_attempts(t).await
    }
    async fn list_executions(&self, q: &ExecutionQuery) -> Result<Page<ExecutionRecord>> {
        self.check()?;
        self.inner.list_executions(q).await
    }
    async fn active_executions(&self, after: i64, limit: usize) -> Result<Vec<ExecutionRecord>> {
        self.check()?;
        self.inner.active_executions(after, limit).await
    }
    async fn purge_executions(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        self.check()?;
        self.inner.purge_executions(before, limit).await
    }
    async fn purge_job_executions(
        &self,
        job: &JobId,
        before: Option<DateTime<Utc>>,
        keep: u32,
        limit: usize,
    ) -> Result<u64> {
        self.check()?;
        self.inner
            .purge_job_executions(job, before, keep, limit)
            .await
    }
    async fn upsert_executor(&self, r: &ExecutorRecord) -> Result<ExecutorRecord> {
        self.check()?;
        self.inner.upsert_executor(r).await
    }
    async fn record_heartbeats(&self, b: &[ExecutorHeartbeat]) -> Result<()> {
        self.check()?;
        self.inner.record_heartbeats(b).await
    }
    async fn get_executor(&self, id: &ExecutorId) -> Result<ExecutorRecord> {
        self.check()?;
        self.inner.get_executor(id).await
    }
    async fn list_executors(&self) -> Result<Vec<ExecutorRecord>> {
        self.check()?;
        self.inner.list_executors().await
    }
    async fn set_executor_enabled(
        &self,
        id: &ExecutorId,
        e: bool,
        a: &[AuditEntry],
    ) -> Result<ExecutorRecord> {
        self.check()?;
        self.inner.set_executor_enabled(id, e, a).await
    }
    async fn get_value(&self, k: &str) -> Result<Option<Versioned<String>>> {
        self.check()?;
        self.inner.get_value(k).await
    }
    async fn put_value(
        &self,
        k: &str,
        v: &str,
        e: Option<u64>,
        f: Option<&Fence>,
        a: &[AuditEntry],
    ) -> Result<u64> {
        self.check()?;
        self.inner.put_value(k, v, e, f, a).await
    }
}

impl Accounts for Flaky {}
