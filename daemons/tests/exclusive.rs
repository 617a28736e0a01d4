//! One scheduler per store without a coordinator: a second `standalone` on a data directory, or a second
//! `scheduler` on a MySQL database without ZooKeeper, refuses to start with a one-line error naming the
//! first (both used to run active, register the same executor and fire every job twice).

mod support;

use std::process::Stdio;

use support::mysql::TestDb;
use support::{ADMIN_PASSWORD, Daemon, TempDir, jobsched, spawn_listening};

/// Runs `jobsched ARGS` to its end; its exit code and standard error.
async fn refused(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = jobsched();
    cmd.args(args)
        .env("JOBSCHED_LOG", "warn")
        .env("JOBSCHED_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("the second process exits")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_standalone_on_one_data_directory_exits_naming_the_first() {
    let dir = TempDir::new();
    let first = Daemon::start(&dir.0).await;
    let pid = first.child.id().unwrap();
    let data = dir.0.to_str().unwrap();
    let (code, stderr) = refused(
        &["standalone", "--listen", "127.0.0.1:0", "--data-dir", data],
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {pid}")) && stderr.contains("--data-dir"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    // The first one is undisturbed, and once it stops the directory is free again.
    assert!(first.cli(&["system", "status"]).await.ok);
    assert!(first.terminate().await);
    let again = Daemon::start(&dir.0).await;
    assert!(again.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scheduler_on_one_mysql_store_without_zookeeper_exits() {
    let Some(db) = TestDb::create("jslock").await else {
        return;
    };
    let store = db.url();
    let scheduler = |dir: &TempDir| {
        let mut cmd = jobsched();
        cmd.args(["scheduler", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir.0)
            .env("JOBSCHED_STORE", &store)
            .env("JOBSCHED_LOG", "warn")
            .env("JOBSCHED_ADMIN_PASSWORD", ADMIN_PASSWORD);
        cmd
    };
    let (d1, d2) = (TempDir::new(), TempDir::new());
    let (mut first, _) = spawn_listening(scheduler(&d1)).await;
    let data = d2.0.to_str().unwrap();
    let (code, stderr) = refused(
        &["scheduler", "--listen", "127.0.0.1:0", "--data-dir", data],
        &[("JOBSCHED_STORE", &store)],
    )
    .await;
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("another jobsched scheduler") && stderr.contains("--zookeeper"),
        "{stderr}"
    );
    let credentials = db
        .server
        .split('@')
        .next()
        .unwrap()
        .trim_start_matches("mysql://");
    assert!(
        !stderr.contains(&format!("{credentials}@")),
        "no password in the message: {stderr}"
    );
    first.kill().await.unwrap();
    first.wait().await.unwrap();
    // The server releases the lock with the dead process's connection.
    let (mut second, _) = spawn_listening(scheduler(&d2)).await;
    second.kill().await.unwrap();
}
