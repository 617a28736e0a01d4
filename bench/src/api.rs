//! The job-registration benchmark through the HTTP API, as a user deploys it: a `jobsched standalone`
//! process (SQLite) or a `jobsched scheduler` on MariaDB, logged in with a token. Jobs a second created
//! one `POST /api/jobs` at a time (sequential, and from concurrent clients) and 10,000 per `POST
//! /api/jobs/bulk`.

use std::time::Instant;

use serde_json::{Value, json};

use crate::measure::{Figure, json_line, table};

/// Where the API benchmark's daemon keeps its jobs.
#[derive(Clone, Debug)]
pub enum ApiStore {
    /// `jobsched standalone` on an SQLite file (its default).
    Sqlite,
    /// `jobsched scheduler` on a fresh database of this MySQL server (`mysql://user:password@host:port`).
    Mysql(String),
}

/// Parameters of the API benchmark.
#[derive(Clone, Debug)]
pub struct ApiBench {
    pub store: ApiStore,
    /// Jobs created through the bulk route (in requests of `bulk_size`).
    pub bulk_jobs: usize,
    /// Jobs per bulk request.
    pub bulk_size: usize,
    /// Jobs created one request at a time.
    pub single_jobs: usize,
    /// Concurrent clients of the one-at-a-time figure.
    pub clients: usize,
}

const PASSWORD: &str = "benchmark admin password";

/// A daemon for one run.
pub(crate) struct Daemon {
    child: tokio::process::Child,
    pub(crate) base: String,
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
    dir: std::path::PathBuf,
    db: Option<(String, String)>,
}

/// A fresh temporary directory for one run.
pub(crate) fn run_dir(what: &str) -> (String, std::path::PathBuf) {
    let tag = format!("{:08x}", fastrand::u32(..));
    let dir = std::env::temp_dir().join(format!("jobsched-{what}-bench-{tag}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    (tag, dir)
}

impl Daemon {
    async fn start(store: &ApiStore) -> Daemon {
        let (tag, dir) = run_dir("api");
        Self::start_in(store, tag, dir).await
    }

    /// A daemon on `store` with its data directory `dir` (prepared by the caller, e.g. with a filled
    /// SQLite file).
    pub(crate) async fn start_in(store: &ApiStore, tag: String, dir: std::path::PathBuf) -> Daemon {
        let bin = crate::rig::jobsched_binary();
        let mut cmd = jobsched_testkit::clean_command(&bin);
        let mut db = None;
        match store {
            ApiStore::Sqlite => {
                cmd.arg("standalone");
            }
            ApiStore::Mysql(server) => {
                use sqlx::Connection;
                let name = format!("jsapi_{tag}");
                let mut c = sqlx::MySqlConnection::connect(server)
                    .await
                    .expect("MySQL login");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut c)
                    .await
                    .expect("create database");
                cmd.args(["scheduler", "--store", &format!("{server}/{name}")]);
                db = Some((server.clone(), name));
            }
        }
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .args(["--rate-limit-user", "0", "--rate-limit-client", "0"])
            .env("JOBSCHED_ADMIN_PASSWORD", PASSWORD)
            .env("JOBSCHED_LOG", "warn");
        let (child, base) =
            jobsched_testkit::spawn_listening(cmd, &bin.display().to_string()).await;
        let http = reqwest::Client::new();
        let v: Value = http
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"name": "admin", "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("a login answer");
        let token = v["token"].as_str().expect("a token").to_owned();
        Daemon {
            child,
            base,
            token,
            http,
            dir,
            db,
        }
    }

    async fn post(&self, path: &str, body: &Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("the daemon answers");
        let status = r.status();
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            r.text().await.unwrap_or_default()
        );
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        if let Some((server, name)) = &self.db {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::MySqlConnection::connect(server).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
                    .execute(&mut c)
                    .await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A daily cron job with id `id`.
fn job(id: &str) -> Value {
    json!({"job_id": id, "name": format!("api bench {id}"), "command": "true",
        "cron_expression": "0 0 3 * * *", "time_zone": "Europe/Berlin", "retry_count": 1})
}

/// Runs the API benchmark `runs` times and prints its table.
pub async fn api(runs: usize, p: ApiBench) {
    let mut bulk = Figure::new("bulk route: jobs created", "jobs/s");
    let mut bulk_call = Figure::new(
        format!("bulk route: one request of {} jobs", p.bulk_size),
        "s",
    );
    let mut single = Figure::new("POST /api/jobs, one client: jobs created", "jobs/s");
    let mut concurrent = Figure::new(
        format!("POST /api/jobs, {} clients: jobs created", p.clients),
        "jobs/s",
    );
    let store_name = match &p.store {
        ApiStore::Sqlite => "sqlite",
        ApiStore::Mysql(_) => "mysql",
    };
    for run in 0..runs {
        let d = Daemon::start(&p.store).await;
        let start = Instant::now();
        let mut calls = Vec::new();
        for (n, chunk) in (0..p.bulk_jobs)
            .collect::<Vec<_>>()
            .chunks(p.bulk_size)
            .enumerate()
        {
            let jobs: Vec<Value> = chunk
                .iter()
                .map(|i| job(&format!("bulk-{n}-{i}")))
                .collect();
            let t = Instant::now();
            d.post("/api/jobs/bulk", &json!({ "jobs": jobs })).await;
            calls.push(t.elapsed().as_secs_f64());
        }
        let bulk_rate = p.bulk_jobs as f64 / start.elapsed().as_secs_f64();
        let call = calls.iter().sum::<f64>() / calls.len().max(1) as f64;

        let start = Instant::now();
        for i in 0..p.single_jobs {
            d.post("/api/jobs", &job(&format!("one-{i}"))).await;
        }
        let single_rate = p.single_jobs as f64 / start.elapsed().as_secs_f64();

        let start = Instant::now();
        let d = std::sync::Arc::new(d);
        let mut set = tokio::task::JoinSet::new();
        for c in 0..p.clients {
            let d = d.clone();
            let n = p.single_jobs / p.clients.max(1);
            set.spawn(async move {
                for i in 0..n {
                    d.post("/api/jobs", &job(&format!("many-{c}-{i}"))).await;
                }
            });
        }
        while set.join_next().await.is_some() {}
        let concurrent_rate =
            (p.single_jobs / p.clients.max(1) * p.clients) as f64 / start.elapsed().as_secs_f64();

        bulk.values.push(bulk_rate);
        bulk_call.values.push(call);
        single.values.push(single_rate);
        concurrent.values.push(concurrent_rate);
        json_line(
            "api",
            run,
            json!({"store": store_name, "bulk_jobs": p.bulk_jobs, "bulk_size": p.bulk_size,
                "single_jobs": p.single_jobs, "clients": p.clients}),
            json!({"bulk_jobs_per_sec": bulk_rate, "bulk_request_secs": call,
                "single_jobs_per_sec": single_rate, "concurrent_jobs_per_sec": concurrent_rate}),
        );
        if let Ok(d) = std::sync::Arc::try_unwrap(d) {
            d.stop().await;
        }
    }
    table(
        &format!("Job registration through the HTTP API ({store_name})"),
        &format!(
            "{} jobs through `POST /api/jobs/bulk` in requests of {}; {} jobs one `POST /api/jobs` at a \
             time, then as many from {} concurrent clients; daily cron jobs, an administrator's login \
             token, a debug or release `jobsched` next to the benchmark binary.",
            p.bulk_jobs, p.bulk_size, p.single_jobs, p.clients
        ),
        &[bulk, bulk_call, single, concurrent],
    );
}
