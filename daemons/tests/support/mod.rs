//! Test helpers: an all-in-one server in this process (real HTTP on a port of its own), the `jobsched`
//! binary as a child process, JSON calls, and polling with a deadline.
#![allow(dead_code)] // Each test file uses a part.

pub mod cluster;
pub mod mysql;
pub mod receivers;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jobsched_daemons::config::Config;
use jobsched_daemons::server::{self, Role};
use reqwest::{Method, StatusCode};
use serde_json::Value;
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

/// The first administrator's password in every test (a test's own, never a product default).
pub const ADMIN_PASSWORD: &str = "test admin password";

/// Logs in at `base` as `name`; the login token.
pub async fn login(http: &reqwest::Client, base: &str, name: &str, password: &str) -> String {
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({ "name": name, "password": password }))
        .send()
        .await
        .expect("the server answers");
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "login as {name}: {v}");
    v["token"].as_str().expect("a token").to_owned()
}

/// `jobsched standalone` running in this process.
pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    /// The administrator's login token, sent with every call of [`Server::call`].
    pub token: String,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), jobsched_daemons::DaemonError>>>,
}

/// The configuration of a test's in-process server with its data in `dir`.
pub fn test_config(dir: &Path) -> Config {
    let password_file = dir.join("test-admin-password");
    std::fs::write(&password_file, ADMIN_PASSWORD).unwrap();
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        capacity: 4,
        shutdown_grace_secs: 5,
        max_body_bytes: 64 * 1024,
        admin_password_file: Some(password_file),
        ..Config::default()
    }
}

impl Server {
    pub async fn start(dir: &Path) -> Server {
        Self::start_with(test_config(dir)).await
    }

    /// Starts with `config` (from [`test_config`], changed).
    pub async fn start_with(config: Config) -> Server {
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server::run(Role::Standalone, config, listener, async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::new();
        let mut token = None;
        for _ in 0..600 {
            match http.get(format!("{base}/healthz")).send().await {
                Ok(_) => {
                    token = Some(login(&http, &base, "admin", ADMIN_PASSWORD).await);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let server = Server {
            base,
            http,
            token: token.expect("the server listens within 30 s"),
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

    /// One call as the administrator: the status and the JSON answer (`null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(&self.token, method, path, body).await
    }

    /// One call with `token` (empty: none).
    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// A request to this server as the administrator, to finish and send with [`Server::send`].
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// A call with a raw body.
    pub async fn raw(&self, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = self
            .request(method, path)
            .header("content-type", "application/json")
            .body(body);
        self.send(req).await
    }

    /// Makes a user with `role` and logs them in; their token.
    pub async fn user(&self, name: &str, role: &str) -> String {
        let password = format!("{name} password 123");
        let (code, v) = self
            .call(
                Method::POST,
                "/api/users",
                Some(serde_json::json!({"name": name, "role": role, "password": password})),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{v}");
        login(&self.http, &self.base, name, &password).await
    }

    /// Sends a request: the status and the JSON answer (`null` for an empty body).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("the server answers");
        let code = resp.status();
        let event_stream = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let bytes = resp.bytes().await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else if event_stream {
            // An event stream (a task's output): its text, as it ended.
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
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

pub use jobsched_testkit::wait_for;

/// The `jobsched` binary, with none of the caller's `JOBSCHED_…` settings (a shell prepared by
/// `scripts/services.sh env` has `JOBSCHED_STORE`, which would point the daemon at the shared database).
pub fn jobsched() -> tokio::process::Command {
    jobsched_testkit::clean_command(env!("CARGO_BIN_EXE_jobsched"))
}

/// The `jobsched` binary running `standalone` as a child process.
pub struct Daemon {
    pub base: String,
    pub child: tokio::process::Child,
    /// The administrator's login token, given to client commands as `JOBSCHED_TOKEN`.
    pub token: String,
}

/// Starts `cmd`, a `jobsched` role listening on a free port (killed when dropped); the child and the
/// address it printed on its first line.
pub async fn spawn_listening(cmd: tokio::process::Command) -> (tokio::process::Child, String) {
    jobsched_testkit::spawn_listening(cmd, "jobsched").await
}

/// One call to `base` with `token`: the status and the JSON answer (`null` when there is none).
pub async fn call_with(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("the server answers");
    let code = r.status();
    (code, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// The status code of task `task`.
pub async fn task_status(s: &Server, task: &str) -> u64 {
    let (code, v) = s
        .call(Method::GET, &format!("/api/tasks/{task}"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    v["status"].as_u64().unwrap()
}

/// The `code` of an error answer.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

impl Daemon {
    /// Starts `jobsched standalone` on a free port with its data in `dir`, and waits until it serves.
    pub async fn start(dir: &Path) -> Daemon {
        let mut cmd = jobsched();
        cmd.args(["standalone", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--capacity", "4", "--shutdown-grace-secs", "5"])
            .env("JOBSCHED_LOG", "warn")
            .env("JOBSCHED_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stderr(Stdio::inherit());
        let (child, base) = spawn_listening(cmd).await;
        let token = login(&reqwest::Client::new(), &base, "admin", ADMIN_PASSWORD).await;
        let d = Daemon { base, child, token };
        wait_for("the daemon to become active", || async {
            let out = d.cli(&["system", "status", "-o", "json"]).await;
            out.ok && out.json()["active"] == true && out.json()["executors_online"] == 1
        })
        .await;
        d
    }

    /// Runs a client command against this daemon, as the administrator.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        cli_as(&self.base, &self.token, args).await
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

/// Runs `jobsched ARGS` against `server` with no token.
pub async fn cli(server: &str, args: &[&str]) -> CliOutput {
    cli_as(server, "", args).await
}

/// Runs `jobsched ARGS` against `server` with `token` (`JOBSCHED_TOKEN`; empty: none). The client's
/// config directory is one of its own, so no token file of the machine's user is read or written.
pub async fn cli_as(server: &str, token: &str, args: &[&str]) -> CliOutput {
    run_cli(cli_command(server, token, args), None).await
}

/// Runs `jobsched ARGS` against `server` with `token` and `stdin` as its standard input.
pub async fn cli_stdin(server: &str, token: &str, args: &[&str], stdin: &str) -> CliOutput {
    run_cli(cli_command(server, token, args), Some(stdin)).await
}

/// `jobsched ARGS` against `server` with `token` (empty: none) and a config directory of its own.
fn cli_command(server: &str, token: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = jobsched();
    cmd.args(args).env("JOBSCHED_SERVER", server).env(
        "XDG_CONFIG_HOME",
        std::env::temp_dir().join("jobsched-test-no-config"),
    );
    if !token.is_empty() {
        cmd.env("JOBSCHED_TOKEN", token);
    }
    cmd
}

/// Runs `cmd` to its end with `stdin` (if any) as its standard input.
pub async fn run_cli(mut cmd: tokio::process::Command, stdin: Option<&str>) -> CliOutput {
    use tokio::io::AsyncWriteExt;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run jobsched");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    CliOutput {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
