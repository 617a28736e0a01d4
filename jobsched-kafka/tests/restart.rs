//! A broker restart: a private Tansu broker (SQLite storage in a directory of this test) stops under the
//! dispatcher and starts again. Sends fail retryably while it is down; the same dispatcher works again
//! afterwards; records and committed offsets survived.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use jobsched::dispatch::Dispatcher;
use jobsched::testing::dispatch::recv_n;
use jobsched::testing::{sample_job, sample_record, t0};
use jobsched::{ExecutorId, Task, Trigger};
use jobsched_kafka::{KafkaConfig, KafkaDispatcher};
use tokio::process::{Child, Command};

fn tansu() -> Option<String> {
    let home = std::env::var("HOME").unwrap_or_default();
    [
        format!("{home}/.cargo/bin/tansu"),
        "/usr/local/bin/tansu".to_owned(),
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
}

struct Broker {
    dir: std::path::PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    async fn start(&mut self) {
        let bin = tansu().expect("tansu");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the broker did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("pid").to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        child.wait().await.unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn task_for(exec: &str) -> Task {
    let mut t = sample_record(&sample_job("restart-job"), Trigger::Manual, t0()).to_task();
    t.executor_id = Some(ExecutorId::new(exec).unwrap());
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_offsets_survive_a_broker_restart_and_the_dispatcher_recovers() {
    if tansu().is_none() {
        let _: Option<()> = jobsched_testkit::unreachable(
            "the tansu broker is not installed (scripts/services.sh installs it)",
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("jobsched-tansu-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut broker = Broker {
        dir,
        port,
        child: None,
    };
    broker.start().await;
    let config = KafkaConfig::new(format!("127.0.0.1:{port}"))
        .with_prefix("restart")
        .with_result_partitions(2)
        .with_cluster_key(jobsched_kafka::ClusterKey::generate())
        .with_send_timeout(Duration::from_secs(3));
    let d = KafkaDispatcher::connect(config).await.unwrap();
    let exec = ExecutorId::new("restart-exec").unwrap();
    let tasks: Vec<Task> = (0..3).map(|_| task_for("restart-exec")).collect();
    {
        let mut inbox = d.task_inbox(&exec).await.unwrap();
        d.send_tasks(&tasks).await.unwrap();
        let got = recv_n(&mut inbox, 3).await;
        inbox.ack(&[got[0].tag]).await.unwrap();
    }

    broker.stop().await;
    let e = d.send_tasks(&[task_for("restart-exec")]).await.unwrap_err();
    assert!(
        e.is_retryable(),
        "a send while the broker is down fails retryably: {e:?}"
    );

    broker.start().await;
    // The same dispatcher, not reopened.
    let last = task_for("restart-exec");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match d.send_tasks(std::slice::from_ref(&last)).await {
            Ok(()) => break,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the dispatcher did not recover: {e:?}"),
        }
    }
    let mut inbox = d.task_inbox(&exec).await.unwrap();
    let got = recv_n(&mut inbox, 3).await;
    let ids: Vec<_> = got.iter().map(|g| g.message.task_id.clone()).collect();
    assert_eq!(
        ids,
        vec![
            tasks[1].task_id.clone(),
            tasks[2].task_id.clone(),
            last.task_id.clone()
        ],
        "the unacknowledged records survived the restart, the acknowledged one stayed acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_without_a_broker_fails_with_a_message_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let brokers = format!("127.0.0.1:{port}");
    let e = KafkaDispatcher::connect(
        KafkaConfig::new(&brokers).with_cluster_key(jobsched_kafka::ClusterKey::generate()),
    )
    .await
    .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        e.to_string().contains(&brokers),
        "the message names the broker: {e}"
    );
}
