//! What jobsched's test suites and its benchmark share, so that each rule exists once:
//!
//! * [`unreachable()`]: a test that needs a server skips (with a printed reason) when it cannot be
//!   reached, and fails when `CI=true`;
//! * [`tag`] and [`env_or`]: names of its own per test (database, ZooKeeper root, Kafka prefix), and
//!   the servers `scripts/services.sh env` names;
//! * [`wait_for`]: a poll with a deadline that names what it waited for;
//! * [`clean_command`] and [`spawn_listening`]: the `jobsched` binary without the caller's
//!   `JOBSCHED_…` settings, and the address it printed;
//! * `mysql::TestDb` (feature `mysql`): a fresh database per test, dropped when it ends.

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[cfg(feature = "mysql")]
pub mod mysql;

/// Whether this run is CI's (`CI=true`), where a missing server is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A server the test needs is unreachable (`why` says which and how to start it): fails the test in CI,
/// skips it (returning `None`) elsewhere.
pub fn unreachable<T>(why: impl std::fmt::Display) -> Option<T> {
    let msg = format!("{why}; start the servers with scripts/services.sh start");
    if in_ci() {
        panic!("{msg}");
    }
    #[allow(clippy::print_stderr)] // The reason a test was skipped belongs in its output.
    {
        eprintln!("skipped: {msg}");
    }
    None
}

/// A random tag (12 hex digits) for names of a test's own (databases, roots, prefixes).
pub fn tag() -> String {
    format!("{:012x}", fastrand::u64(..) >> 16)
}

/// The variable `var`, or `default`.
pub fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Polls `check` every 50 ms until it holds; fails after 30 s, naming what was awaited.
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `program` (the `jobsched` binary) with none of the caller's `JOBSCHED_…` settings: a shell prepared
/// by `scripts/services.sh env` has `JOBSCHED_STORE`, which would point a daemon at the shared database.
pub fn clean_command(program: impl AsRef<OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("JOBSCHED_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Starts `cmd`, a `jobsched` role (killed when the child is dropped), and waits (at most 60 s) for the
/// line it prints when it listens; returns the child and the address (`http(s)://host:port`). A failure
/// names `what` (e.g. which process, and where its log is).
pub async fn spawn_listening(
    mut cmd: tokio::process::Command,
    what: &str,
) -> (tokio::process::Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let mut out = BufReader::new(child.stdout.take().expect("its stdout")).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), out.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what} did not start listening within 60 s"))
        .expect("its output")
        .unwrap_or_else(|| panic!("{what} exited before it listened"));
    let base = line
        .split_whitespace()
        .last()
        .expect("jobsched … listening on http(s)://ADDR")
        .to_owned();
    (child, base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_differ_and_clean_commands_drop_exactly_the_jobsched_settings() {
        assert_ne!(tag(), tag());
        assert_eq!(tag().len(), 12);
        let cmd = clean_command("true");
        let mut removed: Vec<_> = cmd
            .as_std()
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        // Every JOBSCHED_ variable of this process (the test script sets several), and nothing else.
        let mut ours: Vec<_> = std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .filter(|k| k.starts_with("JOBSCHED_"))
            .collect();
        removed.sort();
        ours.sort();
        assert_eq!(removed, ours);
    }
}
