//! The task handlers the daemon's executors run: `shell` and `noop` (succeeds at once with no output:
//! for probes, tests and benchmarks of the scheduling path itself), each behind [`Unseal`], which opens
//! secret params just before the handler runs.

use std::sync::Arc;

use jobsched::handler::{HandlerRegistry, NoopHandler, ShellHandler, TaskHandler, TaskUser};

use crate::error::DaemonError;
use crate::secrets::{Keyring, Unseal};

/// The OS user `name` that tasks run as; the executor must be able to switch to it.
pub fn task_user(name: &str) -> Result<TaskUser, DaemonError> {
    let user = nix::unistd::User::from_name(name)
        .map_err(|e| DaemonError::Config(format!("--task-user {name}: {e}")))?
        .ok_or_else(|| DaemonError::Config(format!("--task-user {name}: no such user")))?;
    let me = nix::unistd::geteuid();
    if !me.is_root() && me != user.uid {
        return Err(DaemonError::Config(format!(
            "--task-user {name}: running tasks as another user needs the executor to run as root"
        )));
    }
    Ok(TaskUser {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
    })
}

/// The daemon's handlers: shell tasks get the executor's variables of `env_allow` on top of the default
/// allow-list and run as `user` if given; sealed params are opened with `keyring`.
pub fn registry(
    env_allow: &[String],
    user: Option<TaskUser>,
    keyring: Option<Arc<Keyring>>,
) -> Result<HandlerRegistry, DaemonError> {
    let mut r = HandlerRegistry::empty();
    let mut shell = ShellHandler::default().with_env_allow(env_allow)?;
    if let Some(u) = user {
        shell = shell.with_user(u);
    }
    let shell: Arc<dyn TaskHandler> = Arc::new(shell);
    let noop: Arc<dyn TaskHandler> = Arc::new(NoopHandler);
    for (name, h) in [(jobsched::SHELL, shell), ("noop", noop)] {
        r.register(name, Arc::new(Unseal::new(h, keyring.clone())))?;
    }
    Ok(r)
}
