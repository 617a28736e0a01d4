//! Connection loss: the MariaDB server dies under the store and comes back. The test runs a private
//! server (its own data directory and port), so restarting it disturbs no other test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use jobsched::Trigger;
use jobsched::storage::Storage;
use jobsched::testing::{sample_job, sample_record, t0};
use jobsched_mysql::MysqlConfig;
use tokio::process::{Child, Command};

const MARIADBD: &str = "/usr/sbin/mariadbd";

/// A MariaDB server of this test's own.
struct PrivateServer {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().await.expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivateServer {
    /// Initialises a data directory and starts the server, or returns `None` (outside CI) when MariaDB is
    /// not installed.
    async fn start() -> Option<PrivateServer> {
        if !Path::new(MARIADBD).exists() {
            return jobsched_testkit::unreachable(
                "MariaDB is not installed (scripts/services.sh installs it)",
            );
        }
        let dir = std::env::temp_dir().join(format!("jobsched-restart-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        run("chown", &["mysql:mysql", dir.to_str().unwrap()]).await;
        let datadir = format!("--datadir={}", dir.join("data").display());
        run(
            "mariadb-install-db",
            &[
                "--user=mysql",
                &datadir,
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ],
        )
        .await;
        let mut server = PrivateServer {
            dir,
            port: free_port(),
            child: None,
        };
        server.launch().await;
        run(
            "mariadb",
            &[
                &server.socket_arg(),
                "-uroot",
                "-e",
                "CREATE USER 't'@'127.0.0.1' IDENTIFIED BY 't'; \
                 GRANT ALL ON *.* TO 't'@'127.0.0.1'; CREATE DATABASE jobsched;",
            ],
        )
        .await;
        Some(server)
    }

    fn socket_arg(&self) -> String {
        format!("--socket={}", self.dir.join("mysqld.sock").display())
    }

    fn url(&self) -> String {
        format!("mysql://t:t@127.0.0.1:{}/jobsched", self.port)
    }

    /// Starts mariadbd on the data directory and waits until it answers (polling, no fixed sleep).
    async fn launch(&mut self) {
        let child = Command::new(MARIADBD)
            .args([
                "--no-defaults".to_owned(),
                "--user=mysql".to_owned(),
                format!("--datadir={}", self.dir.join("data").display()),
                self.socket_arg(),
                format!("--pid-file={}", self.dir.join("mysqld.pid").display()),
                format!("--port={}", self.port),
                "--bind-address=127.0.0.1".to_owned(),
                "--skip-name-resolve".to_owned(),
                format!("--log-error={}", self.dir.join("error.log").display()),
                "--character-set-server=utf8mb4".to_owned(),
                "--innodb-buffer-pool-size=32M".to_owned(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new("mariadb-admin")
                .args([&self.socket_arg(), "-uroot", "ping"])
                .output()
                .await
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the private MariaDB did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the server with SIGKILL (a crash: InnoDB recovers on the next start).
    async fn crash(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().await.expect("kill mariadbd");
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_fails_calls_retryably_and_the_store_recovers_by_itself() {
    let Some(mut server) = PrivateServer::start().await else {
        return;
    };
    let store = MysqlConfig::new(server.url())
        .with_acquire_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let job = sample_job("restart");
    store.create_jobs(std::slice::from_ref(&job)).await.unwrap();
    let before = sample_record(&job, Trigger::Schedule, t0());
    store
        .insert_executions(std::slice::from_ref(&before), None)
        .await
        .unwrap();

    server.crash().await;
    // Each call waits for a connection for the acquire timeout, then fails retryably.
    for call in 0..2 {
        let e = store
            .get_job(&job.job_id)
            .await
            .expect_err("the server is down");
        assert!(e.is_retryable(), "call {call} while down: {e:?}");
        let rec = sample_record(&job, Trigger::Manual, t0());
        let e = store.insert_executions(&[rec], None).await.unwrap_err();
        assert!(e.is_retryable(), "a write while down: {e:?}");
    }
    assert!(store.ping().await.is_err());

    server.launch().await;
    // The same store, not reopened: its pool reconnects on the next call.
    let deadline = Instant::now() + Duration::from_secs(30);
    let back = loop {
        match store.get_job(&job.job_id).await {
            Ok(j) => break j,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the store did not recover: {e:?}"),
        }
    };
    assert_eq!(back.name, job.name);
    store.get_execution(&before.task_id, 1).await.unwrap();
    let after = sample_record(
        &job,
        Trigger::Schedule,
        t0() + chrono::TimeDelta::seconds(1),
    );
    store.insert_executions(&[after], None).await.unwrap();
    store.ping().await.unwrap();
}
