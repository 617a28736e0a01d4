//! Examples of embedding jobsched in an application. `examples/embedded.rs` runs [`run_embedded`].
#![allow(clippy::print_stdout)] // An example prints what it does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jobsched::handler::{ExecError, Outcome, TaskContext, TaskHandler};
use jobsched::storage::StorageExt;
use jobsched::{
    Backends, Event, ExecutionQuery, Executor, ExecutorId, Job, JobId, JobSpec, Params, Scheduler,
    Task, TaskStatus,
};
use jobsched_sqlite::SqliteConfig;

/// A custom handler: greets the `name` given in the task's params.
#[derive(Debug, Default)]
pub struct Greeter;

#[async_trait]
impl TaskHandler for Greeter {
    async fn execute(&self, _ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        match task.params.get("name").and_then(|v| v.as_str()) {
            Some(name) => Ok(Outcome::success(format!(
                "Hello, {name}! (attempt {})",
                task.attempt
            ))),
            None => Err(ExecError::abort("params.name is missing")),
        }
    }
}

/// What one run of [`run_embedded`] saw.
#[derive(Debug, Default)]
pub struct Summary {
    /// Execution records that were stored when the run started (from earlier runs).
    pub earlier_records: u64,
    /// Whether the example's jobs were stored already when the run started.
    pub jobs_existed: bool,
    /// Successful runs during this run, per job name.
    pub succeeded: BTreeMap<String, u64>,
}

/// The example's jobs: a cron job that runs `echo hello` every second and a job with the custom
/// [`Greeter`] handler every two seconds. Fixed ids, so a restart finds them.
fn example_jobs() -> jobsched::Result<Vec<JobSpec>> {
    let mut params = Params::new();
    params.insert("name".into(), "jobsched".into());
    Ok(vec![
        JobSpec::cron("echo-hello", "* * * * * *", "echo hello")
            .with_job_id(JobId::new("echo-hello")?),
        JobSpec::cron("greeter", "*/2 * * * * *", "")
            .with_job_id(JobId::new("greeter")?)
            .with_type("greet")
            .with_params(params),
    ])
}

/// Runs a scheduler and an executor in this process for `duration` (forever if `None`), with jobs and
/// history kept in an SQLite file in `data_dir`: the example's jobs are created on the first run and
/// found again on later ones. Prints each result as it arrives.
pub async fn run_embedded(
    data_dir: &Path,
    duration: Option<Duration>,
) -> jobsched::Result<Summary> {
    let store = SqliteConfig::in_dir(data_dir).connect().await?;
    let backends = Backends::in_process(Arc::new(store));
    let mut summary = Summary {
        earlier_records: backends
            .storage
            .list_executions(&ExecutionQuery::default())
            .await?
            .total,
        ..Summary::default()
    };
    let scheduler = Scheduler::builder(backends.clone()).start().await?;
    let executor = Executor::builder(ExecutorId::new("embedded-executor")?, backends.clone())
        .with_capacity(4)
        .with_handler("greet", Arc::new(Greeter))
        .start()
        .await?;
    scheduler.wait_active().await;
    let mut events = scheduler.subscribe();

    let mut jobs: Vec<Job> = Vec::new();
    for spec in example_jobs()? {
        let id = spec.job_id.clone().expect("the example's jobs have ids");
        match backends.storage.find_job(&id).await? {
            Some(job) => {
                summary.jobs_existed = true;
                jobs.push(job);
            }
            None => jobs.push(scheduler.create_job(spec).await?),
        }
    }
    println!(
        "data in {} ({} earlier runs recorded); jobs: {}",
        data_dir.display(),
        summary.earlier_records,
        jobs.iter()
            .map(|j| format!("'{}' ({})", j.name, j.job_id))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let names: BTreeMap<JobId, String> = jobs
        .iter()
        .map(|j| (j.job_id.clone(), j.name.clone()))
        .collect();
    let stop = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            ev = events.recv() => {
                let Ok(Event::Finished(rec)) = ev else { continue };
                let name = names.get(&rec.job_id).cloned().unwrap_or_default();
                println!(
                    "{} {:<10} {:<9} fired {} on {}: {}",
                    rec.end_time.map(|t| t.format("%H:%M:%S%.3f").to_string()).unwrap_or_default(),
                    name,
                    rec.status,
                    rec.scheduled_time.format("%H:%M:%S"),
                    rec.executor_id.as_ref().map(|e| e.as_str()).unwrap_or("-"),
                    rec.output.trim_end(),
                );
                if rec.status == TaskStatus::Succeeded {
                    *summary.succeeded.entry(name).or_default() += 1;
                }
            }
        }
    }
    executor.shutdown().await;
    scheduler.shutdown().await;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_and_history_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("jobsched-example-{:016x}", fastrand::u64(..)));
        let first = run_embedded(&dir, Some(Duration::from_secs(4)))
            .await
            .unwrap();
        let hello = first.succeeded.get("echo-hello").copied().unwrap_or(0);
        assert!(
            hello >= 2,
            "only {hello} successful runs of echo-hello in 4 s: {first:?}"
        );
        assert!(
            first.succeeded.get("greeter").copied().unwrap_or(0) >= 1,
            "{first:?}"
        );
        assert!(
            !first.jobs_existed && first.earlier_records == 0,
            "{first:?}"
        );

        // A restart on the same data directory: the jobs are found, not created again, the history of
        // the first run is there, and the jobs go on firing.
        let second = run_embedded(&dir, Some(Duration::from_secs(3)))
            .await
            .unwrap();
        assert!(second.jobs_existed, "{second:?}");
        let first_total: u64 = first.succeeded.values().sum();
        assert!(
            second.earlier_records >= first_total,
            "{} records kept, {first_total} runs succeeded before: {second:?}",
            second.earlier_records
        );
        assert!(
            second.succeeded.get("echo-hello").copied().unwrap_or(0) >= 1,
            "{second:?}"
        );
        let store = SqliteConfig::in_dir(&dir).connect().await.unwrap();
        let jobs = jobsched::storage::Storage::list_jobs(&store, &Default::default())
            .await
            .unwrap();
        assert_eq!(jobs.total, 2, "the jobs were not created twice");
        store.close().await;
        std::fs::remove_dir_all(&dir).ok();
    }
}
