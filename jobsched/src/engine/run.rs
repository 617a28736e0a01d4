//! The engine loop: wait for the next event (a result batch, a completed write, a request, a membership,
//! configuration or nudge change, or a due time), then do everything that is due, in one order.

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::actor::{Command, Engine, Exit};
use super::deferred::Work;
use super::writes::{Completed, Done};
use crate::clock::instant_at;
use crate::coord::published;
use crate::dispatch::Delivery;
use crate::error::Result;
use crate::model::TaskResult;
use crate::storage::StorageExt;
use crate::storage::UpdateOutcome;

impl Engine {
    /// The engine loop. Returns when shut down or when leadership is lost.
    pub async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
        lost: CancellationToken,
    ) -> Exit {
        enum Ev {
            Shutdown,
            Lost,
            Wake,
            Results(Result<Vec<Delivery<TaskResult>>>),
            Commands(usize),
            Done(Box<std::result::Result<Completed, tokio::task::JoinError>>),
            Members,
            Config,
            Nudge,
        }
        let mut buf = Vec::with_capacity(256);
        let batch = self.sh.config.batch_size;
        self.process().await;
        loop {
            if let Some(reason) = self.fenced.take() {
                return Exit::Lost(reason);
            }
            // An expired backoff must not stay the wake-up time, or the loop would spin.
            if self.backoff_until.is_some_and(|t| Instant::now() >= t) {
                self.backoff_until = None;
            }
            let healthy = self.healthy();
            let wake = self.next_wake();
            let ev = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Ev::Shutdown,
                _ = lost.cancelled() => Ev::Lost,
                _ = tokio::time::sleep_until(wake) => Ev::Wake,
                Some(d) = self.writes.join_next(), if !self.writes.is_empty() => Ev::Done(Box::new(d)),
                r = self.results.recv(batch), if healthy && !self.deferred.holds_results() && !self.writes.full() => Ev::Results(r),
                n = cmds.recv_many(&mut buf, 256) => Ev::Commands(n),
                r = self.members.changed() => match r { Ok(()) => Ev::Members, Err(_) => Ev::Lost },
                r = self.config_rx.changed() => match r { Ok(()) => Ev::Config, Err(_) => Ev::Lost },
                r = self.nudge_rx.changed() => match r { Ok(()) => Ev::Nudge, Err(_) => Ev::Lost },
            };
            match ev {
                Ev::Shutdown => {
                    self.drain_writes().await;
                    self.write_watermark().await;
                    return Exit::Shutdown;
                }
                Ev::Lost => return Exit::Lost("leadership lost".into()),
                Ev::Wake => {}
                Ev::Results(Ok(d)) if d.is_empty() => {
                    return Exit::Lost("the result stream closed".into());
                }
                Ev::Results(Ok(d)) => self.on_results(d).await,
                Ev::Results(Err(e)) => {
                    warn!(error = %e, "receiving results failed");
                    self.backend_failed("receiving results", e);
                }
                Ev::Commands(0) => return Exit::Shutdown,
                Ev::Commands(_) => {
                    let batch = std::mem::take(&mut buf);
                    self.on_commands(batch).await;
                }
                Ev::Done(d) => match *d {
                    Ok(done) => {
                        self.complete(done).await;
                        self.deferred.writes_completed();
                    }
                    Err(e) => tracing::error!(error = %e, "a storage write task failed"),
                },
                Ev::Members => self.members_dirty = true,
                Ev::Config => self.apply_config().await,
                Ev::Nudge => self.sync_dirty = true,
            }
            self.process().await;
        }
    }

    /// When the loop must wake up on its own next. While backing off, only the end of the backoff: every
    /// other piece of work is a storage write that would fail again.
    fn next_wake(&mut self) -> Instant {
        if let Some(t) = self.backoff_until {
            return t;
        }
        let clock = self.sh.clock.clone();
        let mut wake = self
            .ticks
            .heartbeat
            .min(self.ticks.watermark)
            .min(self.ticks.poll)
            .min(self.redispatch_sweep);
        if self.deferred.has_due() {
            wake = Instant::now();
        }
        if let Some(t) = self.jobs.peek_time() {
            wake = wake.min(instant_at(&*clock, t));
        }
        if let Some(t) = self.tasks.next_timer() {
            wake = wake.min(instant_at(&*clock, t));
        }
        if let Some(due) = self.running_marks.next_due() {
            wake = wake.min(due);
        }
        wake
    }

    /// Everything due now: membership, deferred work, storage sync, fires, timers, dispatch, `running`
    /// marks and housekeeping. Stops at the first failed write (the engine backs off).
    async fn process(&mut self) {
        if !self.healthy() {
            return;
        }
        if self.members_dirty {
            self.members_dirty = false;
            self.apply_members().await;
        }
        self.retry_deferred().await;
        let now_i = Instant::now();
        if now_i >= self.ticks.poll {
            self.ticks.poll = now_i + self.sh.config.poll_interval;
            self.sync_dirty = true;
        }
        // A nudge that came with a due fire: read the change first, so a job disabled or changed before its
        // fire time is not fired by its old definition.
        if self.nudge_rx.has_changed().unwrap_or(false) {
            self.nudge_rx.borrow_and_update();
            self.sync_dirty = true;
        }
        if self.sync_dirty && self.healthy() {
            self.sync_dirty = false;
            if let Err(e) = self.sync().await {
                self.sync_dirty = true;
                self.backend_failed("reading changes from storage", e);
            }
        }
        let now = self.now();
        if self.healthy() {
            self.fire_due(now);
        }
        if self.healthy() {
            self.on_timers(now).await;
        }
        if self.healthy() {
            self.dispatch();
        }
        if self.healthy() && Instant::now() >= self.redispatch_sweep {
            self.redispatch_stalled().await;
        }
        if self.healthy() {
            self.flush_running_marks(false).await;
        }
        if self.healthy() {
            self.housekeeping().await;
        }
    }

    /// The broadcast configuration changed: apply what storage holds (the record), and put it back on
    /// the key if the copy there is not it (a version storage does not have is never applied).
    async fn apply_config(&mut self) {
        let copy = published::changed(
            self.sys_version,
            self.config_rx.borrow_and_update().as_ref(),
        );
        let Some(copy) = copy else { return };
        let stored = match self.sh.storage.system_config().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, published = copy.version,
                    "reading the system configuration failed; the published change waits");
                return;
            }
        };
        if copy.version != stored.version {
            let (coordinator, storage) = (self.sh.coordinator.clone(), self.sh.storage.clone());
            tokio::spawn(async move {
                if let Err(e) = published::publish(coordinator.as_ref(), storage.as_ref()).await {
                    warn!(error = %e, "publishing the stored system configuration failed");
                }
            });
        }
        if stored.version != self.sys_version {
            info!(version = stored.version, config = ?stored.value, "system configuration changed");
            self.execs.set_prefetch(stored.value.executor_prefetch);
            self.sys = stored.value;
            self.sys_version = stored.version;
        }
    }

    /// Applies a completed write.
    async fn complete(&mut self, c: Completed) {
        self.writes.completed(c.id);
        c.done.for_each_insert(|t| self.tasks.end_insert(t));
        match c.done {
            Done::Fires(batch, r) => self.complete_fires(batch, r).await,
            Done::ManualRuns(batch, r) => self.complete_manual_runs(batch, r).await,
            Done::Dispatch(batch, r) => self.complete_dispatch(batch, r).await,
            Done::Results(batch, r) => self.complete_results(batch, r).await,
        }
    }

    /// Waits for every write in flight and applies it (at shutdown).
    async fn drain_writes(&mut self) {
        while let Some(done) = self.writes.join_next().await {
            match done {
                Ok(c) => self.complete(c).await,
                Err(e) => error!(error = %e, "a storage write task failed"),
            }
        }
    }

    /// Does the deferred work again, in order, while healthy; what fails again is deferred again.
    async fn retry_deferred(&mut self) {
        for work in self.deferred.take_due() {
            if !self.healthy() {
                self.deferred.push(work);
                continue;
            }
            match work {
                Work::Results(deliveries) => self.on_results(deliveries).await,
                Work::Send(tasks) => self.resend(tasks).await,
                Work::Reconcile { task_id, attempt } => {
                    let outcome = UpdateOutcome::Stale {
                        status: crate::model::TaskStatus::Running,
                        executor_id: None,
                    };
                    self.reconcile_stale(&task_id, attempt, &outcome).await;
                }
                Work::ExecutorLost { executor, epoch } => self.executor_lost(executor, epoch).await,
                Work::RunningMarks(marks) => self.write_running_marks(marks).await,
            }
        }
    }
}
