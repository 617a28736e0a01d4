//! Kafka for tests: a mock cluster of librdkafka in this process, or the real broker of the services
//! script; a unique topic prefix per test.
#![allow(dead_code)] // Each test file uses a part.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jobsched::dispatch::Dispatcher;
use jobsched::testing::OpenDispatcher;
use jobsched_kafka::{KafkaConfig, KafkaDispatcher, TopicCreator};
use rdkafka::mocking::MockCluster;

type Request = (
    String,
    i32,
    tokio::sync::oneshot::Sender<Result<(), String>>,
);

/// A mock cluster on a thread of its own (it is not `Send`), creating topics on request.
pub struct Mock {
    pub brokers: String,
    requests: Arc<Mutex<std::sync::mpsc::Sender<Request>>>,
}

impl Mock {
    pub fn start() -> Mock {
        let (tx, rx) = std::sync::mpsc::channel::<Request>();
        let (btx, brx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mock = MockCluster::new(1).expect("a mock cluster");
            btx.send(mock.bootstrap_servers()).unwrap();
            for (topic, partitions, done) in rx {
                let r = mock
                    .create_topic(&topic, partitions, 1)
                    .map_err(|e| e.to_string());
                let _ = done.send(r);
            }
        });
        Mock {
            brokers: brx.recv().unwrap(),
            requests: Arc::new(Mutex::new(tx)),
        }
    }

    pub fn creator(&self) -> TopicCreator {
        let requests = self.requests.clone();
        Arc::new(move |topic: String, partitions: i32| {
            let (done, wait) = tokio::sync::oneshot::channel();
            let sent = requests
                .lock()
                .unwrap()
                .send((topic.clone(), partitions, done));
            Box::pin(async move {
                sent.map_err(|_| {
                    jobsched::Error::unavailable("kafka", "the mock cluster is gone")
                })?;
                match wait.await {
                    Ok(Ok(())) => Ok(()),
                    // Created before: fine.
                    Ok(Err(e)) if e.contains("exists") => Ok(()),
                    Ok(Err(e)) => Err(jobsched::Error::unavailable(
                        "kafka",
                        format!("creating {topic}: {e}"),
                    )),
                    Err(_) => Err(jobsched::Error::unavailable(
                        "kafka",
                        "the mock cluster is gone",
                    )),
                }
            })
        })
    }
}

pub fn prefix() -> String {
    format!("t{:012x}", fastrand::u64(..) >> 16)
}

/// The real broker the tests use.
pub fn broker_address() -> String {
    std::env::var("JOBSCHED_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// Opens dispatchers on one cluster and prefix; each `open` has its own producer and consumers.
pub struct Opener {
    config: KafkaConfig,
    creator: Option<TopicCreator>,
    _mock: Option<Mock>,
}

impl Opener {
    pub async fn mock() -> Option<Opener> {
        let mock = Mock::start();
        let config = KafkaConfig::new(&mock.brokers)
            .with_prefix(prefix())
            .with_result_partitions(4)
            .with_cluster_key(jobsched_kafka::ClusterKey::generate());
        Some(Opener {
            config,
            creator: Some(mock.creator()),
            _mock: Some(mock),
        })
    }

    /// An opener on a mock cluster the caller keeps.
    pub fn with_mock(mock: &Mock) -> Opener {
        Opener {
            config: KafkaConfig::new(&mock.brokers)
                .with_prefix(prefix())
                .with_result_partitions(4)
                .with_cluster_key(jobsched_kafka::ClusterKey::generate()),
            creator: Some(mock.creator()),
            _mock: None,
        }
    }

    pub async fn broker() -> Option<Opener> {
        let brokers = broker_address();
        let config = KafkaConfig::new(&brokers)
            .with_prefix(prefix())
            .with_result_partitions(4)
            .with_cluster_key(jobsched_kafka::ClusterKey::generate())
            .with_send_timeout(std::time::Duration::from_secs(10));
        if let Err(e) = KafkaDispatcher::connect(config.clone()).await {
            return jobsched_testkit::unreachable(format!(
                "the Kafka broker at {brokers} is unreachable ({e})"
            ));
        }
        Some(Opener {
            config,
            creator: None,
            _mock: None,
        })
    }

    pub async fn dispatcher(&self) -> KafkaDispatcher {
        match &self.creator {
            Some(c) => KafkaDispatcher::connect_with(self.config.clone(), c.clone()).await,
            None => KafkaDispatcher::connect(self.config.clone()).await,
        }
        .expect("open the dispatcher")
    }
}

#[async_trait]
impl OpenDispatcher for Opener {
    async fn open(&self) -> Arc<dyn Dispatcher> {
        Arc::new(self.dispatcher().await)
    }
}
