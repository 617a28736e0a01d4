//! Messages bigger than the transport carries, on the services script's broker: a task whose message the
//! producer refuses ends failed with the reason (it used to go back to the resend queue forever, the
//! producer replaced on every try), other jobs keep firing, and a result whose output is over the limit
//! is cut to fit and recorded.

mod support;

use std::sync::Arc;
use std::time::Duration;

use jobsched::coord::LocalCoordinator;
use jobsched::handler::HandlerRegistry;
use jobsched::storage::MemoryStorage;
use jobsched::{Backends, Event, Executor, ExecutorId, JobSpec, Scheduler, TaskStatus};
use jobsched_kafka::{KafkaConfig, KafkaDispatcher};

/// librdkafka's smallest accepted `message.max.bytes` is 1,000; this leaves about 19 KB a message.
const LIMIT: &str = "20000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_task_fails_with_the_reason_and_an_oversized_result_is_cut_to_fit() {
    let brokers = support::broker_address();
    let config = KafkaConfig::new(&brokers)
        .with_prefix(support::prefix())
        .with_cluster_key(jobsched_kafka::ClusterKey::generate())
        .with_send_timeout(Duration::from_secs(10))
        .with_client_property("message.max.bytes", LIMIT);
    let dispatcher = match KafkaDispatcher::connect(config).await {
        Ok(d) => Arc::new(d),
        Err(e) => {
            jobsched_testkit::unreachable::<()>(format!(
                "the Kafka broker at {brokers} is unreachable ({e})"
            ));
            return;
        }
    };
    let hub = LocalCoordinator::new();
    let backends = Backends {
        storage: Arc::new(MemoryStorage::new()),
        dispatcher,
        coordinator: Arc::new(hub.connect()),
    };
    let s = Scheduler::builder(backends.clone()).start().await.unwrap();
    s.wait_active().await;
    let _e = Executor::builder(ExecutorId::new("e1").unwrap(), backends)
        .with_capacity(4)
        .with_handlers(HandlerRegistry::with_shell())
        .start()
        .await
        .unwrap();
    let mut events = s.subscribe();
    let tick = s
        .create_job(JobSpec::fixed_rate("tick", 1, "true"))
        .await
        .unwrap();
    let big = s
        .create_job(JobSpec::manual("big", format!("true {}", "x".repeat(30_000))).with_retry(3, 1))
        .await
        .unwrap();
    let loud = s
        .create_job(JobSpec::manual(
            "loud",
            "head -c 100000 /dev/zero | tr '\\0' y; echo END",
        ))
        .await
        .unwrap();
    let big_task = s.execute(&big.job_id, None).await.unwrap();
    let loud_task = s.execute(&loud.job_id, None).await.unwrap();
    let (mut big_done, mut loud_done, mut ticks_after) = (None, None, 0);
    let wait = async {
        while big_done.is_none() || loud_done.is_none() || ticks_after < 3 {
            match events.recv().await {
                Ok(Event::Finished(rec)) if rec.task_id == big_task => big_done = Some(rec),
                Ok(Event::Finished(rec)) if rec.task_id == loud_task => loud_done = Some(rec),
                Ok(Event::Finished(rec)) if rec.job_id == tick.job_id && big_done.is_some() => {
                    assert_eq!(rec.status, TaskStatus::Succeeded, "{}", rec.error);
                    ticks_after += 1;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events stopped: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("both ended and the fixed-rate job kept firing, within a minute");
    let big_done = big_done.unwrap();
    assert_eq!(big_done.status, TaskStatus::Failed);
    assert!(
        big_done.error.contains("could not be sent to its executor")
            && big_done.error.contains("bytes"),
        "{}",
        big_done.error
    );
    assert_eq!(
        s.task(&big_task).await.unwrap().len(),
        1,
        "refused for good: not retried"
    );
    let loud_done = loud_done.unwrap();
    assert_eq!(
        loud_done.status,
        TaskStatus::Succeeded,
        "{}",
        loud_done.error
    );
    assert!(loud_done.output.starts_with("[jobsched: ") && loud_done.output.ends_with("yyyyEND\n"));
    assert!(
        loud_done.output.len() < 20_000,
        "{} bytes",
        loud_done.output.len()
    );
    s.shutdown().await;
}
