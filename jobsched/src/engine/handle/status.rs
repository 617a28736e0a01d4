//! The [`Scheduler`] handle's views of the system: its status, the fires coming up, the engine's and
//! the dispatcher's statistics, and the readiness of every backend.

use super::*;

impl Scheduler {
    /// A snapshot of the system.
    pub async fn status(&self) -> Result<SystemStatus> {
        let st = &self.sh().storage;
        let one = PageRequest::new(1, 1)?;
        let count = |statuses: Vec<TaskStatus>| {
            let q = ExecutionQuery {
                statuses,
                page: one,
                ..ExecutionQuery::default()
            };
            async move { st.list_executions(&q).await.map(|p| p.total) }
        };
        // The active engine holds every job; elsewhere the store counts them (up to its cap).
        let jobs = match self.engine_stats().await {
            Some(e) => e.jobs,
            None => {
                st.list_jobs(&JobQuery {
                    page: one,
                    ..JobQuery::default()
                })
                .await?
                .total
            }
        };
        let running = count(vec![TaskStatus::Dispatched, TaskStatus::Running]).await?;
        let queued = count(vec![TaskStatus::Queued]).await?;
        // Attempts that ended in the last hour, by status: a range of the end-time index (counting
        // by status over the whole history would read every record of the common statuses).
        let now = self.sh().clock.now();
        let last_hour = OutcomeCounts::of_hours(
            &st.outcome_hours(now - TimeDelta::hours(1), now + TimeDelta::minutes(1))
                .await?,
        );
        let members = self.sh().coordinator.members(EXECUTORS).await?;
        let executors_online = members.borrow().len() as u64;
        let leader = self.sh().coordinator.leader(SCHEDULER_LEADER).await?;
        let schedulers = self
            .sh()
            .coordinator
            .members(SCHEDULERS)
            .await?
            .borrow()
            .len() as u64;
        Ok(SystemStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: self.inner.started.elapsed().as_secs(),
            scheduler_id: self.sh().config.scheduler_id.clone(),
            active: self.is_active(),
            leader,
            schedulers,
            config_version: self.published_config().map_or(0, |c| c.version),
            jobs,
            executors_online,
            running,
            queued,
            last_hour,
            poison_messages: self.sh().dispatcher.stats().poison,
        })
    }

    /// The next `limit` fires of all jobs (or of `owner`'s), soonest first, if this process is the active
    /// scheduler (`None` on a standby, which holds no schedule).
    pub async fn upcoming(&self, limit: usize, owner: Option<&str>) -> Option<Vec<UpcomingFire>> {
        let owner = owner.map(str::to_owned);
        self.ask(|reply| Command::Upcoming {
            limit,
            owner,
            reply,
        })
        .await
        .and_then(|r| r.ok())
    }

    /// The counters of this process's dispatcher (poison and redelivered messages).
    pub fn dispatch_stats(&self) -> crate::dispatch::DispatchStats {
        self.sh().dispatcher.stats()
    }

    /// What the engine holds in memory, if this process is the active scheduler.
    pub async fn engine_stats(&self) -> Option<EngineStats> {
        self.ask(|reply| Command::Stats { reply })
            .await
            .and_then(|r| r.ok())
    }

    /// Checks every backend (for `/readyz`).
    pub async fn ready(&self) -> Result<()> {
        self.sh().storage.ping().await?;
        self.sh().dispatcher.ping().await?;
        self.sh().coordinator.ping().await
    }
}
