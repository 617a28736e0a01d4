//! Keeping every process of a task within reach of its kill, however it detaches (`setsid`, `setpgid`,
//! `nohup … &`, double forks), and killing them when the executor dies.
//!
//! Two mechanisms, chosen per executor process at its first task:
//! - **cgroup** (Linux with a writable cgroup v2 hierarchy: root, or a delegated cgroup): each attempt
//!   runs in a cgroup of its own, `<executor's cgroup>/jobsched-<pid>/<attempt>`, which no process can
//!   leave without privileges; the kill writes `cgroup.kill` (or signals every pid in `cgroup.procs` on
//!   kernels before 5.14).
//! - **process tree** (anywhere else): the kill signals the task's process group, every descendant of
//!   its shell (found through `/proc/*/stat`), and every process whose environment carries the attempt's
//!   scope marker `JOBSCHED_TASK_SCOPE` (orphans reparented away from the tree keep their environment).
//!   A process that clears its environment *and* leaves the tree escapes this mechanism.
//!
//! Both: the shell gets a parent-death signal (SIGKILL when the executor's thread that started it goes
//! away), and one watchdog process per executor process (a `sh` reading a pipe the executor holds)
//! kills every task of the executor when that pipe closes — when the executor exits or is killed,
//! SIGKILL included.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The environment variable naming an attempt's scope: `<executor run>/<task>/<attempt>`.
pub const SCOPE_VAR: &str = "JOBSCHED_TASK_SCOPE";

/// What this executor process uses, decided once.
struct Containment {
    /// A random id of this executor process, the first part of every scope marker.
    run: String,
    /// The parent of the attempts' cgroups, if cgroups are usable.
    cgroups: Option<PathBuf>,
    /// The write end of the watchdog's pipe: never written, closed when the process ends.
    _watchdog: Option<OwnedFd>,
}

static CONTAINMENT: OnceLock<Containment> = OnceLock::new();

fn containment() -> &'static Containment {
    CONTAINMENT.get_or_init(|| {
        let run = uuid::Uuid::now_v7().simple().to_string();
        let cgroups = cgroup_base();
        let watchdog = start_watchdog(&run, cgroups.as_deref());
        tracing::info!(mechanism = if cgroups.is_some() { "cgroup" } else { "process tree" },
            cgroups = ?cgroups, watchdog = watchdog.is_some(), "task processes are contained");
        Containment {
            run,
            cgroups,
            _watchdog: watchdog,
        }
    })
}

/// The cgroup v2 directory this process may create attempt cgroups in, after removing what executors
/// that died left behind; `None` if there is none or it is not writable.
fn cgroup_base() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Fields: id parent major:minor root mount-point options … - fstype source super-options.
    let mount = mounts.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split(' ').next() == Some("cgroup2"))
            .then(|| pre.split(' ').nth(4).map(PathBuf::from))?
    })?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let parent = mount.join(own.trim_start_matches('/'));
    remove_stale(&parent);
    let base = parent.join(format!("jobsched-{}", std::process::id()));
    match fs::create_dir(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    base.join("cgroup.procs").exists().then_some(base)
}

/// Kills and removes the attempt cgroups of executor processes that are gone.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("jobsched-")) else {
            continue;
        };
        let alive = pid
            .parse::<i32>()
            .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            kill_cgroup(&e.path());
            for sub in fs::read_dir(e.path()).into_iter().flatten().flatten() {
                if sub.path().is_dir() {
                    let _ = fs::remove_dir(sub.path());
                }
            }
            let _ = fs::remove_dir(e.path());
        }
    }
}

/// Kills every process of a cgroup (and of the cgroups below it).
fn kill_cgroup(dir: &Path) {
    if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    for _ in 0..10 {
        let pids = cgroup_pids(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// The processes in a cgroup.
fn cgroup_pids(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|p| p.trim().parse::<i32>().ok())
        .collect()
}

/// Starts the watchdog: `sh` in a session of its own, ignoring terminal and termination signals, that
/// waits for its stdin (a pipe this process holds) to close, then kills what is left of this executor's
/// tasks.
fn start_watchdog(run: &str, cgroups: Option<&Path>) -> Option<OwnedFd> {
    // Close-on-exec, so that no task inherits the write end (which would keep the pipe open after the
    // executor died); the read end becomes the watchdog's stdin, which clears the flag.
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
    let mut script = String::from("trap '' INT TERM HUP; read _; ");
    if let Some(base) = cgroups {
        script.push_str(&format!(
            "echo 1 > '{}/cgroup.kill' 2>/dev/null; ",
            base.display()
        ));
    }
    script.push_str(&format!(
        "for d in /proc/[0-9]*; do tr '\\0' '\\n' < $d/environ 2>/dev/null | grep -q '^{SCOPE_VAR}={run}/' \
         && kill -9 ${{d#/proc/}} 2>/dev/null; done"
    ));
    let spawned = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::from(read))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        // Its exit is never waited for: it outlives this process by design, or exits when it does.
        Ok(child) => {
            std::mem::forget(child);
            Some(write)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no task watchdog: an executor that is killed may leave task processes");
            None
        }
    }
}

use std::os::unix::process::CommandExt as _;

/// The processes of one attempt.
pub(crate) struct TaskProcesses {
    scope: String,
    cgroup: Option<PathBuf>,
    /// `cgroup.procs` of the attempt's cgroup, opened before the fork so the child can join it.
    procs: Option<fs::File>,
    root: Option<i32>,
    /// Whether every process was killed already (the end of a run that was waited for).
    done: bool,
}

impl TaskProcesses {
    /// Prepares the containment of an attempt (its cgroup, if `cgroups` and they are usable).
    pub fn new(task_id: &str, attempt: u32, cgroups: bool) -> TaskProcesses {
        let c = containment();
        let scope = format!("{}/{task_id}/{attempt}", c.run);
        let cgroup = c.cgroups.as_ref().filter(|_| cgroups).and_then(|base| {
            let dir = base.join(format!("{task_id}-{attempt}-{}", fastrand::u32(..)));
            fs::create_dir(&dir).ok().map(|()| dir)
        });
        let procs = cgroup.as_ref().and_then(|d| {
            fs::OpenOptions::new()
                .write(true)
                .open(d.join("cgroup.procs"))
                .ok()
        });
        TaskProcesses {
            scope,
            cgroup,
            procs,
            root: None,
            done: false,
        }
    }

    /// The attempt's scope marker, for its environment.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Makes `cmd`'s child join the attempt's cgroup and die with the thread that starts it.
    #[allow(unsafe_code)] // `pre_exec` is the only way to act in the child between fork and exec.
    pub fn prepare(&self, cmd: &mut tokio::process::Command) {
        let fd = self.procs.as_ref().map(|f| f.as_raw_fd());
        // Built before the fork: the hook must not allocate.
        let zero = CString::new("0").expect("no NUL");
        // SAFETY: the hook only makes async-signal-safe system calls (prctl, write) on memory allocated
        // before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
                if let Some(fd) = fd {
                    // Writing 0 moves the writing process; refused (another user after `with_user`, say)
                    // the parent moves it just after the spawn.
                    let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                    let _ = nix::unistd::write(fd, zero.as_bytes());
                }
                Ok(())
            });
        }
    }

    /// Records the started shell (and moves it into the cgroup if its own move was refused).
    pub fn started(&mut self, pid: Option<u32>) {
        self.root = pid.map(|p| p as i32);
        if let (Some(f), Some(pid)) = (self.procs.as_mut(), pid) {
            let _ = write!(f, "{pid}");
        }
    }

    /// Signals the attempt's processes: the shell's group, and every process of the attempt.
    pub fn signal(&self, sig: Signal) {
        if let Some(root) = self.root {
            // ESRCH (gone already) is the expected, harmless case.
            let _ = killpg(Pid::from_raw(root), sig);
        }
        match &self.cgroup {
            Some(dir) if sig == Signal::SIGKILL => kill_cgroup(dir),
            _ => {
                for pid in self.members() {
                    let _ = kill(Pid::from_raw(pid), sig);
                }
            }
        }
    }

    /// The attempt's processes: its cgroup's, or its tree and those carrying its marker.
    fn members(&self) -> Vec<i32> {
        match &self.cgroup {
            Some(dir) => cgroup_pids(dir),
            None => tree_members(self.root, &self.scope),
        }
    }

    /// Kills every process of the attempt, again until none is left (one may fork while it is killed).
    pub fn kill_all(&mut self) {
        self.done = true;
        for _ in 0..5 {
            self.signal(Signal::SIGKILL);
            if self.members().into_iter().all(is_zombie) {
                return;
            }
        }
    }
}

impl Drop for TaskProcesses {
    fn drop(&mut self) {
        if !self.done {
            self.kill_all();
        }
        if let Some(dir) = self.cgroup.take() {
            self.procs = None;
            if fs::remove_dir(&dir).is_ok() {
                return;
            }
            // Removable once its killed processes are reaped: retried off the task's path.
            std::thread::spawn(move || {
                for _ in 0..200 {
                    if fs::remove_dir(&dir).is_ok() {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
        }
    }
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true)
}

/// The descendants of `root` and the processes whose environment carries `scope`.
fn tree_members(root: Option<i32>, scope: &str) -> Vec<i32> {
    let mut children: std::collections::HashMap<i32, Vec<i32>> = Default::default();
    let mut marked = Vec::new();
    let marker = format!("{SCOPE_VAR}={scope}");
    let me = std::process::id() as i32;
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(stat) = fs::read_to_string(e.path().join("stat")) {
            // After the command (which may hold spaces and parentheses): state, then the parent's pid.
            if let Some(ppid) = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').nth(1))
                .and_then(|p| p.parse::<i32>().ok())
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
        if let Ok(env) = fs::read(e.path().join("environ")) {
            if env.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
                marked.push(pid);
            }
        }
    }
    let mut out = marked;
    let mut stack: Vec<i32> = root.into_iter().collect();
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            if !out.contains(&c) {
                out.push(c);
            }
            stack.push(c);
        }
    }
    out
}
