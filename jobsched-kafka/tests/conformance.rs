//! The core dispatch conformance suite on Kafka, twice: on librdkafka's in-process mock cluster (fast,
//! nothing to install) and on a real broker (`JOBSCHED_TEST_KAFKA`, default the services script's
//! `127.0.0.1:9092`; unreachable: fails with `CI=true`, skipped otherwise). Each test has its own topic
//! prefix (and its own mock cluster).

mod support;

jobsched::conformance_tests!(dispatch as mock, support::Opener::mock().await);
jobsched::conformance_tests!(dispatch as broker, support::Opener::broker().await);
