//! The built-in `shell` handler: `sh -c command` in its own process group.
//!
//! * The task runs as the leader of a new process group, so it and everything it starts can be signalled
//!   together. On cancel or timeout the group gets SIGTERM, then SIGKILL after the kill grace. When the
//!   shell exits, whatever it left running in its group is killed too: no orphans survive a task.
//! * stdout becomes the result's `output`, stderr its `error`, each capped to its tail.
//! * The environment is clean: of the executor's own variables a task gets only those of an allow-list
//!   ([`DEFAULT_ENV_ALLOW`] plus what [`ShellHandler::with_env_allow`] adds), so the executor's settings
//!   and credentials (a store URL with its password, say) never reach a task. On top of those it carries
//!   `JOBSCHED_JOB_ID`, `JOBSCHED_TASK_ID`, `JOBSCHED_ATTEMPT`, `JOBSCHED_SCHEDULED_TIME`,
//!   `JOBSCHED_EXECUTOR_ID`, `JOBSCHED_PARAMS` (the params as JSON) and one `JOBSCHED_PARAM_<NAME>` per
//!   param (name upper-cased, other characters as `_`; strings as is, other values as JSON).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::contain::{self, TaskProcesses};
use super::{CappedBuffer, ExecError, Outcome, TaskContext, TaskHandler};
use crate::error::{Error, Result};
use crate::model::Task;

/// The executor's variables every task gets (if set): what programs need to find themselves, their
/// home, locale and time zone. An entry ending in `*` is a prefix.
pub const DEFAULT_ENV_ALLOW: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "TERM",
];

/// How long pipes are drained after the task's process group is gone (a process that escaped the group
/// with `setsid` may hold them open forever).
const DRAIN: Duration = Duration::from_millis(500);

/// Runs tasks with `sh -c`.
#[derive(Clone)]
pub struct ShellHandler {
    shell: PathBuf,
    workdir: Option<PathBuf>,
    /// Run tasks as this OS user instead of the executor's.
    user: Option<TaskUser>,
    allow: Vec<String>,
    /// The executor's variables the allow-list lets through, read once.
    inherited: Vec<(OsString, OsString)>,
    /// Run each attempt in a cgroup of its own where possible (see `contain`).
    cgroups: bool,
}

impl std::fmt::Debug for ShellHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The inherited values stay out of logs; their names are enough.
        f.debug_struct("ShellHandler")
            .field("shell", &self.shell)
            .field("workdir", &self.workdir)
            .field("user", &self.user)
            .field("env_allow", &self.allow)
            .field("cgroups", &self.cgroups)
            .finish()
    }
}

impl Default for ShellHandler {
    fn default() -> Self {
        let allow: Vec<String> = DEFAULT_ENV_ALLOW.iter().map(|s| (*s).to_owned()).collect();
        ShellHandler {
            shell: PathBuf::from("/bin/sh"),
            workdir: None,
            user: None,
            inherited: inherit(&allow),
            allow,
            cgroups: true,
        }
    }
}

/// True if the variable `name` is on the allow-list (`*` at the end of an entry: a prefix).
fn allowed(allow: &[String], name: &str) -> bool {
    allow.iter().any(|a| match a.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == a,
    })
}

/// The executor's variables on the allow-list (never its own `JOBSCHED_` settings).
fn inherit(allow: &[String]) -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| {
            k.to_str()
                .is_some_and(|k| !k.starts_with("JOBSCHED_") && allowed(allow, k))
        })
        .collect()
}

/// The OS user tasks run as (see [`ShellHandler::with_user`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskUser {
    /// Its user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
    /// Its home directory (the task's `HOME`, and where it starts unless a work directory is set).
    pub home: PathBuf,
}

impl ShellHandler {
    /// Runs tasks as another OS user (the executor must be allowed to switch to it: run it as root).
    /// The task then has none of the executor's groups, `HOME` is that user's, and it starts in that home
    /// (or `/` if it has none), so it cannot read the executor's files, its process environment
    /// (`/proc/<pid>/environ`) or its data directory.
    pub fn with_user(mut self, user: TaskUser) -> Self {
        self.user = Some(user);
        self
    }

    /// Contains attempts by their process tree and environment marker only, never in cgroups (where the
    /// host manages cgroups itself; also how the fallback is tested on hosts that have cgroups).
    pub fn without_cgroups(mut self) -> Self {
        self.cgroups = false;
        self
    }

    /// Runs commands in `dir` instead of the executor's working directory.
    pub fn with_workdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Uses another shell (it must accept `-c command`).
    pub fn with_shell(mut self, shell: impl Into<PathBuf>) -> Self {
        self.shell = shell.into();
        self
    }

    /// Lets tasks also get these of the executor's variables: names, or prefixes ending in `*`
    /// (`AWS_*`). The executor's own `JOBSCHED_` settings are refused: they may carry credentials.
    pub fn with_env_allow<S: AsRef<str>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        for n in names {
            let n = n.as_ref().trim();
            let bare = n.strip_suffix('*').unwrap_or(n);
            if bare.is_empty() && !n.is_empty() {
                return Err(Error::invalid(
                    "task_env_allow",
                    "'*' would hand every variable of the executor to tasks; name them or their prefixes",
                ));
            }
            if n.is_empty() {
                continue;
            }
            let prefix = n.ends_with('*');
            if bare.starts_with("JOBSCHED_") || (prefix && "JOBSCHED_".starts_with(bare)) {
                return Err(Error::invalid(
                    "task_env_allow",
                    format!(
                        "'{n}' would hand the executor's own JOBSCHED_ settings (which may hold \
                         credentials) to tasks"
                    ),
                ));
            }
            if !bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(Error::invalid(
                    "task_env_allow",
                    format!("'{n}' is not a variable name or a prefix ending in '*'"),
                ));
            }
            self.allow.push(n.to_owned());
        }
        self.inherited = inherit(&self.allow);
        Ok(self)
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

async fn pump(mut from: impl AsyncRead + Unpin, into: &mut CappedBuffer, ctx: &TaskContext) {
    let mut chunk = vec![0u8; 8192];
    loop {
        match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                into.push(&chunk[..n]);
                ctx.write_output(&chunk[..n]);
            }
        }
    }
}

#[async_trait]
impl TaskHandler for ShellHandler {
    async fn execute(&self, ctx: &TaskContext, task: &Task) -> Result<Outcome, ExecError> {
        let mut cmd = Command::new(&self.shell);
        cmd.arg("-c")
            .arg(&task.command)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env_clear()
            .envs(self.inherited.iter().map(|(k, v)| (k, v)))
            .env("JOBSCHED_JOB_ID", task.job_id.as_str())
            .env("JOBSCHED_TASK_ID", task.task_id.as_str())
            .env("JOBSCHED_ATTEMPT", task.attempt.to_string())
            .env("JOBSCHED_SCHEDULED_TIME", task.scheduled_time.to_rfc3339())
            .env("JOBSCHED_EXECUTOR_ID", ctx.executor_id.as_str())
            .env(
                "JOBSCHED_PARAMS",
                serde_json::to_string(&task.params).unwrap_or_default(),
            );
        for (k, v) in &task.params {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            cmd.env(
                format!("JOBSCHED_PARAM_{}", crate::model::param_env_name(k)),
                value,
            );
        }
        if let Some(u) = &self.user {
            // std drops the supplementary groups when it switches from root to `uid`.
            cmd.uid(u.uid).gid(u.gid).env("HOME", &u.home);
            if self.workdir.is_none() {
                let start = if u.home.is_dir() {
                    u.home.as_path()
                } else {
                    std::path::Path::new("/")
                };
                cmd.current_dir(start);
            }
        }
        if let Some(dir) = &self.workdir {
            cmd.current_dir(dir);
        }
        let mut procs = TaskProcesses::new(task.task_id.as_str(), task.attempt, self.cgroups);
        cmd.env(contain::SCOPE_VAR, procs.scope());
        procs.prepare(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| ExecError::Failed {
            message: format!("could not start {}: {e}", self.shell.display()),
            output: String::new(),
            stderr: String::new(),
            exit_code: 127,
        })?;
        procs.started(child.id());
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut out = CappedBuffer::new(ctx.max_output_bytes);
        let mut err = CappedBuffer::new(ctx.max_output_bytes);

        let run = async {
            let mut stopped = false;
            let status = tokio::select! {
                s = child.wait() => s,
                _ = ctx.cancelled() => {
                    stopped = true;
                    procs.signal(Signal::SIGTERM);
                    tokio::select! {
                        s = child.wait() => s,
                        _ = tokio::time::sleep(ctx.kill_grace) => {
                            procs.signal(Signal::SIGKILL);
                            child.wait().await
                        }
                    }
                }
            };
            // Whatever the shell left behind, detached or not, goes with it.
            procs.kill_all();
            (status, stopped)
        };
        let (status, stopped) = {
            let mut out_pump = std::pin::pin!(pump(stdout, &mut out, ctx));
            let mut err_pump = std::pin::pin!(pump(stderr, &mut err, ctx));
            let mut run = std::pin::pin!(run);
            let (mut out_done, mut err_done) = (false, false);
            let mut finished = None;
            let drain = tokio::time::sleep(Duration::from_secs(86_400 * 365));
            tokio::pin!(drain);
            while finished.is_none() || !(out_done && err_done) {
                tokio::select! {
                    r = &mut run, if finished.is_none() => {
                        finished = Some(r);
                        drain.as_mut().reset(tokio::time::Instant::now() + DRAIN);
                    }
                    _ = &mut out_pump, if !out_done => out_done = true,
                    _ = &mut err_pump, if !err_done => err_done = true,
                    _ = &mut drain, if finished.is_some() => break,
                }
            }
            finished.expect("the loop ends only after the run")
        };
        let status =
            status.map_err(|e| ExecError::failed(format!("waiting for the shell failed: {e}")))?;
        let code = exit_code(status);
        let (output, stderr) = (out.into_text(), err.into_text());
        if stopped {
            return Err(ExecError::Cancelled {
                output,
                stderr,
                exit_code: code,
            });
        }
        if status.success() {
            Ok(Outcome {
                output,
                stderr,
                exit_code: 0,
            })
        } else {
            let message = match status.signal() {
                Some(sig) => format!("killed by signal {sig}"),
                None => format!("exited with status {code}"),
            };
            Err(ExecError::Failed {
                message,
                output,
                stderr,
                exit_code: code,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExecutorId, JobId, Params, TaskId, Trigger};
    use chrono::Utc;

    fn task(cmd: &str) -> Task {
        let mut params = Params::new();
        params.insert("region".into(), "eu-west".into());
        params.insert("max-items".into(), 5.into());
        Task {
            task_id: TaskId::new("t-1").unwrap(),
            job_id: JobId::new("j-1").unwrap(),
            command: cmd.into(),
            timeout: 0,
            retry_count: 0,
            retry_interval: 0,
            priority: 0,
            create_time: Utc::now(),
            attempt: 2,
            scheduled_time: Utc::now(),
            task_type: "shell".into(),
            params,
            trigger: Trigger::Manual,
            executor_id: None,
            executor_epoch: 0,
        }
    }

    fn ctx(cap: usize) -> TaskContext {
        TaskContext::new(
            ExecutorId::new("e1").unwrap(),
            cap,
            Duration::from_millis(200),
        )
    }

    #[tokio::test]
    async fn captures_output_exit_code_and_environment() {
        let out = ShellHandler::default()
            .execute(
                &ctx(1024),
                &task("echo \"$JOBSCHED_TASK_ID $JOBSCHED_ATTEMPT $JOBSCHED_PARAM_REGION $JOBSCHED_PARAM_MAX_ITEMS\"; echo oops >&2"),
            )
            .await
            .unwrap();
        assert_eq!(out.output, "t-1 2 eu-west 5\n");
        assert_eq!(out.stderr, "oops\n");
        match ShellHandler::default()
            .execute(&ctx(1024), &task("exit 3"))
            .await
        {
            Err(ExecError::Failed {
                exit_code, message, ..
            }) => {
                assert_eq!(exit_code, 3);
                assert_eq!(message, "exited with status 3");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn tasks_get_only_allowed_variables_of_the_executor() {
        // `cargo test` gives this process CARGO_* variables: a task must not see them.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let out = ShellHandler::default()
            .execute(&ctx(64 * 1024), &task("env"))
            .await
            .unwrap();
        let names: Vec<&str> = out
            .output
            .lines()
            .filter_map(|l| l.split('=').next())
            .collect();
        assert!(names.contains(&"JOBSCHED_TASK_ID"), "{names:?}");
        let allow: Vec<String> = DEFAULT_ENV_ALLOW.iter().map(|s| (*s).to_owned()).collect();
        for n in &names {
            assert!(
                n.starts_with("JOBSCHED_")
                    || allowed(&allow, n)
                    || *n == "PWD"
                    || *n == "SHLVL"
                    || *n == "_",
                "the task saw the executor's variable {n}"
            );
        }
        let with_cargo = ShellHandler::default().with_env_allow(["CARGO_*"]).unwrap();
        let out = with_cargo
            .execute(&ctx(64 * 1024), &task("echo \"$CARGO_MANIFEST_DIR\""))
            .await
            .unwrap();
        assert!(out.output.trim().ends_with("jobsched"), "{}", out.output);
        for bad in ["JOBSCHED_STORE", "JOB*", "*", "A B"] {
            let e = ShellHandler::default().with_env_allow([bad]).unwrap_err();
            assert!(e.to_string().contains("task_env_allow"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn a_task_user_cannot_read_the_executors_environment() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: switching to another user needs root");
            return;
        }
        let nobody = TaskUser {
            uid: 65534,
            gid: 65534,
            home: PathBuf::from("/nonexistent"),
        };
        let cmd = format!(
            "id -u; id -G; echo \"$HOME\"; pwd; cat /proc/{}/environ >/dev/null 2>&1 || echo denied",
            std::process::id()
        );
        let out = ShellHandler::default()
            .with_user(nobody)
            .execute(&ctx(4096), &task(&cmd))
            .await
            .unwrap();
        let lines: Vec<&str> = out.output.lines().collect();
        assert_eq!(
            lines,
            ["65534", "65534", "/nonexistent", "/", "denied"],
            "{}",
            out.stderr
        );
    }

    #[tokio::test]
    async fn output_is_capped_to_its_tail() {
        let out = ShellHandler::default()
            .execute(
                &ctx(300),
                &task("head -c 100000 /dev/zero | tr '\\0' a; echo END"),
            )
            .await
            .unwrap();
        assert!(
            out.output
                .starts_with("[jobsched: 99704 earlier bytes truncated]\n"),
            "{}",
            &out.output[..60]
        );
        assert!(out.output.ends_with("aaaEND\n"));
    }

    #[tokio::test]
    async fn cancel_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("jobsched-shell-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("child.pid");
        let c = ctx(1024);
        let canceller = c.clone();
        let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let handle =
            tokio::spawn(async move { ShellHandler::default().execute(&c, &task(&cmd)).await });
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        canceller.cancel(crate::model::CancelReason::User);
        match handle.await.unwrap() {
            Err(ExecError::Cancelled { exit_code, .. }) => assert!(exit_code > 128, "{exit_code}"),
            other => panic!("{other:?}"),
        }
        // The background `sleep` was in the task's group: it must be gone (or a zombie being reaped).
        // A killed process takes a moment to die after the signal is sent: poll, with a deadline.
        let alive = || {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), None).is_ok()
                && !std::fs::read_to_string(format!("/proc/{child}/stat"))
                    .map(|s| s.contains(") Z "))
                    .unwrap_or(true)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!alive(), "background child {child} survived the cancel");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_shell_that_leaves_a_background_process_returns_promptly() {
        let started = std::time::Instant::now();
        let out = ShellHandler::default()
            .execute(&ctx(1024), &task("sleep 30 & echo done"))
            .await
            .unwrap();
        assert_eq!(out.output, "done\n");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
