//! The task handlers the daemon's executors run: `shell` and `noop` (succeeds at once with no output:
//! for probes, tests and benchmarks of the scheduling path itself), each behind [`Unseal`], which opens
//! secret params just before the handler runs.

use std::sync::Arc;

use jobsched::Result;
use jobsched::handler::{HandlerRegistry, NoopHandler, ShellHandler, TaskHandler};

use crate::secrets::{Keyring, Unseal};

/// The daemon's handlers: shell tasks get the executor's variables of `env_allow` on top of the default
/// allow-list; sealed params are opened with `keyring`.
pub fn registry(env_allow: &[String], keyring: Option<Arc<Keyring>>) -> Result<HandlerRegistry> {
    let mut r = HandlerRegistry::empty();
    let shell: Arc<dyn TaskHandler> = Arc::new(ShellHandler::default().with_env_allow(env_allow)?);
    let noop: Arc<dyn TaskHandler> = Arc::new(NoopHandler);
    for (name, h) in [(jobsched::SHELL, shell), ("noop", noop)] {
        r.register(name, Arc::new(Unseal::new(h, keyring.clone())))?;
    }
    Ok(r)
}
