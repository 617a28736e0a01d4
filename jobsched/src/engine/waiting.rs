//! Waiting for a task's outcome: [`Scheduler::wait_for`] and [`Scheduler::run_and_wait`].

use tokio::sync::broadcast::error::RecvError;

use super::Event;
use super::handle::Scheduler;
use crate::error::Result;
use crate::model::{ExecutionRecord, JobId, Params, TaskId};

impl Scheduler {
    /// Waits until task `task_id` has ended for good (its latest attempt ended and no retry or failover
    /// follows) and returns that attempt's record. Wrap it in `tokio::time::timeout` to bound the wait.
    ///
    /// The active scheduler is woken by its own events; a standby re-reads storage every `poll_interval`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> jobsched::Result<()> {
    /// use jobsched::{Backends, Executor, ExecutorId, JobSpec, Scheduler, TaskStatus};
    ///
    /// let backends = Backends::in_memory();
    /// let scheduler = Scheduler::builder(backends.clone()).start().await?;
    /// let executor = Executor::builder(ExecutorId::new("worker-1")?, backends).start().await?;
    /// scheduler.wait_active().await;
    /// let job = scheduler.create_job(JobSpec::manual("greet", "echo hello")).await?;
    /// let task_id = scheduler.execute(&job.job_id, None).await?;
    /// let record = scheduler.wait_for(&task_id).await?;
    /// assert_eq!((record.status, record.output.as_str()), (TaskStatus::Succeeded, "hello\n"));
    /// executor.shutdown().await;
    /// scheduler.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for(&self, task_id: &TaskId) -> Result<ExecutionRecord> {
        // Subscribed before the first look, so an end between the look and the wait is not missed.
        let mut events = self.subscribe();
        let poll = self.sh().config.poll_interval;
        loop {
            let attempts = self.sh().storage.task_attempts(task_id).await?;
            if let Some(last) = attempts.into_iter().last() {
                if last.status.is_terminal() {
                    return Ok(last);
                }
            }
            // Until an attempt of this task ends here (then look again: a retry may follow), or the poll.
            let _ = tokio::time::timeout(poll, async {
                loop {
                    match events.recv().await {
                        Ok(Event::Finished(rec)) if rec.task_id == *task_id => return,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => return,
                        Err(RecvError::Closed) => {
                            // The scheduler shut down: fall back to the poll.
                            std::future::pending::<()>().await
                        }
                    }
                }
            })
            .await;
        }
    }

    /// Runs a job now (as [`execute`](Scheduler::execute)) and waits for the task's outcome (as
    /// [`wait_for`](Scheduler::wait_for)).
    pub async fn run_and_wait(
        &self,
        job_id: &JobId,
        params: Option<Params>,
    ) -> Result<ExecutionRecord> {
        let task_id = self.execute(job_id, params).await?;
        self.wait_for(&task_id).await
    }
}
