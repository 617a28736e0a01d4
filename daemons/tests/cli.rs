//! The command-line client end to end against a `jobsched standalone` process.

mod support;

use support::{Daemon, TempDir, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_watches_runs_cancels_and_steers_executors() {
    let dir = TempDir::new();
    let d = Daemon::start(&dir.0).await;

    // A job that runs every second, and its runs in `jobs history`.
    let out = d
        .cli(&[
            "jobs",
            "create",
            "--id",
            "tick",
            "--name",
            "every second",
            "--cron",
            "* * * * * *",
            "--command",
            "echo tick $JOBSCHED_PARAM_N",
            "--param",
            "n=1",
        ])
        .await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.contains("every second") && out.stdout.contains("cron * * * * * *"),
        "{}",
        out.stdout
    );
    wait_for("a scheduled run to succeed", || async {
        let h = d
            .cli(&[
                "jobs",
                "history",
                "tick",
                "--status",
                "succeeded",
                "-o",
                "json",
            ])
            .await;
        h.ok && h.json()["total"].as_u64() >= Some(1)
    })
    .await;
    let table = d.cli(&["jobs", "history", "tick"]).await;
    assert!(
        table.ok && table.stdout.contains("succeeded") && table.stdout.contains("TASK_ID"),
        "{}",
        table.stdout
    );
    let list = d.cli(&["jobs", "list"]).await;
    assert!(
        list.stdout.contains("tick") && list.stdout.contains("every second"),
        "{}",
        list.stdout
    );
    let fires = d.cli(&["jobs", "next-fires", "tick", "--count", "3"]).await;
    assert_eq!(fires.stdout.lines().count(), 3, "{}", fires.stdout);

    // Run it now with a parameter; read its output.
    let run = d.cli(&["jobs", "run", "tick", "--param", "n=42"]).await;
    assert!(run.ok, "{}", run.stderr);
    let task = run.stdout.trim().to_owned();
    assert!(task.starts_with("task-"), "{task}");
    wait_for("the manual run to succeed", || async {
        d.cli(&["tasks", "get", &task, "-o", "json"]).await.json()["status"] == 1
    })
    .await;
    let logs = d.cli(&["tasks", "logs", &task]).await;
    assert!(logs.stdout.contains("tick 42"), "{}", logs.stdout);
    let latest = d
        .cli(&["jobs", "logs", "tick", "--status", "succeeded"])
        .await;
    assert!(
        latest.ok && latest.stdout.contains("--- output ---\ntick"),
        "{}",
        latest.stdout
    );

    // Cancel a long-running task: its process is killed and it is recorded cancelled.
    let long = d
        .cli(&[
            "jobs",
            "create",
            "--id",
            "long",
            "--name",
            "long",
            "--manual",
            "--command",
            "sleep 60",
        ])
        .await;
    assert!(long.ok, "{}", long.stderr);
    let t = d
        .cli(&["jobs", "run", "long"])
        .await
        .stdout
        .trim()
        .to_owned();
    wait_for("the long task to start", || async {
        d.cli(&["tasks", "get", &t, "-o", "json"]).await.json()["status"] == 5
    })
    .await;
    let c = d.cli(&["tasks", "cancel", &t]).await;
    assert!(
        c.ok && c.stdout.contains("cancelling"),
        "{} {}",
        c.stdout,
        c.stderr
    );
    wait_for("the long task to be cancelled", || async {
        d.cli(&["tasks", "get", &t, "-o", "json"]).await.json()["status"] == 4
    })
    .await;

    // Disable the executor: no new task reaches it until it is enabled again.
    let execs = d.cli(&["executors", "list", "-o", "json"]).await.json();
    let exec = execs["items"][0]["executor_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dis = d.cli(&["executors", "disable", &exec]).await;
    assert!(dis.ok && dis.stdout.contains("false"), "{}", dis.stdout);
    let d2 = d
        .cli(&["jobs", "update", "tick", "--enabled", "false"])
        .await;
    assert!(d2.ok, "{}", d2.stderr);
    let waiting = d
        .cli(&["jobs", "run", "tick"])
        .await
        .stdout
        .trim()
        .to_owned();
    for _ in 0..10 {
        let v = d
            .cli(&["tasks", "get", &waiting, "-o", "json"])
            .await
            .json();
        assert_eq!(v["status"], 0, "a task reached the disabled executor: {v}");
        assert!(v["executor_id"].is_null(), "{v}");
    }
    assert!(d.cli(&["executors", "enable", &exec]).await.ok);
    wait_for("the waiting task to run", || async {
        d.cli(&["tasks", "get", &waiting, "-o", "json"])
            .await
            .json()["status"]
            == 1
    })
    .await;

    // Errors: a non-zero exit and one line that says why.
    for args in [
        &["jobs", "get", "missing"][..],
        &[
            "jobs",
            "create",
            "--name",
            "bad",
            "--cron",
            "0 61 * * * *",
            "--command",
            "x",
        ],
        &["tasks", "logs", "task-nope"],
        &["executors", "disable", "nobody"],
        &["system", "config", "set", "max_output_bytes=1"],
    ] {
        let out = d.cli(args).await;
        assert!(!out.ok, "{args:?} should fail: {}", out.stdout);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.starts_with("jobsched: "),
            "{args:?}: {}",
            out.stderr
        );
    }
    let set = d.cli(&["system", "config", "set", "max_failovers=5"]).await;
    assert!(
        set.ok && set.stdout.contains("max_failovers = 5"),
        "{} {}",
        set.stdout,
        set.stderr
    );
    let status = d.cli(&["system", "status"]).await;
    assert!(
        status.stdout.contains("executors_online") && status.stdout.contains("standalone"),
        "{}",
        status.stdout
    );
    let unreachable = support::cli("http://127.0.0.1:1", &["jobs", "list"]).await;
    assert!(
        !unreachable.ok && unreachable.stderr.contains("cannot reach"),
        "{}",
        unreachable.stderr
    );
    assert!(d.terminate().await, "the daemon stops cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_prints_a_key_or_writes_a_new_private_file_once() {
    use std::os::unix::fs::PermissionsExt;
    let out = support::jobsched().arg("keygen").output().await.unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    jobsched_kafka::ClusterKey::parse(&printed).expect("a key that parses");
    let dir = TempDir::new();
    let file = dir.0.join("cluster.key");
    let out = support::jobsched()
        .args(["keygen", "--out"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = jobsched_kafka::ClusterKey::from_file(&file).unwrap();
    assert_ne!(
        key,
        jobsched_kafka::ClusterKey::parse(&printed).unwrap(),
        "keys are random"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    let out = support::jobsched()
        .args(["keygen", "--out"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(
        !out.status.success(),
        "an existing key file is never replaced"
    );
    assert_eq!(jobsched_kafka::ClusterKey::from_file(&file).unwrap(), key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_print_merges_file_environment_and_flags_and_hides_secrets() {
    let dir = TempDir::new();
    let file = dir.0.join("jobsched.toml");
    std::fs::write(
        &file,
        "capacity = 3\nlisten = \"127.0.0.1:9000\"\nstore = \"mysql://u:hunter2@db:3306/js\"\n\
         [kafka_client]\n\"sasl.mechanism\" = \"PLAIN\"\n\"sasl.password\" = \"s3cr3t-sasl\"\n",
    )
    .unwrap();
    let out = support::jobsched()
        .args(["config", "print", "--config"])
        .arg(&file)
        .args(["--capacity", "7"])
        .env("JOBSCHED_LISTEN", "127.0.0.1:9100")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("capacity = 7"),
        "a flag wins over the file: {text}"
    );
    assert!(
        text.contains("listen = \"127.0.0.1:9100\""),
        "a variable wins over the file: {text}"
    );
    assert!(
        text.contains("mysql://u:***@db:3306/js") && !text.contains("hunter2"),
        "{text}"
    );
    assert!(
        text.contains(r#""sasl.mechanism" = "PLAIN""#) && !text.contains("s3cr3t-sasl"),
        "Kafka client settings are passed through, their secrets hidden: {text}"
    );
    std::fs::write(&file, "capacty = 3\n").unwrap();
    let out = support::jobsched()
        .args(["config", "print", "--config"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("capacty"));
    // Incomplete distributed settings say what is missing and exit 2.
    for (args, says) in [
        (
            &["executor", "--listen", "127.0.0.1:0"][..],
            "needs --kafka and --zookeeper",
        ),
        (
            &[
                "scheduler",
                "--listen",
                "127.0.0.1:0",
                "--store",
                "sqlite:///tmp/x.db",
                "--kafka",
                "127.0.0.1:1",
            ],
            "go together",
        ),
        (
            &[
                "executor",
                "--listen",
                "127.0.0.1:0",
                "--kafka",
                "127.0.0.1:1",
                "--zookeeper",
                "127.0.0.1:1",
            ][..],
            "needs the cluster key",
        ),
        (
            &[
                "standalone",
                "--listen",
                "127.0.0.1:0",
                "--zookeeper",
                "127.0.0.1:1",
            ],
            // The role does not take the flag at all.
            "unexpected argument '--zookeeper'",
        ),
    ] {
        let out = support::jobsched().args(args).output().await.unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // With the cluster key but no ZooKeeper credentials.
    let out = support::jobsched()
        .args([
            "executor",
            "--listen",
            "127.0.0.1:0",
            "--kafka",
            "127.0.0.1:1",
        ])
        .args(["--zookeeper", "127.0.0.1:1"])
        .env(
            "JOBSCHED_CLUSTER_KEY",
            jobsched_kafka::ClusterKey::generate().encode(),
        )
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs digest credentials"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_users_tokens_and_the_audit_log_and_moves_jobs_in_bulk() {
    let dir = TempDir::new();
    let d = Daemon::start(&dir.0).await;
    let out = support::cli_stdin(
        &d.base,
        &d.token,
        &[
            "users",
            "create",
            "bob",
            "--role",
            "user",
            "--password-stdin",
        ],
        "bob's password 1\n",
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let list = d.cli(&["users", "list"]).await;
    assert!(
        list.stdout.contains("bob") && list.stdout.contains("user"),
        "{}",
        list.stdout
    );
    let bad = support::cli_stdin(
        &d.base,
        "",
        &["login", "--user", "bob", "--password-stdin"],
        "nope\n",
    )
    .await;
    assert!(
        !bad.ok && bad.stderr.contains("wrong user name or password"),
        "{}",
        bad.stderr
    );
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);

    // A read-only API token for a script.
    let made = d
        .cli(&[
            "tokens",
            "create",
            "ci",
            "--role",
            "read_only",
            "-o",
            "json",
        ])
        .await;
    assert!(made.ok, "{}", made.stderr);
    let t = made.json();
    let secret = t["token"].as_str().unwrap().to_owned();
    let as_ci = |args: &'static [&'static str]| support::cli_as(&d.base, &secret, args);
    assert!(as_ci(&["jobs", "list"]).await.ok);
    let refused = as_ci(&["jobs", "create", "--name", "x", "--command", "id"]).await;
    assert!(
        !refused.ok && refused.stderr.contains("403"),
        "{}",
        refused.stderr
    );
    let listed = d.cli(&["tokens", "list"]).await;
    assert!(
        listed.stdout.contains("ci") && listed.stdout.contains("read_only"),
        "{}",
        listed.stdout
    );
    let id = t["token_id"].as_str().unwrap();
    assert!(d.cli(&["tokens", "revoke", id]).await.ok);
    let revoked = as_ci(&["jobs", "list"]).await;
    assert!(
        !revoked.ok
            && revoked.stderr.contains("revoked")
            && revoked.stderr.contains("log in again"),
        "{}",
        revoked.stderr
    );
    let audit = d.cli(&["audit", "--action", "token.", "-o", "json"]).await;
    let actions: Vec<String> = audit.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["token.revoke", "token.create"],
        "{}",
        audit.stdout
    );

    // Export, delete, import: the same jobs come back.
    for i in 0..3 {
        let id = format!("bulk-{i}");
        let out = d
            .cli(&[
                "jobs",
                "create",
                "--id",
                &id,
                "--name",
                "bulk job",
                "--every",
                "3600",
                "--command",
                "true",
            ])
            .await;
        assert!(out.ok, "{}", out.stderr);
    }
    let file = dir.0.join("jobs.json");
    let out = d
        .cli(&["jobs", "export", "--out", file.to_str().unwrap()])
        .await;
    assert!(out.ok, "{}", out.stderr);
    for i in 0..3 {
        assert!(d.cli(&["jobs", "delete", &format!("bulk-{i}")]).await.ok);
    }
    let out = d.cli(&["jobs", "import", file.to_str().unwrap()]).await;
    assert!(
        out.ok && out.stdout.contains("created 3 jobs"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let got = d.cli(&["jobs", "get", "bulk-1", "-o", "json"]).await;
    assert_eq!(got.json()["interval"], 3600);
    let out = d.cli(&["jobs", "import", file.to_str().unwrap()]).await;
    assert!(
        out.stdout.contains("updated 3"),
        "a second import changes them: {}",
        out.stdout
    );
    assert!(d.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_password_is_in_a_private_file_until_it_is_changed() {
    let dir = TempDir::new();
    let mut cmd = support::jobsched();
    cmd.args(["standalone", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir.0)
        .env("JOBSCHED_LOG", "warn")
        .stderr(std::process::Stdio::piped());
    let (mut child, base) = support::spawn_listening(cmd).await;
    let file = dir.0.join("admin-password");
    support::wait_for("the first password", || async { file.exists() }).await;
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(first.trim().len() >= 20, "a long random password");
    // The log says where it is, never what it is.
    let mut err = child.stderr.take().unwrap();
    let token = support::login(&reqwest::Client::new(), &base, "admin", first.trim()).await;
    let out = support::cli_stdin(
        &base,
        &token,
        &["users", "password", "--password-stdin"],
        &format!("{}\nmy own admin password\n", first.trim()),
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        !file.exists(),
        "the generated password is forgotten once changed"
    );
    support::login(
        &reqwest::Client::new(),
        &base,
        "admin",
        "my own admin password",
    )
    .await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut err, &mut log)
        .await
        .unwrap();
    assert!(
        log.contains("admin-password") && !log.contains(first.trim()),
        "{log}"
    );
}
