//! [`conformance_tests!`](crate::conformance_tests): one `#[tokio::test]` per behaviour of a suite, so every
//! backend runs the same list.

/// Generates a module of `#[tokio::test]`s, one per behaviour of a conformance suite, for a backend's
/// `tests/conformance.rs`.
///
/// `storage` runs the [`storage`](crate::testing::storage) and [`accounts`](crate::testing::accounts)
/// suites (modules `storage` and `accounts`), `dispatch` and `coord` their suite (a module of that name, or
/// of the name given after `as`). `$open` is evaluated inside each async test and yields
/// `Option<opener>`: `None` skips the test (a backend's server is not there outside CI). Each module also
/// has `every_behaviour_is_run`, which fails if a behaviour of the suite has no test here.
///
/// ```text
/// // jobsched-mysql/tests/conformance.rs
/// mod support;
/// jobsched::conformance_tests!(storage, support::Opener::new().await);
/// // jobsched-kafka/tests/conformance.rs: the same suite twice
/// jobsched::conformance_tests!(dispatch as mock, support::Opener::mock().await);
/// jobsched::conformance_tests!(dispatch as broker, support::Opener::broker().await);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    (storage, $open:expr) => {
        $crate::conformance_tests!(@suite storage, storage, $open, [
            job_crud_and_versions,
            job_batch_is_atomic,
            job_listing_filters_and_pages,
            job_changes_follow_every_write,
            fire_is_recorded_once,
            result_is_applied_once,
            transitions_are_conditional,
            fencing_rejects_older_tokens,
            claimed_tokens_exceed_every_earlier_one,
            executions_filter_and_page,
            active_executions_are_listed_for_takeover,
            purge_removes_only_old_ended_records,
            jobs_keep_history_by_their_own_retention,
            executors_keep_enabled_across_upserts,
            settings_are_versioned,
            text_is_stored_verbatim,
            batches_with_a_taken_attempt_change_nothing,
            attempts_survive_purge_of_earlier_ones,
            inserted_ids_are_the_stored_ids,
            outcomes_are_counted_by_hour_and_status,
            latest_executions_are_the_newest_per_job,
        ]);
        $crate::conformance_tests!(@suite accounts, accounts, $open, [
            users_are_kept_by_unique_name,
            the_last_enabled_admin_stays_one,
            tokens_are_listed_and_revoked_once,
            ended_sessions_are_remembered_until_expiry,
            audit_is_filtered_paged_and_purged,
            job_writes_commit_with_their_audit,
            other_changes_commit_with_their_audit,
        ]);
    };
    (dispatch, $open:expr) => {
        $crate::conformance_tests!(dispatch as dispatch, $open);
    };
    (dispatch as $module:ident, $open:expr) => {
        $crate::conformance_tests!(@suite dispatch, $module, $open, [
            task_reaches_only_the_chosen_executor,
            task_without_executor_is_refused,
            unacknowledged_tasks_are_redelivered,
            results_reach_the_scheduler,
            control_reaches_the_executor,
            recv_is_cancel_safe,
            output_reaches_every_listener,
        ]);
    };
    (coord, $open:expr) => {
        $crate::conformance_tests!(coord as coord, $open);
    };
    (coord as $module:ident, $open:expr) => {
        $crate::conformance_tests!(@suite coord, $module, $open, [
            membership_sees_join_and_dead_member_leave,
            member_ids_are_unique_and_epochs_grow,
            one_leader_at_a_time,
            abandoned_campaign_does_not_block,
            lock_excludes_and_token_grows,
            watched_values_propagate,
        ]);
    };
    (@suite $suite:ident, $module:ident, $open:expr, [$($name:ident),+ $(,)?]) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(opener) = $open else { return };
                    $crate::testing::$suite::$name(&opener).await;
                }
            )+

            #[test]
            fn every_behaviour_is_run() {
                let mut listed = vec![$(stringify!($name)),+];
                let mut all = $crate::testing::$suite::behaviours();
                listed.sort();
                all.sort();
                assert_eq!(listed, all, "conformance_tests! must run every behaviour of the suite");
            }
        }
    };
}
