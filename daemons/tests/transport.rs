//! Transport and data: the API over TLS with the command-line client verifying the server's certificate
//! (`--ca-cert`), a plain listen address other machines can reach refused, and backups that round-trip
//! through restore on SQLite (an online copy) and on MariaDB (a logical export).

mod support;

use jobsched::storage::{Accounts, Storage};
use jobsched::{JobQuery, PageRequest};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::mysql::TestDb;
use support::{
    ADMIN_PASSWORD, Server, TempDir, cli_as, jobsched, run_cli, spawn_listening, test_config,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_served_over_tls_and_the_cli_verifies_the_certificate() {
    let dir = TempDir::new();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_file, key_file) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let data = dir.0.join("data");
    let mut cmd = jobsched();
    cmd.args(["standalone", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--tls-cert")
        .arg(&cert_file)
        .arg("--tls-key")
        .arg(&key_file)
        .env("JOBSCHED_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("JOBSCHED_LOG", "warn");
    let (mut child, base) = spawn_listening(cmd).await;
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let ca = cert_file.to_str().unwrap();
    let home = dir.0.join("home");

    // `jobsched login` over TLS keeps the token in a file only its user can read.
    let run = async |args: Vec<&str>, stdin: Option<&str>| {
        let mut cmd = jobsched();
        cmd.args(args).env("XDG_CONFIG_HOME", &home);
        run_cli(cmd, stdin).await
    };
    let password = format!("{ADMIN_PASSWORD}\n");
    let out = run(
        vec![
            "--server",
            &base,
            "--ca-cert",
            ca,
            "login",
            "--user",
            "admin",
            "--password-stdin",
        ],
        Some(&password),
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let tokens = home.join("jobsched/tokens.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&tokens).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let out = run(
        vec![
            "--server",
            &base,
            "--ca-cert",
            ca,
            "jobs",
            "create",
            "--id",
            "t1",
            "--name",
            "over tls",
            "--manual",
            "--command",
            "true",
        ],
        None,
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let out = run(
        vec!["--server", &base, "--ca-cert", ca, "jobs", "list"],
        None,
    )
    .await;
    assert!(out.stdout.contains("over tls"), "{}", out.stderr);
    // Without the CA the certificate is not trusted; plain HTTP gets no answer from a TLS port.
    let out = run(vec!["--server", &base, "jobs", "list"], None).await;
    assert!(
        !out.ok && out.stderr.contains("cannot reach"),
        "{}",
        out.stderr
    );
    let plain = base.replace("https://", "http://");
    let out = run(vec!["--server", &plain, "jobs", "list"], None).await;
    assert!(!out.ok);
    let out = run(vec!["--server", &base, "--ca-cert", ca, "logout"], None).await;
    assert!(out.ok, "{}", out.stderr);
    let out = run(
        vec!["--server", &base, "--ca-cert", ca, "jobs", "list"],
        None,
    )
    .await;
    let err = out.stderr;
    assert!(!out.ok && err.contains("jobsched login"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    // A plain listener on an address other machines can reach is refused, saying why.
    let out = jobsched()
        .args(["standalone", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.0.join("open"))
        .env("JOBSCHED_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without TLS") && err.contains("--allow-insecure-listen"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_backup_taken_online_restores_jobs_users_and_secrets() {
    let dir = TempDir::new();
    let s = Server::start(&dir.0).await;
    s.call(
        Method::POST,
        "/api/jobs",
        Some(json!({"job_id": "keep", "name": "keep", "schedule_type": "manual",
            "command": r#"test "$JOBSCHED_PARAM_PW" = "$(printf 'backed up %s' secret)" && echo ok"#,
            "params": {"pw": {"secret": "backed up secret"}}})),
    )
    .await;
    s.user("alice", "user").await;
    let url = format!("sqlite://{}", dir.0.join("jobsched.db").display());
    let file = dir.0.join("backup.db");
    let out = cli_as(
        &s.base,
        "",
        &["backup", "--store", &url, "--out", file.to_str().unwrap()],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let again = cli_as(
        &s.base,
        "",
        &["backup", "--store", &url, "--out", file.to_str().unwrap()],
    )
    .await;
    assert!(
        !again.ok && again.stderr.contains("exists"),
        "{}",
        again.stderr
    );
    s.stop().await;

    let other = TempDir::new();
    let target = format!("sqlite://{}", other.0.join("jobsched.db").display());
    let restore = [
        "restore",
        "--store",
        &target,
        "--from",
        file.to_str().unwrap(),
    ];
    let out = cli_as("", "", &restore).await;
    assert!(out.ok, "{}", out.stderr);
    let out = cli_as("", "", &restore).await;
    assert!(
        !out.ok && out.stderr.contains("empty"),
        "a restore never overwrites data: {}",
        out.stderr
    );
    // The keyring is kept apart from backups; the restored store opens with it.
    std::fs::copy(dir.0.join("secret.key"), other.0.join("secret.key")).unwrap();
    let s = Server::start_with(test_config(&other.0)).await;
    let (_, job) = s.call(Method::GET, "/api/jobs/keep", None).await;
    assert_eq!(job["params"]["pw"], "***", "{job}");
    let (_, users) = s.call(Method::GET, "/api/users", None).await;
    let names: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice"]);
    let (c, run) = s.call(Method::POST, "/api/jobs/keep/execute", None).await;
    assert_eq!(c, StatusCode::ACCEPTED);
    let task = run["task_id"].as_str().unwrap().to_owned();
    support::wait_for("the restored job to run", || async {
        let (_, t) = s
            .call(Method::GET, &format!("/api/tasks/{task}"), None)
            .await;
        t["output"].as_str().is_some_and(|o| o.contains("ok"))
    })
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_backup_restores_into_an_empty_database() {
    let Some(a) = TestDb::create("jstest").await else {
        return;
    };
    let Some(b) = TestDb::create("jstest").await else {
        return;
    };
    let dir = TempDir::new();
    // Data through a server on database a: jobs (one secret), users, a token, the configuration, a run.
    let (mut child, base, token) = {
        let keyring = dir.0.join("secret.key");
        jobsched_daemons::secrets::Keyring::open_or_create(&keyring).unwrap();
        let mut cmd = jobsched();
        cmd.args(["scheduler", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir.0)
            .arg("--secret-key-file")
            .arg(&keyring)
            .args(["--store", &a.url()])
            .env("JOBSCHED_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("JOBSCHED_LOG", "warn");
        let (child, base) = spawn_listening(cmd).await;
        let token = support::login(&reqwest::Client::new(), &base, "admin", ADMIN_PASSWORD).await;
        (child, base, token)
    };
    let http = reqwest::Client::new();
    let post = |p: &str, body: serde_json::Value| {
        http.post(format!("{base}{p}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    for i in 0..3 {
        let r = post(
            "/api/jobs",
            json!({"job_id": format!("j{i}"), "name": "job", "command": "true",
            "schedule_type": "manual", "params": {"pw": {"secret": "mysql secret"}}}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    post(
        "/api/users",
        json!({"name": "alice", "role": "read_only", "password": "alice password 1"}),
    )
    .await
    .unwrap();
    let r = http
        .post(format!("{base}/api/jobs/j0/execute"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let file = dir.0.join("mysql.backup");
    let out = cli_as(
        "",
        "",
        &[
            "backup",
            "--store",
            &a.url(),
            "--out",
            file.to_str().unwrap(),
            "--with-history",
        ],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let (target, from) = (b.url(), file.to_str().unwrap());
    let restore = ["restore", "--store", &target, "--from", from];
    let out = cli_as("", "", &restore).await;
    assert!(out.ok, "{}", out.stderr);
    let out = cli_as("", "", &restore).await;
    assert!(!out.ok && out.stderr.contains("empty"), "{}", out.stderr);

    let open = |url: String| async move {
        jobsched_mysql::MysqlConfig::new(url)
            .connect()
            .await
            .unwrap()
    };
    let (sa, sb) = (open(a.url()).await, open(b.url()).await);
    let all = JobQuery {
        page: PageRequest::new(1, 1000).unwrap(),
        ..JobQuery::default()
    };
    assert_eq!(
        sa.list_jobs(&all).await.unwrap(),
        sb.list_jobs(&all).await.unwrap()
    );
    let users = PageRequest::new(1, 100).unwrap();
    assert_eq!(
        sa.list_users(users).await.unwrap(),
        sb.list_users(users).await.unwrap()
    );
    assert_eq!(
        sa.get_value("auth.jwt_signing_key").await.unwrap(),
        sb.get_value("auth.jwt_signing_key").await.unwrap(),
        "tokens of the old database stay valid"
    );
    let history = jobsched::ExecutionQuery::default();
    assert_eq!(
        sa.list_executions(&history).await.unwrap().total,
        sb.list_executions(&history).await.unwrap().total
    );
    let q = jobsched::AuditQuery {
        page: users,
        ..Default::default()
    };
    assert_eq!(
        sa.list_audit(&q).await.unwrap(),
        sb.list_audit(&q).await.unwrap()
    );
    // New jobs in the restored store take the next revisions (the counter came along).
    let job = jobsched::JobSpec::manual("after", "true")
        .build(chrono::Utc::now())
        .unwrap();
    sb.create_jobs(&[job]).await.unwrap();
    let changes = sb.job_changes(0, 100).await.unwrap();
    let revisions: std::collections::HashSet<u64> = changes.iter().map(|c| c.revision).collect();
    assert_eq!(revisions.len(), changes.len(), "no revision taken twice");

    // An SQLite backup does not go into MySQL.
    let bad = dir.0.join("not-mysql");
    std::fs::write(&bad, b"SQLite format 3\0rest").unwrap();
    let out = cli_as(
        "",
        "",
        &[
            "restore",
            "--store",
            &b.url(),
            "--from",
            bad.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        !out.ok && out.stderr.contains("not a jobsched backup"),
        "{}",
        out.stderr
    );
}
