//! Secrets: secret params are encrypted at rest (no plaintext in the raw SQLite file or MariaDB rows),
//! shown as "***", kept when sent back as "***", handed only to the task's environment and masked in its
//! output; tasks start with a clean environment, without the daemon's own variables.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::mysql::TestDb;
use support::{
    ADMIN_PASSWORD, Server, TempDir, call_with, jobsched, login, spawn_listening, wait_for,
};

const SECRET: &str = "hunter2 open sesame";

/// Runs a job now and waits for its run to end; the run's record.
async fn run(
    call: impl AsyncFn(Method, &str, Option<Value>) -> (StatusCode, Value),
    job: &str,
    body: Option<Value>,
) -> Value {
    let (c, v) = call(Method::POST, &format!("/api/jobs/{job}/execute"), body).await;
    assert_eq!(c, StatusCode::ACCEPTED, "{v}");
    let task = v["task_id"].as_str().unwrap().to_owned();
    let rec = std::cell::RefCell::new(Value::Null);
    wait_for("the run to end", || async {
        let (_, t) = call(Method::GET, &format!("/api/tasks/{task}"), None).await;
        let done = [1, 2, 3].contains(&t["status"].as_u64().unwrap_or(0));
        *rec.borrow_mut() = t;
        done
    })
    .await;
    rec.into_inner()
}

/// Every file of an SQLite database (the file and its journal), as bytes.
fn raw_sqlite(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(dir.join(format!("jobsched.db{suffix}"))) {
            all.extend(b);
        }
    }
    assert!(all.len() > 4096, "the database files are there");
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_params_are_sealed_at_rest_shown_as_stars_and_reach_only_the_task() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let call = async |m: Method, p: &str, b: Option<Value>| s.call(m, p, b).await;
    // The command spells the value it expects without containing it (the command is stored as it is).
    let command = r#"test "$JOBSCHED_PARAM_DB_PASSWORD" = "$(printf 'hunter2 open %s' sesame)" && echo match; echo "leak: $JOBSCHED_PARAM_DB_PASSWORD"; echo "region $JOBSCHED_PARAM_REGION""#;
    let (c, job) = s
        .call(
            Method::POST,
            "/api/jobs",
            Some(
                json!({"job_id": "db-dump", "name": "dump", "command": command,
                "schedule_type": "manual",
                "params": {"db_password": {"secret": SECRET}, "region": "eu"}}),
            ),
        )
        .await;
    assert_eq!(c, StatusCode::CREATED, "{job}");
    assert_eq!(job["params"], json!({"db_password": "***", "region": "eu"}));
    let (_, got) = s.call(Method::GET, "/api/jobs/db-dump", None).await;
    assert_eq!(got["params"]["db_password"], "***");

    let rec = run(&call, "db-dump", None).await;
    assert_eq!(rec["status"], 1, "{rec}");
    let out = rec["output"].as_str().unwrap();
    assert!(out.contains("match"), "the task got the clear value: {out}");
    assert!(
        out.contains("leak: ***") && !out.contains("hunter2"),
        "masked in its output: {out}"
    );
    assert_eq!(rec["params"]["db_password"], "***", "{rec}");

    // Sent back as "***" (an edit form), the stored value stays.
    let (c, v) = s
        .call(
            Method::PUT,
            "/api/jobs/db-dump",
            Some(json!({"params": {"db_password": "***", "region": "us"}})),
        )
        .await;
    assert_eq!(c, StatusCode::OK, "{v}");
    let rec = run(&call, "db-dump", None).await;
    let out = rec["output"].as_str().unwrap();
    assert!(out.contains("match") && out.contains("region us"), "{out}");
    // A run-time secret is sealed too.
    s.call(
        Method::POST,
        "/api/jobs",
        Some(json!({"job_id": "once", "name": "once", "schedule_type": "manual",
            "command": r#"test "$JOBSCHED_PARAM_TOKEN" = "$(printf 'run time secret %d' 42)" && echo got-it"#})),
    )
    .await;
    let rec = run(
        &call,
        "once",
        Some(json!({"params": {"token": {"secret": "run time secret 42"}}})),
    )
    .await;
    assert!(rec["output"].as_str().unwrap().contains("got-it"), "{rec}");
    assert_eq!(rec["params"]["token"], "***");

    // "***" for a secret that is not stored, and a sealed value pasted in, are refused by name.
    let (c, v) = s
        .call(
            Method::POST,
            "/api/jobs",
            Some(json!({"name": "x", "command": "true", "params": {"pw": "***"}})),
        )
        .await;
    assert_eq!(c, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("params.pw"),
        "{v}"
    );

    // No plaintext anywhere in the database's files, nor in the audit log.
    let raw = raw_sqlite(&dir.0);
    for clear in [SECRET, "run time secret 42"] {
        assert!(!contains(&raw, clear), "'{clear}' is stored in the clear");
    }
    assert!(
        contains(&raw, "jobsched:sealed:v1:"),
        "the sealed values are stored"
    );
    let (_, audit) = s.call(Method::GET, "/api/audit?page_size=1000", None).await;
    assert!(!audit.to_string().contains(SECRET), "{audit}");
    s.stop().await;
}

/// `jobsched scheduler` (with its built-in executor) as a child process; its address and an admin token.
async fn scheduler(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String, String) {
    let keyring = dir.join("secret.key");
    jobsched_daemons::secrets::Keyring::open_or_create(&keyring).unwrap();
    let mut cmd = jobsched();
    cmd.args(["scheduler", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .arg("--secret-key-file")
        .arg(&keyring)
        .env("JOBSCHED_LOG", "warn")
        .env("JOBSCHED_ADMIN_PASSWORD", ADMIN_PASSWORD);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (child, base) = spawn_listening(cmd).await;
    let token = login(&reqwest::Client::new(), &base, "admin", ADMIN_PASSWORD).await;
    (child, base, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_see_none_of_the_daemons_variables_and_mysql_keeps_no_plaintext() {
    let Some(db) = TestDb::create("jstest").await else {
        return;
    };
    let dir = TempDir::new();
    let store = db.url();
    let (mut child, base, token) = scheduler(
        &dir.0,
        &[
            // The store URL with its password, as a deployment sets it.
            ("JOBSCHED_STORE", &store),
            ("AWS_SECRET_ACCESS_KEY", "daemon-credential-xyz"),
            ("MY_SETTING", "passed on"),
            ("JOBSCHED_TASK_ENV_ALLOW", "MY_*"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let call =
        async |m: Method, p: &str, b: Option<Value>| call_with(&http, &base, &token, m, p, b).await;
    wait_for("the scheduler to run tasks", || async {
        let (c, v) = call(Method::GET, "/api/system/status", None).await;
        c == StatusCode::OK && v["active"] == true && v["executors_online"] == 1
    })
    .await;
    let (c, v) = call(
        Method::POST,
        "/api/jobs",
        Some(
            json!({"job_id": "env", "name": "env", "command": "env", "schedule_type": "manual",
            "params": {"api_key": {"secret": SECRET}}}),
        ),
    )
    .await;
    assert_eq!(c, StatusCode::CREATED, "{v}");
    let rec = run(&call, "env", None).await;
    let env = rec["output"].as_str().unwrap();
    assert!(env.contains("JOBSCHED_TASK_ID="), "{env}");
    assert!(
        env.contains("MY_SETTING=passed on"),
        "allowed by task_env_allow: {env}"
    );
    for leak in [
        "JOBSCHED_STORE",
        "mysql://",
        "AWS_SECRET_ACCESS_KEY",
        "daemon-credential-xyz",
        "JOBSCHED_ADMIN_PASSWORD",
        ADMIN_PASSWORD,
        "JOBSCHED_TASK_ENV_ALLOW",
    ] {
        assert!(!env.contains(leak), "a task saw '{leak}':\n{env}");
    }
    assert!(
        !env.contains("hunter2"),
        "the secret param is masked in the output: {env}"
    );
    assert!(env.contains("JOBSCHED_PARAM_API_KEY=***"), "{env}");

    let pool = db.pool().await;
    for (table, column) in [
        ("jobs", "params"),
        ("job_logs", "params"),
        ("job_logs", "output"),
        ("jobsched_audit", "detail"),
    ] {
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COALESCE({column}, '') AS CHAR) FROM {table}"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(!rows.is_empty(), "{table} has rows");
        for (text,) in rows {
            assert!(
                !text.contains("hunter2"),
                "{table}.{column} holds the secret: {text}"
            );
        }
    }
    let (sealed,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE params LIKE '%jobsched:sealed:v1:%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sealed, 1);
    // Passwords and token secrets are hashes only.
    let (hash,): (String,) =
        sqlx::query_as("SELECT password_hash FROM jobsched_users WHERE name = 'admin'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains(ADMIN_PASSWORD));
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_reseals_every_job_and_older_records_still_open() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    let call = async |m: Method, p: &str, b: Option<Value>| s.call(m, p, b).await;
    s.call(
        Method::POST,
        "/api/jobs",
        Some(
            json!({"job_id": "rot", "name": "rot", "schedule_type": "manual",
            "command": r#"test "$JOBSCHED_PARAM_PW" = "$(printf 'rotated %s' value)" && echo same"#,
            "params": {"pw": {"secret": "rotated value"}}}),
        ),
    )
    .await;
    let before = run(&call, "rot", None).await;
    assert!(
        before["output"].as_str().unwrap().contains("same"),
        "{before}"
    );
    s.stop().await;
    let keyring = dir.0.join("secret.key");
    let old_key = std::fs::read_to_string(&keyring).unwrap();

    let out = support::cli_as(
        "",
        "",
        &["secrets", "rotate", "--data-dir", dir.0.to_str().unwrap()],
    )
    .await;
    assert!(
        out.ok && out.stdout.contains("of 1 jobs"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let keys = std::fs::read_to_string(&keyring).unwrap();
    assert_eq!(keys.lines().count(), 2, "the old key stays: {keys}");
    assert!(keys.starts_with(&old_key));
    let new_id = keys
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let raw = raw_sqlite(&dir.0);
    assert!(
        contains(&raw, &format!("jobsched:sealed:v1:{new_id}:")),
        "the job's secret is sealed with the new key"
    );

    let s = Server::start(&dir.0).await;
    let call = async |m: Method, p: &str, b: Option<Value>| s.call(m, p, b).await;
    let after = run(&call, "rot", None).await;
    assert!(
        after["output"].as_str().unwrap().contains("same"),
        "{after}"
    );
    // The run before the rotation keeps its record, sealed with the old key, still shown as "***".
    let (_, old) = s
        .call(
            Method::GET,
            &format!("/api/tasks/{}", before["task_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(old["params"]["pw"], "***", "{old}");
    let (_, audit) = s
        .call(Method::GET, "/api/audit?action=secrets.rotate", None)
        .await;
    assert_eq!(audit["total"], 1, "{audit}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_as_the_task_user_cannot_read_the_daemons_secrets() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: --task-user needs the daemon to run as root");
        return;
    }
    let dir = TempDir::new();
    let mut cmd = jobsched();
    cmd.args([
        "standalone",
        "--listen",
        "127.0.0.1:0",
        "--task-user",
        "nobody",
        "--data-dir",
    ])
    .arg(&dir.0)
    .env("JOBSCHED_LOG", "warn");
    let (mut child, base) = spawn_listening(cmd).await;
    let password_file = dir.0.join("admin-password");
    wait_for("the first password", || async { password_file.exists() }).await;
    let password = std::fs::read_to_string(&password_file).unwrap();
    let token = login(&reqwest::Client::new(), &base, "admin", password.trim()).await;
    let http = reqwest::Client::new();
    let call =
        async |m: Method, p: &str, b: Option<Value>| call_with(&http, &base, &token, m, p, b).await;
    wait_for("the executor", || async {
        call(Method::GET, "/api/system/status", None).await.1["executors_online"] == 1
    })
    .await;
    let data = dir.0.display();
    let probe = |what: &str, file: String| {
        format!("cat {file} >/dev/null 2>&1 && echo read-{what} || echo denied-{what}")
    };
    let command = [
        "id -u".to_owned(),
        probe("password", format!("{data}/admin-password")),
        probe("db", format!("{data}/jobsched.db")),
        probe("keyring", format!("{data}/secret.key")),
        probe("environ", "/proc/$PPID/environ".to_owned()),
    ]
    .join("; ");
    let (c, v) = call(
        Method::POST,
        "/api/jobs",
        Some(json!({"job_id": "probe", "name": "probe", "command": command, "schedule_type": "manual"})),
    )
    .await;
    assert_eq!(c, StatusCode::CREATED, "{v}");
    let rec = run(&call, "probe", None).await;
    let out: Vec<&str> = rec["output"].as_str().unwrap().lines().collect();
    assert_eq!(
        out,
        [
            "65534",
            "denied-password",
            "denied-db",
            "denied-keyring",
            "denied-environ"
        ],
        "{rec}"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
