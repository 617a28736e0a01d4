//! The daemon's configuration: defaults, then a TOML file (`--config`), then environment variables and
//! flags (clap reads both; a flag wins over its variable). Unknown keys in the file are refused by name.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The effective configuration of one `jobsched` process. Its `Debug` shows the store URL without its
/// password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP API listens (`JOBSCHED_LISTEN`).
    pub listen: SocketAddr,
    /// The store (`JOBSCHED_STORE`): `mysql://user:password@host:port/database` or `sqlite://path`.
    /// `standalone` defaults to an SQLite file in `data_dir`.
    pub store: Option<String>,
    /// Where `standalone` keeps its SQLite file (`JOBSCHED_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Kafka brokers (`JOBSCHED_KAFKA`), for the distributed roles.
    pub kafka: Option<String>,
    /// ZooKeeper hosts (`JOBSCHED_ZOOKEEPER`), for the distributed roles.
    pub zookeeper: Option<String>,
    /// Prefix of the Kafka topics and consumer groups (`JOBSCHED_KAFKA_PREFIX`): clusters sharing brokers
    /// use different prefixes.
    pub kafka_prefix: String,
    /// Partitions of the results topic when it is created (`JOBSCHED_KAFKA_PARTITIONS`).
    pub kafka_partitions: i32,
    /// The file of the cluster key every Kafka record is signed with (`JOBSCHED_CLUSTER_KEY_FILE`; make
    /// one with `jobsched keygen --out FILE`). The distributed roles need it (or the key itself in
    /// `JOBSCHED_CLUSTER_KEY`); every scheduler and executor of a cluster uses the same key.
    pub cluster_key_file: Option<PathBuf>,
    /// How old (or how far ahead of the executor's clock) a task or cancel may be signed, seconds
    /// (`JOBSCHED_MESSAGE_MAX_AGE_SECS`): older ones are refused as replays.
    pub message_max_age_secs: u64,
    /// More librdkafka properties for every Kafka client, a `[kafka_client]` table of the config file
    /// (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.location`, …).
    /// Values of secret properties are shown as `***`.
    pub kafka_client: BTreeMap<String, String>,
    /// A file holding ZooKeeper digest credentials, `user:password` (`JOBSCHED_ZK_AUTH_FILE`): jobsched
    /// authenticates with them and every node it creates is writable by that identity only.
    pub zk_auth_file: Option<PathBuf>,
    /// ZooKeeper session timeout, seconds (`JOBSCHED_ZK_SESSION_TIMEOUT_SECS`): how long a process may be
    /// unreachable before its registrations and leadership end.
    pub zk_session_timeout_secs: u64,
    /// This process's id (`JOBSCHED_ID`): the executor's for `executor` and for the built-in executor of
    /// `standalone`; for `scheduler`, the scheduler's (and its built-in executor's, without Kafka). Default:
    /// `<role>-<host name>` (and `-<port>` for `executor` and a scheduler's id).
    pub id: Option<String>,
    /// Tasks the built-in executor runs at once (`JOBSCHED_CAPACITY`).
    pub capacity: u32,
    /// The executor's group (`JOBSCHED_GROUP`).
    pub group: String,
    /// Seconds running tasks get to finish when the process is asked to stop (`JOBSCHED_SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace_secs: u64,
    /// Log format (`JOBSCHED_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Log filter, `tracing` syntax (`JOBSCHED_LOG`), e.g. `info` or `jobsched=debug,info`.
    pub log: String,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Largest accepted body of the bulk route (`POST /api/jobs/bulk`, up to 10,000 jobs), bytes.
    pub max_bulk_body_bytes: usize,
    /// The server the client commands talk to (`JOBSCHED_SERVER`).
    pub server: String,
    /// Seconds a login token is valid (`JOBSCHED_SESSION_TTL_SECS`, default 12 h).
    pub session_ttl_secs: u64,
    /// A file holding the key login tokens are signed with (`JOBSCHED_JWT_SECRET_FILE`; at least 32 bytes).
    /// Default: a key generated on the first start and kept in the store, shared by every scheduler.
    /// Executors validate tokens only with this file.
    pub jwt_secret_file: Option<PathBuf>,
    /// A file holding the token Prometheus sends to `/metrics` (`JOBSCHED_METRICS_TOKEN_FILE`, or the
    /// token itself in `JOBSCHED_METRICS_TOKEN`; at least 32 characters). Without it a scheduler's
    /// `/metrics` takes an administrator's or read-only user's token, and an executor's a login token.
    pub metrics_token_file: Option<PathBuf>,
    /// A file holding the first administrator's password (`JOBSCHED_ADMIN_PASSWORD_FILE`), used when the
    /// store has no user yet. `JOBSCHED_ADMIN_PASSWORD` gives it directly; without either a random one
    /// is written to `admin-password` in the data directory.
    pub admin_password_file: Option<PathBuf>,
    /// The TLS certificate chain, PEM (`JOBSCHED_TLS_CERT`); with `tls_key` the API is served over TLS.
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key, PEM (`JOBSCHED_TLS_KEY`).
    pub tls_key: Option<PathBuf>,
    /// Allow listening on a non-loopback address without TLS (`JOBSCHED_ALLOW_INSECURE_LISTEN`): tokens
    /// and passwords would cross the network in the clear.
    pub allow_insecure_listen: bool,
    /// The host names the API answers to (`JOBSCHED_ALLOWED_HOSTS`, comma-separated; `*`: any). Default:
    /// loopback names, the host name, the listen address (for a wildcard address, every interface's).
    pub allowed_hosts: Vec<String>,
    /// Origins (`https://ui.example`) besides the server's own allowed to make state-changing browser
    /// requests (`JOBSCHED_ALLOWED_ORIGINS`).
    pub allowed_origins: Vec<String>,
    /// Addresses of reverse proxies whose `X-Forwarded-For` names the client (`JOBSCHED_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpAddr>,
    /// Requests a second per user, with bursts of twice as many (`JOBSCHED_RATE_LIMIT_USER`; 0: no limit).
    pub rate_limit_user: u32,
    /// Requests a second per client address, with bursts of twice as many (`JOBSCHED_RATE_LIMIT_CLIENT`;
    /// 0: no limit).
    pub rate_limit_client: u32,
    /// Failed logins a minute per user name and per client address before further tries get 429
    /// (`JOBSCHED_LOGIN_FAILURES_PER_MINUTE`; 0: no limit).
    pub login_failures_per_minute: u32,
    /// The keyring file secret job params are encrypted with (`JOBSCHED_SECRET_KEY_FILE`). Default:
    /// `secret.key` in the data directory, generated there by `standalone`.
    pub secret_key_file: Option<PathBuf>,
    /// Variables of the executor's environment that tasks also get, names or prefixes ending in `*`
    /// (`JOBSCHED_TASK_ENV_ALLOW`, comma-separated), on top of `PATH`, `HOME`, `LANG`, `TZ` and the like.
    pub task_env_allow: Vec<String>,
    /// A CA certificate (PEM) the client commands trust for a TLS server (`JOBSCHED_CA_CERT`).
    pub ca_cert: Option<PathBuf>,
    /// The OS user shell tasks run as (`JOBSCHED_TASK_USER`; the executor must run as root). Without it
    /// tasks run as the executor's own user and can read what it can (its data directory included).
    pub task_user: Option<String>,
    /// The URL users reach the API at when a TLS proxy is in front (`JOBSCHED_PUBLIC_URL`, e.g.
    /// `https://jobs.example.com`): its origin is the server's own, its host one of its names, and an
    /// `https` one makes the session cookie `Secure`.
    pub public_url: Option<String>,
    /// Milliseconds between evaluations of the alert rules by the active scheduler
    /// (`JOBSCHED_ALERT_INTERVAL_MS`, default 5000).
    pub alert_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: None,
            data_dir: PathBuf::from("jobsched-data"),
            kafka: None,
            zookeeper: None,
            kafka_prefix: "jobsched".to_owned(),
            kafka_partitions: 8,
            cluster_key_file: None,
            message_max_age_secs: 900,
            kafka_client: BTreeMap::new(),
            zk_auth_file: None,
            zk_session_timeout_secs: 10,
            id: None,
            capacity: 8,
            group: String::new(),
            shutdown_grace_secs: 30,
            log_format: LogFormat::Human,
            log: "info".to_owned(),
            max_body_bytes: 1 << 20,
            max_bulk_body_bytes: 64 << 20,
            server: "http://127.0.0.1:8080".to_owned(),
            session_ttl_secs: 12 * 3600,
            jwt_secret_file: None,
            metrics_token_file: None,
            admin_password_file: None,
            tls_cert: None,
            tls_key: None,
            allow_insecure_listen: false,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            rate_limit_user: 200,
            rate_limit_client: 400,
            login_failures_per_minute: 5,
            secret_key_file: None,
            task_env_allow: Vec::new(),
            ca_cert: None,
            task_user: None,
            public_url: None,
            alert_interval_ms: 5000,
        }
    }
}

/// Values given as flags or environment variables (absent ones leave the file's or the default).
#[derive(Clone, Debug, Default, Serialize)]
#[allow(missing_docs)] // Each field overrides the `Config` field of the same name.
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zookeeper: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_partitions: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_max_age_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zk_auth_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zk_session_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_ttl_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_password_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_insecure_listen: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Vec<IpAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_user: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_client: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_failures_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_env_allow: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_interval_ms: Option<u64>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted_toml())
    }
}

impl Config {
    /// Defaults, then the TOML file if given, then the overrides.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!("config file {} does not exist", path.display()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))
    }

    /// The configuration with secrets (the store's password, secret Kafka client properties) replaced
    /// by `***`, as TOML.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.store = shown.store.as_deref().map(jobsched_mysql::redact_url);
        for (k, v) in shown.kafka_client.iter_mut() {
            if jobsched_kafka::is_secret_property(k) {
                *v = "***".to_owned();
            }
        }
        let mut out = String::new();
        let value = serde_json::to_value(&shown).expect("config serialises");
        for (k, v) in value.as_object().expect("an object") {
            let v = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::Object(table) => {
                    let entries: Vec<String> = table
                        .iter()
                        .map(|(k, v)| format!("\"{k}\" = {v}"))
                        .collect();
                    format!("{{ {} }}", entries.join(", "))
                }
                other => other.to_string(),
            };
            out.push_str(&format!("{k} = {v}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_store_password() {
        let c = Config {
            store: Some("mysql://u:hunter2@h/db".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("mysql://u:***@h/db") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn kafka_client_secrets_are_redacted_and_the_rest_shown() {
        let mut c = Config::default();
        c.kafka_client
            .insert("sasl.password".into(), "hunter2".into());
        c.kafka_client
            .insert("ssl.key.pem".into(), "PRIVATE".into());
        c.kafka_client
            .insert("ssl.ca.location".into(), "/etc/ca.pem".into());
        c.kafka_client
            .insert("sasl.mechanism".into(), "SCRAM-SHA-256".into());
        let shown = c.redacted_toml();
        assert!(
            !shown.contains("hunter2") && !shown.contains("PRIVATE"),
            "{shown}"
        );
        assert!(
            shown.contains(r#""sasl.mechanism" = "SCRAM-SHA-256""#)
                && shown.contains("/etc/ca.pem")
                && shown.contains(r#""sasl.password" = "***""#),
            "{shown}"
        );
        // What is printed reads back as TOML.
        let back: Config = Figment::from(Toml::string(&shown)).extract().unwrap();
        assert_eq!(back.kafka_client["sasl.mechanism"], "SCRAM-SHA-256");
    }

    #[test]
    fn file_then_flags_win() {
        let dir = std::env::temp_dir().join(format!("jobsched-cfg-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "capacity = 3\nstore = \"mysql://u:secret@h/db\"\n").unwrap();
        let c = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!((c.capacity, c.listen.port()), (3, 8080));
        let o = Overrides {
            capacity: Some(5),
            ..Overrides::default()
        };
        assert_eq!(Config::load(Some(&file), &o).unwrap().capacity, 5);
        let shown = c.redacted_toml();
        assert!(
            shown.contains("mysql://u:***@h/db") && !shown.contains("secret"),
            "{shown}"
        );
        std::fs::write(&file, "capacty = 3\n").unwrap();
        let e = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(e.contains("capacty"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }
}
