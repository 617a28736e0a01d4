//! What travels on the topics: the task and result messages are the design's JSON (design §4.2.1, §4.2.2)
//! field for field, checked on raw records; poison records are skipped and counted, never returned and
//! never stalling a consumer.

mod support;

use std::time::Duration;

use jobsched::dispatch::Dispatcher;
use jobsched::testing::dispatch::recv_n;
use jobsched::testing::{sample_job, sample_record, t0};
use jobsched::{ExecutorId, TaskResult, TaskStatus, Trigger};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use support::Opener;

/// Reads `n` raw payloads from the start of `topic`, checking that each carries a MAC that `key` made.
fn raw(brokers: &str, key: &jobsched_kafka::ClusterKey, topic: &str, n: usize) -> Vec<Value> {
    use rdkafka::message::Headers;
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("raw-{}", fastrand::u64(..)))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} records on {topic}",
            out.len()
        );
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let mac = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == jobsched_kafka::MAC_HEADER))
                .and_then(|h| h.value);
            let (k, p) = (m.key().unwrap_or_default(), m.payload().unwrap_or_default());
            assert_eq!(
                key.verify(topic, k, p, mac, None),
                Ok(()),
                "a signed record"
            );
            out.push(serde_json::from_slice(m.payload().unwrap()).unwrap());
        }
    }
    out
}

fn assert_fields(msg: &Value, fields: &[(&str, &str)]) {
    for (name, kind) in fields {
        let v = msg
            .get(*name)
            .unwrap_or_else(|| panic!("field {name} missing: {msg}"));
        let ok = match *kind {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "time" => v.as_str().is_some_and(|s| {
                chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z')
            }),
            _ => unreachable!(),
        };
        assert!(ok, "field {name} should be {kind}: {v} in {msg}");
    }
}

async fn wire_format(opener: &Opener, brokers: &str) {
    let d = opener.dispatcher().await;
    let mut task = sample_record(&sample_job("wire-job"), Trigger::Manual, t0()).to_task();
    task.executor_id = Some(ExecutorId::new("wire-exec").unwrap());
    d.send_tasks(std::slice::from_ref(&task)).await.unwrap();
    let result = TaskResult {
        task_id: task.task_id.clone(),
        job_id: task.job_id.clone(),
        executor_id: ExecutorId::new("wire-exec").unwrap(),
        status: TaskStatus::Succeeded,
        start_time: t0(),
        end_time: Some(t0() + chrono::TimeDelta::seconds(60)),
        output: "Hello World".into(),
        error: String::new(),
        exit_code: 0,
        attempt: 1,
        executor_epoch: 1,
        no_retry: false,
        retry_after_ms: None,
    };
    d.send_results(std::slice::from_ref(&result)).await.unwrap();
    let config = d.config();
    let key = config.cluster_key.as_ref().unwrap();
    let t = &raw(brokers, key, &config.tasks_topic("wire-exec"), 1)[0];
    assert_fields(
        t,
        &[
            ("task_id", "string"),
            ("job_id", "string"),
            ("command", "string"),
            ("timeout", "integer"),
            ("retry_count", "integer"),
            ("retry_interval", "integer"),
            ("priority", "integer"),
            ("create_time", "time"),
        ],
    );
    assert_eq!(t["task_id"], task.task_id.as_str());
    assert_eq!(t["command"], task.command.as_str());
    let r = &raw(brokers, key, &config.results_topic(), 1)[0];
    assert_fields(
        r,
        &[
            ("task_id", "string"),
            ("job_id", "string"),
            ("executor_id", "string"),
            ("status", "integer"),
            ("start_time", "time"),
            ("end_time", "time"),
            ("output", "string"),
            ("error", "string"),
            ("exit_code", "integer"),
        ],
    );
    assert_eq!(
        (r["status"].as_u64(), r["output"].as_str()),
        (Some(1), Some("Hello World"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_the_design_json_on_a_broker() {
    let Some(opener) = Opener::broker().await else {
        return;
    };
    wire_format(&opener, &support::broker_address()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_the_design_json_on_the_mock_cluster() {
    let mock = support::Mock::start();
    let opener = Opener::with_mock(&mock);
    wire_format(&opener, &mock.brokers).await;
}

async fn poison(opener: &Opener, brokers: &str) {
    let d = opener.dispatcher().await;
    let exec = ExecutorId::new("poison-exec").unwrap();
    let mut tasks = d.task_inbox(&exec).await.unwrap();
    let mut results = d.result_inbox().await.unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let tasks_topic = d.config().tasks_topic("poison-exec");
    let results_topic = d.config().results_topic();
    let garbage: [&[u8]; 3] = [
        b"not json at all",
        br#"{"task_id": 5}"#,
        br#"{"job_id": "j", "status": "nope"}"#,
    ];
    for g in garbage {
        for topic in [&tasks_topic, &results_topic] {
            producer
                .send(
                    FutureRecord::to(topic).key("k").payload(g),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
    }
    // A well-formed task that is unsigned, signed with another cluster's key, altered after signing, or
    // signed for another topic: each is poison too, with the epoch check (epoch 1) and without (0).
    let key = d.config().cluster_key.clone().unwrap();
    let other = jobsched_kafka::ClusterKey::generate();
    let mut forged_count = 0;
    for epoch in [1, 0] {
        let mut forged = sample_record(&sample_job("forged-job"), Trigger::Manual, t0()).to_task();
        forged.executor_id = Some(exec.clone());
        forged.executor_epoch = epoch;
        let body = serde_json::to_vec(&forged).unwrap();
        let mut altered = forged.clone();
        altered.command = "touch /tmp/forged".into();
        let altered = serde_json::to_vec(&altered).unwrap();
        let k = b"poison-exec";
        let records: [(&[u8], Option<String>); 4] = [
            (&body, None),
            (&body, Some(other.sign(&tasks_topic, k, &body))),
            (&altered, Some(key.sign(&tasks_topic, k, &body))),
            (&body, Some(key.sign(&results_topic, k, &body))),
        ];
        for (payload, mac) in records {
            let mut record = FutureRecord::to(&tasks_topic).key(&k[..]).payload(payload);
            if let Some(mac) = &mac {
                record = record.headers(OwnedHeaders::new().insert(Header {
                    key: jobsched_kafka::MAC_HEADER,
                    value: Some(mac.as_bytes()),
                }));
            }
            producer
                .send(record, Duration::from_secs(10))
                .await
                .unwrap();
            forged_count += 1;
        }
    }
    // Valid messages after the poison get through.
    let mut task = sample_record(&sample_job("poison-job"), Trigger::Manual, t0()).to_task();
    task.executor_id = Some(exec.clone());
    d.send_tasks(std::slice::from_ref(&task)).await.unwrap();
    let got = recv_n(&mut tasks, 1).await;
    assert_eq!(
        got[0].message.task_id, task.task_id,
        "the valid task comes after the poison and the forged tasks, which are never delivered"
    );
    tasks.ack(&[got[0].tag]).await.unwrap();
    let result = TaskResult {
        task_id: task.task_id.clone(),
        job_id: task.job_id.clone(),
        executor_id: exec.clone(),
        status: TaskStatus::Running,
        start_time: t0(),
        end_time: None,
        output: String::new(),
        error: String::new(),
        exit_code: 0,
        attempt: 1,
        executor_epoch: 1,
        no_retry: false,
        retry_after_ms: None,
    };
    d.send_results(std::slice::from_ref(&result)).await.unwrap();
    let got = recv_n(&mut results, 1).await;
    assert_eq!(got[0].message, result);
    results.ack(&[got[0].tag]).await.unwrap();
    // The results topic has several partitions: its poison may be read after the valid result.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let expected = 6 + forged_count;
    while d.stats().poison < expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        d.stats().poison,
        expected,
        "every poison and forged record is counted"
    );
    // The poison is not delivered again to the next consumer.
    drop(tasks);
    let mut again = opener.dispatcher().await.task_inbox(&exec).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(2), again.recv(10)).await;
    assert!(
        r.is_err(),
        "nothing is redelivered: {:?}",
        r.map(|b| b.map(|v| v.len()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_skipped_and_counted_on_a_broker() {
    let Some(opener) = Opener::broker().await else {
        return;
    };
    poison(&opener, &support::broker_address()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_skipped_and_counted_on_the_mock_cluster() {
    let mock = support::Mock::start();
    let opener = Opener::with_mock(&mock);
    poison(&opener, &mock.brokers).await;
}
