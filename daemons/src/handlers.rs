//! The task handlers the daemon's executors run: `shell` (the core's) and `noop`.

use std::sync::Arc;

use async_trait::async_trait;
use jobsched::handler::{ExecError, HandlerRegistry, Outcome, TaskContext, TaskHandler};
use jobsched::{Result, Task};

/// `noop`: succeeds at once with no output. For probes, tests and benchmarks of the scheduling path
/// itself.
#[derive(Debug, Default)]
pub struct Noop;

#[async_trait]
impl TaskHandler for Noop {
    async fn execute(
        &self,
        _ctx: &TaskContext,
        _task: &Task,
    ) -> std::result::Result<Outcome, ExecError> {
        Ok(Outcome::success(""))
    }
}

/// The daemon's handlers: the defaults (`shell`) and `noop`.
pub fn registry() -> Result<HandlerRegistry> {
    let mut r = HandlerRegistry::with_shell();
    r.register("noop", Arc::new(Noop))?;
    Ok(r)
}
