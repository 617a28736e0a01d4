//! The task handlers the daemon's executors run: `shell` and `noop` (succeeds at once with no output:
//! for probes, tests and benchmarks of the scheduling path itself).

use std::sync::Arc;

use jobsched::Result;
use jobsched::handler::{HandlerRegistry, NoopHandler};

/// The daemon's handlers.
pub fn registry() -> Result<HandlerRegistry> {
    let mut r = HandlerRegistry::with_shell();
    r.register("noop", Arc::new(NoopHandler))?;
    Ok(r)
}
