//! Examples of embedding jobsched in an application. `examples/embedded.rs` runs [`run_embedded`].
#![allow(clippy::print_stdout)] // An example prints what it does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jobsched::handler::{ExecError, Outcome, TaskContext, TaskHandler};
use jobsched::{
    Backends, Event, Executor, ExecutorId, JobSpec, Params, Scheduler, Task, TaskStatus,
};

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

/// Runs a scheduler and an executor in this process for `duration` (forever if `None`): a cron job that
/// runs `echo hello` every second and a job with the custom [`Greeter`] handler every two seconds. Prints
/// each result as it arrives and returns the number of successful runs per job name.
pub async fn run_embedded(duration: Option<Duration>) -> jobsched::Result<BTreeMap<String, u64>> {
    let backends = Backends::in_memory();
    let scheduler = Scheduler::builder(backends.clone()).start();
    let executor = Executor::builder(ExecutorId::new("embedded-executor")?, backends)
        .with_capacity(4)
        .with_handler("greet", Arc::new(Greeter))?
        .start()
        .await?;
    scheduler.wait_active().await;
    let mut events = scheduler.subscribe();

    let hello = scheduler
        .create_job(JobSpec::cron("echo-hello", "* * * * * *", "echo hello"))
        .await?;
    let mut params = Params::new();
    params.insert("name".into(), "jobsched".into());
    let greet = scheduler
        .create_job(
            JobSpec::cron("greeter", "*/2 * * * * *", "")
                .with_type("greet")
                .with_params(params),
        )
        .await?;
    println!(
        "scheduled '{}' ({}) and '{}' ({})",
        hello.name, hello.job_id, greet.name, greet.job_id
    );

    let names = BTreeMap::from([
        (hello.job_id.clone(), hello.name.clone()),
        (greet.job_id.clone(), greet.name),
    ]);
    let mut succeeded: BTreeMap<String, u64> = BTreeMap::new();
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
                    *succeeded.entry(name).or_default() += 1;
                }
            }
        }
    }
    executor.shutdown().await;
    scheduler.shutdown().await;
    Ok(succeeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_every_second_job_succeeds_at_least_three_times_in_five_seconds() {
        let runs = run_embedded(Some(Duration::from_secs(5))).await.unwrap();
        let hello = runs.get("echo-hello").copied().unwrap_or(0);
        assert!(
            hello >= 3,
            "only {hello} successful runs of echo-hello in 5 s: {runs:?}"
        );
        assert!(runs.get("greeter").copied().unwrap_or(0) >= 1, "{runs:?}");
    }
}
