//! [`Audited`]: the changes the HTTP API makes on behalf of a user, each stored with its audit entries in
//! one transaction (so no change exists without its record), then announced to the engine.

use super::handle::Scheduler;
use crate::coord::published;
use crate::error::Result;
use crate::model::{AuditEntry, ExecutorId, ExecutorRecord, Job, SystemConfig};
use crate::storage::{JobWrite, StorageExt};

/// Changes made through a [`Scheduler`] that store `audit` with them (see [`Scheduler::audited`]).
#[derive(Clone, Copy, Debug)]
pub struct Audited<'a> {
    scheduler: &'a Scheduler,
    audit: &'a [AuditEntry],
}

impl Scheduler {
    /// The changes of this scheduler that store `audit` in the same transaction as the change. The plain
    /// methods ([`Scheduler::create_job`], [`Scheduler::set_executor_enabled`], …) are these with no entry.
    pub fn audited<'a>(&'a self, audit: &'a [AuditEntry]) -> Audited<'a> {
        Audited {
            scheduler: self,
            audit,
        }
    }
}

impl Audited<'_> {
    /// Applies job writes (all or none; see [`Storage::write_jobs`](crate::storage::Storage::write_jobs))
    /// and tells the engine. Returns the created and updated jobs as stored.
    pub async fn write_jobs(&self, writes: &[JobWrite<'_>]) -> Result<Vec<Job>> {
        let stored = self
            .scheduler
            .sh()
            .storage
            .write_jobs(writes, self.audit)
            .await?;
        self.scheduler.changed().await;
        Ok(stored)
    }

    /// Enables or disables an executor (a disabled one gets no new tasks; its running ones finish).
    pub async fn set_executor_enabled(
        &self,
        id: &ExecutorId,
        enabled: bool,
    ) -> Result<ExecutorRecord> {
        let rec = self
            .scheduler
            .sh()
            .storage
            .set_executor_enabled(id, enabled, self.audit)
            .await?;
        self.scheduler.changed().await;
        Ok(rec)
    }

    /// Replaces the system configuration (with `expected_version`, only if unchanged since) and
    /// publishes it to every scheduler and executor through the coordinator. Returns the new version.
    pub async fn update_config(
        &self,
        config: SystemConfig,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        let sh = self.scheduler.sh();
        let version = sh
            .storage
            .put_system_config(&config, expected_version, self.audit)
            .await?;
        published::publish(sh.coordinator.as_ref(), sh.storage.as_ref()).await?;
        Ok(version)
    }
}
