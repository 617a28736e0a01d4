//! # jobsched
//!
//! A distributed job scheduler as a library: the model ([`Job`], [`Task`], [`TaskResult`], execution and
//! executor records), the traits every backend implements ([`Storage`](storage::Storage),
//! [`Dispatcher`](dispatch::Dispatcher), [`Coordinator`](coord::Coordinator)), the scheduling engine
//! ([`Scheduler`]), the executor runtime ([`Executor`]) and the trait custom executors implement
//! ([`TaskHandler`](handler::TaskHandler)).
//!
//! The crate depends on no server: [`Backends::in_memory`] gives in-process implementations of every trait,
//! so an application embeds the whole scheduler. Production backends live in other crates
//! (`jobsched-mysql`, `jobsched-kafka`, `jobsched-zk`) and implement the same traits.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> jobsched::Result<()> {
//! use jobsched::{Backends, Executor, ExecutorId, JobSpec, Scheduler, TaskStatus};
//!
//! let backends = Backends::in_memory();
//! let scheduler = Scheduler::builder(backends.clone()).start().await?;
//! let executor = Executor::builder(ExecutorId::new("worker-1")?, backends.clone()).start().await?;
//! scheduler.wait_active().await;
//!
//! let job = scheduler.create_job(JobSpec::manual("greet", "echo hello")).await?;
//! let record = scheduler.run_and_wait(&job.job_id, None).await?;
//! assert_eq!(record.status, TaskStatus::Succeeded);
//! assert_eq!(record.output, "hello\n");
//!
//! executor.shutdown().await;
//! scheduler.shutdown().await;
//! # Ok(()) }
//! ```

mod backends;
pub mod clock;
pub mod coord;
pub mod dispatch;
mod engine;
mod error;
mod executor;
mod fastmap;
mod guard;
pub mod handler;
pub mod metrics;
mod model;
mod output;
mod schedule;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;

// The crate README's example runs as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use backends::Backends;
pub use engine::{
    Audited, CancelOutcome, EngineStats, Event, OutcomeCounts, Scheduler, SchedulerBuilder,
    SchedulerConfig, SystemStatus, UpcomingFire,
};
pub use error::{Error, Result};
pub use executor::{Executor, ExecutorBackends, ExecutorBuilder};
pub use model::*;
pub use output::{LiveRead, OutputBuffers};
/// The metrics crate [`metrics`] records into (its registry and encoder), re-exported so that daemons
/// use the same version.
pub use prometheus_client;
pub use schedule::{CronSchedule, Schedule};
