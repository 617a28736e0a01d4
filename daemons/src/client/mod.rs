//! The client commands: each is one or two HTTP calls to a jobsched server and prints the answer as a
//! table or as the server's JSON.

mod accounts;
mod alerts;
mod bulk;
mod follow;
mod render;
mod session;

use std::path::Path;
use std::time::Duration;

use jobsched::{ExecutionRecord, ExecutorRecord, Job, JobSpec, Page, Params, ScheduleType};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::ErrorBody;
use crate::cli::{
    ExecutorsCommand, JobArgs, JobsCommand, Output, PageArgs, SystemCommand, SystemConfigCommand,
    TasksCommand,
};
use crate::error::DaemonError;

pub use session::TokenStore;

/// A client of one server.
pub struct Client {
    base: String,
    http: reqwest::Client,
    output: Output,
    /// The token sent with every call: `JOBSCHED_TOKEN`, else the one `jobsched login` kept for this
    /// server.
    token: Option<String>,
}

/// Percent-encodes a path segment or query value (ids are validated by the server; this keeps odd input
/// from changing the URL's shape).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn page_query(extra: &[(&str, Option<String>)], page: &PageArgs) -> String {
    let mut pairs = extra.to_vec();
    pairs.push(("page", Some(page.page.to_string())));
    pairs.push(("page_size", Some(page.page_size.to_string())));
    query(&pairs)
}

/// `name=value` into a JSON value: numbers, booleans and JSON stay typed, anything else is a string.
fn kv(raw: &str) -> Result<(String, Value), DaemonError> {
    let (k, v) = raw
        .split_once('=')
        .ok_or_else(|| DaemonError::Config(format!("'{raw}' is not NAME=VALUE")))?;
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
    Ok((k.trim().to_owned(), value))
}

fn params(raw: &[String]) -> Result<Option<Params>, DaemonError> {
    if raw.is_empty() {
        return Ok(None);
    }
    raw.iter()
        .map(|p| kv(p))
        .collect::<Result<Params, _>>()
        .map(Some)
}

/// The job body of `create`/`update` from the flags (over `--spec` JSON).
fn spec(a: &JobArgs) -> Result<JobSpec, DaemonError> {
    let mut s: JobSpec = match &a.spec {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| DaemonError::Config(format!("--spec is not a job: {e}")))?,
        None => JobSpec::default(),
    };
    if let Some(id) = &a.id {
        s.job_id = Some(jobsched::JobId::new(id)?);
    }
    let set = |dst: &mut Option<String>, src: &Option<String>| {
        if src.is_some() {
            dst.clone_from(src);
        }
    };
    set(&mut s.name, &a.name);
    set(&mut s.command, &a.command);
    set(&mut s.job_type, &a.job_type);
    set(&mut s.time_zone, &a.time_zone);
    set(&mut s.owner, &a.owner);
    set(&mut s.description, &a.description);
    let schedules = [
        a.cron.is_some(),
        a.every.is_some(),
        a.once.is_some(),
        a.manual,
    ];
    if schedules.iter().filter(|x| **x).count() > 1 {
        return Err(DaemonError::Config(
            "give one of --cron, --every, --once, --manual".into(),
        ));
    }
    if let Some(c) = &a.cron {
        s.schedule_type = Some(ScheduleType::Cron);
        s.cron_expression = Some(c.clone());
    }
    if let Some(n) = a.every {
        s.schedule_type = Some(ScheduleType::FixedRate);
        s.interval = Some(n);
    }
    if let Some(t) = &a.once {
        s.schedule_type = Some(ScheduleType::Once);
        s.start_time = Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| {
                    DaemonError::Config(format!("--once '{t}' is not an RFC 3339 time: {e}"))
                })?
                .with_timezone(&chrono::Utc),
        );
    }
    if a.manual {
        s.schedule_type = Some(ScheduleType::Manual);
    }
    s.priority = a.priority.or(s.priority);
    s.timeout = a.timeout.or(s.timeout);
    s.retry_count = a.retry_count.or(s.retry_count);
    s.retry_interval = a.retry_interval.or(s.retry_interval);
    s.enabled = a.enabled.or(s.enabled);
    if let Some(p) = params(&a.params)? {
        s.params.get_or_insert_with(Params::new).extend(p);
    }
    for raw in &a.secret_params {
        let (k, v) = raw.split_once('=').ok_or_else(|| {
            DaemonError::Config(format!(
                "--secret-param '{k}' is not NAME=VALUE",
                k = raw.split('=').next().unwrap_or("")
            ))
        })?;
        s.params
            .get_or_insert_with(Params::new)
            .insert(k.trim().to_owned(), serde_json::json!({ "secret": v }));
    }
    Ok(s)
}

/// One line for an error answer: what to do about a missing, expired or revoked session, or the
/// server's message.
fn error_line(method: &Method, path: &str, status: reqwest::StatusCode, bytes: &[u8]) -> String {
    let body = serde_json::from_slice::<ErrorBody>(bytes).ok();
    let code = body.as_ref().map_or("", |b| b.error.code.as_str());
    match (status.as_u16(), code) {
        (401, "unauthenticated") => {
            "not logged in: run `jobsched login` (or set JOBSCHED_TOKEN)".to_owned()
        }
        (401, "token_expired" | "token_revoked") => format!(
            "{}: log in again with `jobsched login`",
            body.map(|b| b.error.message).unwrap_or_default()
        ),
        _ => {
            let why = body
                .map(|b| format!("{} ({})", b.error.message, b.error.code))
                .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
            format!("{method} {path}: {} {why}", status.as_u16())
        }
    }
}

impl Client {
    /// A client of `server` (e.g. `http://127.0.0.1:8080`), trusting `ca_cert` (PEM) for TLS besides the
    /// usual roots, with the token of `JOBSCHED_TOKEN` or of the last `jobsched login` to this server.
    pub fn new(server: &str, output: Output, ca_cert: Option<&Path>) -> Result<Self, DaemonError> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                DaemonError::Config(format!(
                    "cannot read the CA certificate {}: {e}",
                    path.display()
                ))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                DaemonError::Config(format!("{} is not a PEM certificate: {e}", path.display()))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| DaemonError::Client(format!("HTTP client: {e}")))?;
        let base = server.trim_end_matches('/').to_owned();
        let token = match std::env::var("JOBSCHED_TOKEN") {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
            _ => TokenStore::default_location().and_then(|s| s.get(&base)),
        };
        Ok(Client {
            base,
            http,
            output,
            token,
        })
    }

    /// One call: the decoded answer, or the server's error as one line.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, DaemonError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| DaemonError::Client(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| DaemonError::Client(format!("reading the answer of {url}: {e}")))?;
        if !status.is_success() {
            return Err(DaemonError::Client(error_line(
                &method, path, status, &bytes,
            )));
        }
        let bytes = if bytes.is_empty() {
            "null".into()
        } else {
            bytes
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| DaemonError::Client(format!("unexpected answer from {url}: {e}")))
    }

    /// `GET path`.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, DaemonError> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` without a body.
    async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, DaemonError> {
        self.call(Method::POST, path, None).await
    }

    /// Prints `value` as JSON, or with `table` for people.
    fn show<T: serde::Serialize>(&self, value: &T, table: impl FnOnce(&T) -> String) {
        #![allow(clippy::print_stdout)] // The client's output.
        match self.output {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(value).expect("answers serialise")
            ),
            Output::Table => {
                let text = table(value);
                if !text.is_empty() {
                    println!("{}", text.trim_end());
                }
            }
        }
    }

    /// `jobsched jobs …`
    pub async fn jobs(&self, cmd: JobsCommand) -> Result<(), DaemonError> {
        match cmd {
            JobsCommand::List {
                name,
                enabled,
                owner,
                page,
            } => {
                let q = page_query(
                    &[
                        ("name", name),
                        ("enabled", enabled.map(|e| e.to_string())),
                        ("owner", owner),
                    ],
                    &page,
                );
                let p: Page<Job> = self.get(&format!("/api/jobs{q}")).await?;
                self.show(&p, render::jobs);
            }
            JobsCommand::Get { job_id } => {
                let j: Job = self.get(&format!("/api/jobs/{}", enc(&job_id))).await?;
                self.show(&j, render::job);
            }
            JobsCommand::Create(a) => {
                let body = serde_json::to_value(spec(&a)?).expect("a spec serialises");
                let j: Job = self.call(Method::POST, "/api/jobs", Some(&body)).await?;
                self.show(&j, render::job);
            }
            JobsCommand::Update { job_id, job } => {
                let body = serde_json::to_value(spec(&job)?).expect("a spec serialises");
                let j: Job = self
                    .call(
                        Method::PUT,
                        &format!("/api/jobs/{}", enc(&job_id)),
                        Some(&body),
                    )
                    .await?;
                self.show(&j, render::job);
            }
            JobsCommand::Delete { job_id } => {
                let v: Value = self
                    .call(Method::DELETE, &format!("/api/jobs/{}", enc(&job_id)), None)
                    .await?;
                self.show(&v, |_| format!("deleted {job_id}"));
            }
            JobsCommand::Run { job_id, params: p } => {
                let body = params(&p)?.map(|p| serde_json::json!({ "params": p }));
                let v: Value = self
                    .call(
                        Method::POST,
                        &format!("/api/jobs/{}/execute", enc(&job_id)),
                        body.as_ref(),
                    )
                    .await?;
                self.show(&v, |v| v["task_id"].as_str().unwrap_or_default().to_owned());
            }
            JobsCommand::Cancel { job_id } => {
                let v: Value = self
                    .post(&format!("/api/jobs/{}/cancel", enc(&job_id)))
                    .await?;
                self.show(&v, |v| {
                    format!("cancelled {} task(s) of {job_id}", v["cancelled"])
                });
            }
            JobsCommand::History {
                job_id,
                status,
                from,
                to,
                page,
            } => {
                let q = page_query(&[("status", status), ("from", from), ("to", to)], &page);
                let p: Page<ExecutionRecord> = self
                    .get(&format!("/api/jobs/{}/history{q}", enc(&job_id)))
                    .await?;
                self.show(&p, render::history);
            }
            JobsCommand::Logs { job_id, status } => {
                let q = query(&[("status", status), ("page_size", Some("1".to_owned()))]);
                let p: Page<ExecutionRecord> = self
                    .get(&format!("/api/jobs/{}/history{q}", enc(&job_id)))
                    .await?;
                let latest =
                    p.items.into_iter().next().ok_or_else(|| {
                        DaemonError::Client(format!("job {job_id} has no runs yet"))
                    })?;
                self.show(&latest, render::logs);
            }
            JobsCommand::Export { out } => self.export(out.as_deref()).await?,
            JobsCommand::Import { file } => self.import(&file).await?,
            JobsCommand::NextFires { job_id, count } => {
                let v: Value = self
                    .get(&format!(
                        "/api/jobs/{}/next-fires?count={count}",
                        enc(&job_id)
                    ))
                    .await?;
                self.show(&v, render::next_fires);
            }
        }
        Ok(())
    }

    /// `jobsched tasks …`
    pub async fn tasks(&self, cmd: TasksCommand) -> Result<(), DaemonError> {
        match cmd {
            TasksCommand::Get { task_id } => {
                let v: crate::api::TaskView =
                    self.get(&format!("/api/tasks/{}", enc(&task_id))).await?;
                self.show(&v, render::task);
            }
            TasksCommand::Cancel { task_id } => {
                let v: Value = self
                    .post(&format!("/api/tasks/{}/cancel", enc(&task_id)))
                    .await?;
                self.show(&v, |v| {
                    format!("{task_id}: {}", v["outcome"].as_str().unwrap_or_default())
                });
            }
            TasksCommand::Logs {
                task_id,
                follow: true,
                ..
            } => self.follow(&task_id).await?,
            TasksCommand::Logs {
                task_id, attempt, ..
            } => {
                let v: crate::api::TaskView =
                    self.get(&format!("/api/tasks/{}", enc(&task_id))).await?;
                let rec = match attempt {
                    None => v.latest.clone(),
                    Some(n) => v
                        .attempts
                        .iter()
                        .find(|a| a.attempt == n)
                        .cloned()
                        .ok_or_else(|| {
                            DaemonError::Client(format!("task {task_id} has no attempt {n}"))
                        })?,
                };
                self.show(&rec, render::logs);
            }
        }
        Ok(())
    }

    /// `jobsched executors …`
    pub async fn executors(&self, cmd: ExecutorsCommand) -> Result<(), DaemonError> {
        let (method, path) = match &cmd {
            ExecutorsCommand::List => {
                let p: Page<ExecutorRecord> = self.get("/api/executors").await?;
                self.show(&p, |p| render::executors(&p.items));
                return Ok(());
            }
            ExecutorsCommand::Get { executor_id } => {
                (Method::GET, format!("/api/executors/{}", enc(executor_id)))
            }
            ExecutorsCommand::Enable { executor_id } => (
                Method::POST,
                format!("/api/executors/{}/enable", enc(executor_id)),
            ),
            ExecutorsCommand::Disable { executor_id } => (
                Method::POST,
                format!("/api/executors/{}/disable", enc(executor_id)),
            ),
        };
        let e: ExecutorRecord = self.call(method, &path, None).await?;
        self.show(&e, |e| render::executors(std::slice::from_ref(e)));
        Ok(())
    }

    /// `jobsched system …`
    pub async fn system(&self, cmd: SystemCommand) -> Result<(), DaemonError> {
        match cmd {
            SystemCommand::Status => {
                let v: Value = self.get("/api/system/status").await?;
                self.show(&v, render::key_values);
            }
            SystemCommand::Config {
                command: SystemConfigCommand::Get,
            } => {
                let v: Value = self.get("/api/system/config").await?;
                self.show(&v, render::config);
            }
            SystemCommand::Config {
                command: SystemConfigCommand::Set { settings },
            } => {
                let current: Value = self.get("/api/system/config").await?;
                let mut config = current["config"].clone();
                for s in &settings {
                    let (k, v) = kv(s)?;
                    config[k] = v;
                }
                let version = current["version"].as_u64().unwrap_or(0);
                let v: Value = self
                    .call(
                        Method::PUT,
                        &format!("/api/system/config?expected_version={version}"),
                        Some(&config),
                    )
                    .await?;
                self.show(&v, render::config);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_a_job_body() {
        let a = JobArgs {
            name: Some("n".into()),
            command: Some("echo".into()),
            every: Some(5),
            params: vec!["n=3".into(), "s=x y".into()],
            spec: Some(r#"{"priority": 7, "timeout": 9}"#.into()),
            timeout: Some(10),
            ..JobArgs::default()
        };
        let s = spec(&a).unwrap();
        assert_eq!(s.schedule_type, Some(ScheduleType::FixedRate));
        assert_eq!(
            (s.interval, s.priority, s.timeout),
            (Some(5), Some(7), Some(10))
        );
        let p = s.params.unwrap();
        assert_eq!(p["n"], serde_json::json!(3));
        assert_eq!(p["s"], serde_json::json!("x y"));
        let two = JobArgs {
            cron: Some("* * * * * *".into()),
            manual: true,
            ..JobArgs::default()
        };
        assert!(spec(&two).is_err());
    }

    #[test]
    fn odd_ids_cannot_change_the_url() {
        assert_eq!(enc("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(
            query(&[("name", Some("a&b".into())), ("x", None)]),
            "?name=a%26b"
        );
    }
}
