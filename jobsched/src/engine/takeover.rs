//! Taking over and keeping up: loading the cluster's state from storage when this process becomes the
//! active scheduler, and adopting what other processes (standbys, a predecessor) wrote since.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tracing::{info, warn};

use super::actor::{Engine, Shared, Ticks};
use super::deferred::{Deferred, RunningMarks, Work};
use super::executor_view::ExecutorView;
use super::fire_plan::JobLoad;
use super::jobs::JobTable;
use super::lifecycle::NoteRun;
use super::task_table::TaskTable;
use super::tasks::Phase;
use super::writes::Writes;
use crate::coord::{CONFIG_KEY, EXECUTORS, NUDGE_KEY, published};
use crate::error::Result;
use crate::fastmap::FastMap;
use crate::model::{ExecutionRecord, JobId, TaskStatus};
use crate::storage::{Fence, StorageExt, keys};

impl Engine {
    /// Takes over: reads configuration, executors, jobs and every active attempt from storage.
    pub async fn load(sh: Arc<Shared>, fence: Fence) -> Result<Engine> {
        let config_rx = sh.coordinator.watch(CONFIG_KEY).await?;
        // Storage holds the record: a broadcast copy that is missing, behind, or at a version storage
        // does not have is replaced by it.
        let sys = match published::publish(sh.coordinator.as_ref(), sh.storage.as_ref()).await {
            Ok(stored) => stored,
            Err(e) => {
                warn!(error = %e, "publishing the stored system configuration failed");
                sh.storage.system_config().await?
            }
        };
        let members = sh.coordinator.members(EXECUTORS).await?;
        let nudge_rx = sh.coordinator.watch(NUDGE_KEY).await?;
        let results = sh.dispatcher.result_inbox().await?;
        let watermark = sh
            .storage
            .get_value(keys::WATERMARK)
            .await?
            .and_then(|v| DateTime::parse_from_rfc3339(&v.value).ok())
            .map(|t| t.with_timezone(&Utc));
        let now = Instant::now();
        let mut execs = ExecutorView::default();
        execs.set_prefetch(sys.value.executor_prefetch);
        let sh_config_concurrency = sh.config.storage_concurrency;
        let mut e = Engine {
            sh,
            fence,
            sys: sys.value,
            sys_version: sys.version,
            jobs: JobTable::default(),
            job_cursor: 0,
            tasks: TaskTable::default(),
            execs,
            results,
            members,
            config_rx,
            nudge_rx,
            writes: Writes::new(sh_config_concurrency),
            deferred: Deferred::default(),
            running_marks: RunningMarks::default(),
            jobs_synced_at: None,
            runs_in_flight: FastMap::default(),
            redispatch_sweep: now + Duration::from_secs(1),
            members_dirty: true,
            sync_dirty: false,
            active_cursor: 0,
            backoff: Duration::ZERO,
            backoff_until: None,
            fenced: None,
            ticks: Ticks {
                heartbeat: now,
                watermark: now,
                poll: now,
                purge: now,
                polls_since_full_scan: 0,
            },
            purge: None,
        };
        let records = e.sh.storage.list_executors().await?;
        for rec in &records {
            let info = crate::model::ExecutorInfo {
                executor_id: rec.executor_id.clone(),
                host: rec.host.clone(),
                port: rec.port,
                capacity: rec.capacity,
                group: rec.group.clone(),
                labels: rec.labels.clone(),
                handlers: rec.handlers.clone(),
                version: String::new(),
            };
            e.execs.set_enabled(&info, rec.enabled);
        }
        e.apply_members().await;
        // Executors that left while no scheduler led (their registration ended before this one looked)
        // are still online in storage: record them offline, as of their last heartbeat.
        let gone: Vec<_> = records
            .iter()
            .filter(|r| r.status == crate::model::ExecutorStatus::Online)
            .filter(|r| !e.execs.get(&r.executor_id).is_some_and(|x| x.online))
            .map(|r| crate::model::ExecutorHeartbeat {
                executor_id: r.executor_id.clone(),
                status: crate::model::ExecutorStatus::Offline,
                at: r.last_heartbeat_time,
                running: 0,
            })
            .collect();
        if !gone.is_empty() {
            info!(
                executors = gone.len(),
                "executors that left before this takeover recorded offline"
            );
            if let Err(err) = e.sh.storage.record_heartbeats(&gone).await {
                tracing::warn!(error = %err, "recording executors offline failed");
            }
        }
        let started = std::time::Instant::now();
        e.sync_jobs(JobLoad::Initial(watermark)).await?;
        e.scan_active(true).await?;
        // Fire times came from the watermark before the active runs were known.
        e.jobs.hold_busy_fixed_delay();
        info!(
            jobs = e.jobs.len(),
            active_tasks = e.tasks.len(),
            executors_online = e.execs.online_count(),
            watermark = ?watermark,
            took_ms = started.elapsed().as_millis() as u64,
            "scheduler state loaded from storage"
        );
        Ok(e)
    }

    /// Re-reads what other processes may have changed: jobs, executors' enabled flags, queued tasks.
    pub async fn sync(&mut self) -> Result<()> {
        self.sync_jobs(JobLoad::Incremental).await?;
        for rec in self.sh.storage.list_executors().await? {
            if let Some(e) = self.execs.get(&rec.executor_id) {
                if e.enabled != rec.enabled {
                    info!(executor_id = %rec.executor_id, enabled = rec.enabled, "executor enabled flag changed");
                    let info = e.info.clone();
                    self.execs.set_enabled(&info, rec.enabled);
                }
            }
        }
        self.ticks.polls_since_full_scan += 1;
        let full = self.ticks.polls_since_full_scan >= 10;
        if full {
            self.ticks.polls_since_full_scan = 0;
        }
        self.scan_active(full).await
    }

    /// Adopts active attempts this engine does not know (written by another process or a predecessor).
    pub async fn scan_active(&mut self, full: bool) -> Result<()> {
        let mut after = if full { 0 } else { self.active_cursor };
        let mut queue_jobs: Vec<JobId> = Vec::new();
        loop {
            let page = self.sh.storage.active_executions(after, 1000).await?;
            let n = page.len();
            for rec in page {
                after = after.max(rec.id);
                self.active_cursor = self.active_cursor.max(rec.id);
                if !self.tasks.knows(&rec) {
                    let queue_policy = self.jobs.get(&rec.job_id).is_some_and(|s| {
                        s.job.overlap_policy == crate::model::OverlapPolicy::Queue
                    });
                    if queue_policy && !queue_jobs.contains(&rec.job_id) {
                        queue_jobs.push(rec.job_id.clone());
                    }
                    self.adopt(rec);
                }
            }
            if n < 1000 {
                break;
            }
        }
        self.fix_held(queue_jobs);
        Ok(())
    }

    /// Takes an active record from storage into memory.
    pub fn adopt(&mut self, rec: ExecutionRecord) {
        let now = self.now();
        let job = self.attach_job(&rec, NoteRun::Active);
        match rec.status {
            TaskStatus::Queued => {
                let phase = if rec.due_time > now {
                    Phase::Waiting
                } else {
                    Phase::Ready
                };
                self.add_task(rec, phase, job);
            }
            TaskStatus::Dispatched | TaskStatus::Running => {
                let exec = rec.executor_id.clone();
                let epoch = rec.executor_epoch;
                let online = exec.as_ref().is_some_and(|e| self.execs.reserve(e, epoch));
                let executor =
                    exec.unwrap_or_else(|| crate::model::ExecutorId::from_trusted("unknown"));
                let phase = if rec.status == TaskStatus::Running {
                    Phase::Running {
                        executor: executor.clone(),
                        epoch,
                    }
                } else {
                    Phase::Dispatched {
                        executor: executor.clone(),
                        epoch,
                    }
                };
                let dispatched = rec.status == TaskStatus::Dispatched;
                let task_id = rec.task_id.clone();
                self.add_task(rec, phase, job);
                if !online {
                    self.deferred.executor_lost(executor, epoch);
                } else if dispatched {
                    // The previous leader may have died between recording and sending: send again now
                    // (an executor ignores a copy of an attempt it already has).
                    if let Some(t) = self.tasks.get(&task_id) {
                        self.deferred.push(Work::Send(vec![t.rec.to_task()]));
                    }
                }
            }
            _ => {}
        }
    }

    /// Puts adopted queued attempts of `overlap_policy = queue` jobs behind their job's active run.
    fn fix_held(&mut self, ids: Vec<JobId>) {
        for id in ids {
            let Some(js) = self.jobs.get_mut(&id) else {
                continue;
            };
            let runs = js.runs_mut();
            let mut active = Vec::new();
            let mut queued = Vec::new();
            for t in runs.active.drain(..) {
                match self.tasks.get(&t).map(|x| x.phase.is_queued()) {
                    Some(true) => queued.push(t),
                    Some(false) => active.push(t),
                    None => {}
                }
            }
            if active.is_empty() && !queued.is_empty() {
                active.push(queued.remove(0));
            }
            runs.active = active;
            for t in queued {
                self.tasks.set_phase(&t, Phase::Held);
                if !runs.held.contains(&t) {
                    runs.held.push_back(t);
                }
            }
        }
    }
}
