//! The data model: jobs, tasks, results, execution and executor records, statuses and policies.

mod account;
mod config;
mod execution;
mod executor;
mod ids;
mod job;
mod policy;
mod query;
mod spec;
mod status;
mod task;

pub use account::{
    ApiToken, AuditEntry, AuditOutcome, AuditQuery, Role, User, account_limits, check_account_name,
    last_admin,
};
pub use config::SystemConfig;
pub use execution::ExecutionRecord;
pub use executor::{ExecutorHeartbeat, ExecutorInfo, ExecutorRecord};
pub use ids::{ExecutorId, JobId, TaskId};
pub(crate) use job::check_type_name;
pub use job::{Job, Params, SHELL, check_params, limits, param_env_name};
pub use policy::{MisfirePolicy, OverlapPolicy, RetryBackoff, RoutingStrategy, ScheduleType};
pub use query::{
    COUNT_CAP, ExecutionQuery, JobOrder, JobQuery, MAX_PAGE, MAX_PAGE_SIZE, OutcomeHour, Page,
    PageRequest, hour_of,
};
pub use spec::{JobSpec, parse_time_zone};
pub use status::{ExecutorStatus, TaskStatus};
pub use task::{CancelReason, Control, OutputChunk, Task, TaskResult, Trigger};
