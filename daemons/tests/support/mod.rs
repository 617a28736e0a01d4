//! Test helpers: an all-in-one server in this process (real HTTP on a port of its own), the `jobsched`
//! binary as a child process, JSON calls, and polling with a deadline.
#![allow(dead_code)] // Each test file uses a part.

pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jobsched_daemons::config::Config;
use jobsched_daemons::server::{self, Role};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A directory of its own for one test, removed at the end.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("jobsched-daemon-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `jobsched standalone` running in this process.
pub struct Server {
    pub base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), jobsched_daemons::DaemonError>>>,
}

impl Server {
    pub async fn start(dir: &Path) -> Server {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.to_owned(),
            capacity: 4,
            shutdown_grace_secs: 5,
            max_body_bytes: 64 * 1024,
            ..Config::default()
        };
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server::run(Role::Standalone, config, listener, async {
            let _ = rx.await;
        }));
        let server = Server {
            base,
            http: reqwest::Client::new(),
            stop: Some(tx),
            handle: Some(handle),
        };
        // Ready when the scheduler is active (the standalone process is its only scheduler).
        wait_for("the server to become active", || async {
            let (code, v) = server.call(Method::GET, "/api/system/status", None).await;
            code == StatusCode::OK && v["active"] == true && v["executors_online"] == 1
        })
        .await;
        server
    }

    /// One call: the status and the JSON answer (`null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// A call with a raw body.
    pub async fn raw(&self, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        self.send(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("the server answers");
        let code = resp.status();
        let bytes = resp.bytes().await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (code, v)
    }

    /// Stops it as SIGTERM would, and waits until everything has stopped.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap().unwrap();
    }
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

/// The `jobsched` binary, with none of the caller's `JOBSCHED_…` settings (a shell prepared by
/// `scripts/services.sh env` has `JOBSCHED_STORE`, which would point the daemon at the shared database).
pub fn jobsched() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_jobsched"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("JOBSCHED_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The `jobsched` binary running `standalone` as a child process.
pub struct Daemon {
    pub base: String,
    pub child: tokio::process::Child,
}

impl Daemon {
    /// Starts `jobsched standalone` on a free port with its data in `dir`, and waits until it serves.
    pub async fn start(dir: &Path) -> Daemon {
        let mut child = jobsched()
            .args(["standalone", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--capacity", "4", "--shutdown-grace-secs", "5"])
            .env("JOBSCHED_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start jobsched");
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = out.next_line().await.unwrap().expect("the address line");
        let base = line
            .split_whitespace()
            .last()
            .expect("jobsched standalone listening on http://ADDR")
            .to_owned();
        let d = Daemon { base, child };
        wait_for("the daemon to become active", || async {
            let out = d.cli(&["system", "status", "-o", "json"]).await;
            out.ok && out.json()["active"] == true && out.json()["executors_online"] == 1
        })
        .await;
        d
    }

    /// Runs a client command against this daemon.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        cli(&self.base, args).await
    }

    /// Sends SIGTERM and waits for the process to end; returns whether it exited successfully.
    pub async fn terminate(mut self) -> bool {
        let pid = self.child.id().expect("running") as i32;
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        self.child.wait().await.unwrap().success()
    }
}

/// What a client command printed.
pub struct CliOutput {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// Runs `jobsched ARGS` against `server`.
pub async fn cli(server: &str, args: &[&str]) -> CliOutput {
    let out = jobsched()
        .args(args)
        .env("JOBSCHED_SERVER", server)
        .output()
        .await
        .expect("run jobsched");
    CliOutput {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
