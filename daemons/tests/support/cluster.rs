//! The distributed mode as separate processes: `jobsched scheduler` and `jobsched executor` binaries on
//! MariaDB, the Kafka broker and ZooKeeper of `scripts/services.sh`, isolated per test (a fresh database,
//! a topic prefix, a ZooKeeper root). Unreachable servers fail the test with `CI=true`, skip it otherwise.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use jobsched_testkit::env_or;

use super::{ADMIN_PASSWORD, jobsched, wait_for};

/// One `jobsched` process.
/// The token every process of a test cluster takes for `/metrics`.
pub const METRICS_TOKEN: &str = "test-cluster-metrics-token-0123456789abcdef";

pub struct Proc {
    pub base: String,
    pub id: String,
    pub child: tokio::process::Child,
}

impl Proc {
    /// Kills it with SIGKILL (no shutdown of any kind).
    pub async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends a signal (`STOP`, `CONT`, …) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .expect("kill(1)")
            .success();
        assert!(ok, "kill -{sig} {}", self.pid());
    }
}

/// Servers and names of one test's cluster.
pub struct Cluster {
    /// The test's database (dropped with the cluster).
    pub db: super::mysql::TestDb,
    pub kafka: String,
    pub zookeeper: String,
    pub prefix: String,
    pub logs: PathBuf,
    /// The key file every process of the cluster signs or checks login tokens with.
    pub jwt_key: PathBuf,
    /// The cluster key every process signs and checks Kafka records with.
    pub cluster_key: PathBuf,
    /// The ZooKeeper digest credentials every process authenticates with.
    pub zk_auth: PathBuf,
    http: reqwest::Client,
    /// The administrator's login token, once logged in.
    token: tokio::sync::Mutex<Option<String>>,
}

impl Cluster {
    /// A fresh database, prefix and root, or `None` (outside CI) when a server is unreachable.
    pub async fn new() -> Option<Cluster> {
        let kafka = env_or("JOBSCHED_TEST_KAFKA", "127.0.0.1:9092");
        let zk = env_or("JOBSCHED_TEST_ZOOKEEPER", "127.0.0.1:2181");
        let tag = jobsched_testkit::tag();
        let reachable = |addr: &str| std::net::TcpStream::connect(addr).is_ok();
        for (what, addr) in [("Kafka", kafka.as_str()), ("ZooKeeper", zk.as_str())] {
            if !reachable(addr) {
                return jobsched_testkit::unreachable(format!("{what} at {addr} is unreachable"));
            }
        }
        let db = super::mysql::TestDb::create("jstest").await?;
        let logs = std::env::temp_dir().join(format!("jobsched-e2e-{tag}"));
        std::fs::create_dir_all(&logs).unwrap();
        let jwt_key = logs.join("jwt.key");
        std::fs::write(
            &jwt_key,
            format!("test-signing-key-{tag}-{:016x}", fastrand::u64(..)),
        )
        .unwrap();
        let cluster_key = logs.join("cluster.key");
        std::fs::write(
            &cluster_key,
            jobsched_kafka::ClusterKey::generate().encode(),
        )
        .unwrap();
        let zk_auth = logs.join("zk.auth");
        std::fs::write(&zk_auth, format!("jobsched:{:032x}\n", fastrand::u128(..))).unwrap();
        Some(Cluster {
            db,
            kafka,
            zookeeper: format!("{zk}/jse2e-{tag}"),
            prefix: format!("e2e{tag}"),
            logs,
            jwt_key,
            cluster_key,
            zk_auth,
            http: reqwest::Client::new(),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The store URL.
    pub fn store(&self) -> String {
        self.db.url()
    }

    /// A pool on the test's database (for checks on the stored records).
    pub async fn pool(&self) -> sqlx::MySqlPool {
        self.db.pool().await
    }

    async fn spawn(&self, name: &str, args: &[String]) -> Proc {
        let log = std::fs::File::create(self.logs.join(format!("{name}.log"))).unwrap();
        let mut cmd = jobsched();
        cmd.args(args)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--kafka",
                &self.kafka,
                "--zookeeper",
                &self.zookeeper,
                "--kafka-prefix",
                &self.prefix,
                "--zk-session-timeout-secs",
                "4",
                "--shutdown-grace-secs",
                "2",
            ])
            .arg("--jwt-secret-file")
            .arg(&self.jwt_key)
            .arg("--cluster-key-file")
            .arg(&self.cluster_key)
            .arg("--zk-auth-file")
            .arg(&self.zk_auth)
            .env("JOBSCHED_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("JOBSCHED_METRICS_TOKEN", METRICS_TOKEN)
            .env("JOBSCHED_ALERT_INTERVAL_MS", "200")
            .env("JOBSCHED_LOG", "info")
            .stderr(Stdio::from(log));
        let what = format!("{name} (its log is in {})", self.logs.display());
        let (child, base) = jobsched_testkit::spawn_listening(cmd, &what).await;
        Proc {
            base,
            id: name.to_owned(),
            child,
        }
    }

    /// A `jobsched scheduler` with id `name`.
    async fn spawn_scheduler(&self, name: &str) -> Proc {
        self.spawn(
            name,
            &[
                "scheduler".into(),
                "--id".into(),
                name.into(),
                "--store".into(),
                self.store(),
            ],
        )
        .await
    }

    /// Starts a scheduler and waits until it is the active one.
    pub async fn scheduler(&self, name: &str) -> Proc {
        let p = self.spawn_scheduler(name).await;
        wait_for("the scheduler to be active", || async {
            let (code, v) = self.call(&p, Method::GET, "/api/system/status", None).await;
            code == StatusCode::OK && v["active"] == true
        })
        .await;
        p
    }

    /// Starts a scheduler that another one leads: it answers its API as a standby.
    pub async fn standby(&self, name: &str) -> Proc {
        let p = self.spawn_scheduler(name).await;
        wait_for("the standby to answer", || async {
            let (code, v) = self.call(&p, Method::GET, "/api/system/status", None).await;
            code == StatusCode::OK && v["active"] == false
        })
        .await;
        p
    }

    /// Its `/api/system/status` (`Value::Null` while it does not answer).
    pub async fn status(&self, p: &Proc) -> Value {
        self.call(p, Method::GET, "/api/system/status", None)
            .await
            .1
    }

    /// Waits until one of `schedulers` other than index `not` is the active one; its index.
    pub async fn active(&self, schedulers: &[Proc], not: Option<usize>) -> usize {
        let since = tokio::time::Instant::now();
        loop {
            for (i, p) in schedulers.iter().enumerate() {
                if Some(i) != not && self.status(p).await["active"] == true {
                    return i;
                }
            }
            assert!(
                since.elapsed() < Duration::from_secs(60),
                "no scheduler took over"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Disables the jobs `ids` through `s`'s API (their fires stop).
    pub async fn disable(&self, s: &Proc, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            let (code, v) = self
                .call(
                    s,
                    Method::PUT,
                    &format!("/api/jobs/{id}"),
                    Some(serde_json::json!({"enabled": false})),
                )
                .await;
            assert_eq!(code, StatusCode::OK, "disabling {id}: {v}");
        }
    }

    /// How many executors `s` lists as online.
    pub async fn executors_online(&self, s: &Proc) -> usize {
        let (_, list) = self.call(s, Method::GET, "/api/executors", None).await;
        list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no executor list: {list}"))
            .iter()
            .filter(|x| x["status"] == 1)
            .count()
    }

    /// Starts an executor; `scheduler` sees it online before this returns.
    pub async fn executor(&self, scheduler: &Proc, id: &str, capacity: u32) -> Proc {
        let p = self
            .spawn(
                id,
                &[
                    "executor".into(),
                    "--id".into(),
                    id.into(),
                    "--capacity".into(),
                    capacity.to_string(),
                ],
            )
            .await;
        wait_for("the executor to be online", || async {
            let (_, v) = self
                .call(
                    scheduler,
                    Method::GET,
                    &format!("/api/executors/{id}"),
                    None,
                )
                .await;
            v["status"] == 1
        })
        .await;
        p
    }

    /// The administrator's login token (logging in at `p`, a scheduler, the first time).
    pub async fn token(&self, p: &Proc) -> Option<String> {
        let mut t = self.token.lock().await;
        if t.is_none() {
            let r = self
                .http
                .post(format!("{}/api/auth/login", p.base))
                .json(&serde_json::json!({"name": "admin", "password": ADMIN_PASSWORD}))
                .send()
                .await
                .ok()?;
            if r.status() != StatusCode::OK {
                return None;
            }
            let v: Value = r.json().await.ok()?;
            *t = v["token"].as_str().map(str::to_owned);
        }
        t.clone()
    }

    /// A call to a process's API, as the administrator.
    /// `GET /metrics` of `p` with the metrics token: the text (empty if it does not answer 200).
    pub async fn metrics(&self, p: &Proc) -> String {
        match self
            .http
            .get(format!("{}/metrics", p.base))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
        {
            Ok(r) if r.status() == StatusCode::OK => r.text().await.unwrap_or_default(),
            _ => String::new(),
        }
    }

    pub async fn call(
        &self,
        p: &Proc,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let Some(token) = self.token(p).await else {
            return (StatusCode::SERVICE_UNAVAILABLE, Value::Null);
        };
        let mut req = self
            .http
            .request(method, format!("{}{path}", p.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(resp) => {
                let code = resp.status();
                let bytes = resp.bytes().await.unwrap_or_default();
                (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            }
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var_os("JOBSCHED_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.logs);
        } else {
            eprintln!("process logs kept in {}", self.logs.display());
        }
    }
}

/// Creates a job through `s`'s API.
pub async fn create(c: &Cluster, s: &Proc, body: serde_json::Value) {
    let (code, v) = c.call(s, Method::POST, "/api/jobs", Some(body)).await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
}

/// Runs a job now through `s`'s API; the new task id.
pub async fn execute(c: &Cluster, s: &Proc, job: &str) -> String {
    let (code, v) = c
        .call(s, Method::POST, &format!("/api/jobs/{job}/execute"), None)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    v["task_id"].as_str().unwrap().to_owned()
}

/// One number from the test's database.
pub async fn scalar(pool: &sqlx::MySqlPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until no stored task is queued, dispatched or running and no new attempt was recorded for 2 s.
/// (A job disabled just before its fire time may still fire once: the active scheduler applies the
/// change when its nudge arrives, which can be just after the fire.)
pub async fn no_active_task(pool: &sqlx::MySqlPool) {
    // The newest attempt id seen with nothing active, and since when.
    let quiet = std::cell::Cell::new(None::<(i64, tokio::time::Instant)>);
    wait_for("every task to end and no new attempt for 2 s", || async {
        let active = scalar(
            pool,
            "SELECT COUNT(*) FROM job_logs WHERE status IN (0, 5, 6)",
        )
        .await;
        let last = scalar(pool, "SELECT COALESCE(MAX(id), 0) FROM job_logs").await;
        let now = tokio::time::Instant::now();
        match quiet.get() {
            _ if active > 0 => quiet.set(None),
            Some((seen, since)) if seen == last => return now - since >= Duration::from_secs(2),
            _ => quiet.set(Some((last, now))),
        }
        false
    })
    .await;
}

/// Writes records that are not messages onto a topic: bytes that are not JSON, and JSON that is not a
/// message.
pub async fn poison(c: &Cluster, topic: &str) {
    for g in [&b"garbage"[..], br#"{"task_id": 1}"#] {
        produce_raw(c, topic, "x", g, None).await;
    }
}

/// Writes `payload` onto `topic` with `mac` in the `jobsched-mac` header (none: unsigned), as anyone who
/// can reach the broker could.
pub async fn produce_raw(c: &Cluster, topic: &str, key: &str, payload: &[u8], mac: Option<String>) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let p: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &c.kafka)
        .create()
        .unwrap();
    let mut record = FutureRecord::to(topic).key(key).payload(payload);
    if let Some(mac) = &mac {
        record = record.headers(OwnedHeaders::new().insert(Header {
            key: jobsched_kafka::MAC_HEADER,
            value: Some(mac.as_bytes()),
        }));
    }
    p.send(record, Duration::from_secs(10)).await.unwrap();
}
