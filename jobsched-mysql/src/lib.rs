//! # jobsched-mysql
//!
//! jobsched's [`Storage`](jobsched::storage::Storage) on MySQL 8 or MariaDB (sqlx): job definitions,
//! execution records (`job_logs`), executors, settings and fencing tokens, in the tables of the design
//! document (design §3.2) extended by versioned migrations embedded in the crate ([`MIGRATOR`]).
//!
//! ```no_run
//! # async fn run() -> jobsched::Result<()> {
//! use std::sync::Arc;
//! use jobsched::{Backends, Scheduler};
//! use jobsched_mysql::MysqlConfig;
//!
//! let store = MysqlConfig::new("mysql://jobsched:jobsched@127.0.0.1:3306/jobsched").connect().await?;
//! let backends = Backends { storage: Arc::new(store), ..Backends::in_memory() };
//! let scheduler = Scheduler::builder(backends).start().await?;
//! # Ok(()) }
//! ```
//!
//! Guarantees, beyond those of the trait:
//! * a fire is recorded once through the unique key `uk_fire (job_id, fire_time)`, across any number of
//!   processes (`fire_time` is set only on first attempts of scheduled fires);
//! * state changes are decided on rows locked with `SELECT … FOR UPDATE`, so concurrent results for the
//!   same attempt apply once;
//! * fenced writes take a shared lock on the scope's token; a new holder raising the token waits for
//!   every in-flight write under the old one;
//! * transactions that lose a lock race (deadlock, lock wait timeout) are run again; a lost connection
//!   fails the call with a retryable `Unavailable` error and the pool reconnects when the server is back.
//!
//! Limits: `name` ≤ 255 characters, `command` ≤ 65,535 bytes (`TEXT`); ids ≤ 64 bytes; `output` and
//! `error` are capped at `max_output_bytes` (≤ 16 MiB, `MEDIUMTEXT`), keeping the tail after a marker.
//! Values that do not fit are refused with [`Error::Invalid`](jobsched::Error::Invalid) naming the column
//! (strict SQL mode), never truncated silently.

mod config;
mod connect;
mod lock;

pub use config::{MAX_OUTPUT_BYTES, MysqlConfig, redact_url};
pub use connect::{MIGRATOR, MysqlStore};
pub use lock::SchedulerLock;
