//! The core dispatch conformance suite on Kafka, twice: on librdkafka's in-process mock cluster (fast,
//! nothing to install) and on a real broker (`JOBSCHED_TEST_KAFKA`, default the services script's
//! `127.0.0.1:9092`; unreachable: fails with `CI=true`, skipped otherwise). Each test has its own topic
//! prefix (and its own mock cluster).

mod support;

use jobsched::testing;

macro_rules! each {
    ($module:ident, $opener:expr, [$($name:ident),+ $(,)?]) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(opener) = $opener.await else { return };
                    testing::dispatch::$name(&opener).await;
                }
            )+

            #[test]
            fn every_behaviour_is_run() {
                let mut listed = vec![$(stringify!($name)),+];
                let mut all = testing::dispatch::behaviours();
                listed.sort();
                all.sort();
                assert_eq!(listed, all, "this file must run every dispatch behaviour of the suite");
            }
        }
    };
}

each!(
    mock,
    support::Opener::mock(),
    [
        task_reaches_only_the_chosen_executor,
        task_without_executor_is_refused,
        unacknowledged_tasks_are_redelivered,
        results_reach_the_scheduler,
        control_reaches_the_executor,
        recv_is_cancel_safe,
    ]
);

each!(
    broker,
    support::Opener::broker(),
    [
        task_reaches_only_the_chosen_executor,
        task_without_executor_is_refused,
        unacknowledged_tasks_are_redelivered,
        results_reach_the_scheduler,
        control_reaches_the_executor,
        recv_is_cancel_safe,
    ]
);
