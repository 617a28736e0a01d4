//! The backend conformance suite against the in-process backends.

use jobsched::testing::{self, ChannelOpener, LocalOpener, MemoryOpener};

macro_rules! each {
    ($suite:ident, $opener:ty, [$($name:ident),+ $(,)?]) => {
        mod $suite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    testing::$suite::$name(&<$opener>::default()).await;
                }
            )+

            #[test]
            fn every_behaviour_is_run() {
                let mut listed = vec![$(stringify!($name)),+];
                let mut all = testing::$suite::behaviours();
                listed.sort();
                all.sort();
                assert_eq!(listed, all, "this file must run every behaviour of the suite");
            }
        }
    };
}

each!(
    storage,
    MemoryOpener,
    [
        job_crud_and_versions,
        job_batch_is_atomic,
        job_listing_filters_and_pages,
        job_changes_follow_every_write,
        fire_is_recorded_once,
        result_is_applied_once,
        transitions_are_conditional,
        fencing_rejects_older_tokens,
        executions_filter_and_page,
        active_executions_are_listed_for_takeover,
        purge_removes_only_old_ended_records,
        executors_keep_enabled_across_upserts,
        settings_are_versioned,
        text_is_stored_verbatim,
        batches_with_a_taken_attempt_change_nothing,
        attempts_survive_purge_of_earlier_ones,
        inserted_ids_are_the_stored_ids,
    ]
);

each!(
    accounts,
    MemoryOpener,
    [
        users_are_kept_by_unique_name,
        the_last_enabled_admin_stays_one,
        tokens_are_listed_and_revoked_once,
        ended_sessions_are_remembered_until_expiry,
        audit_is_filtered_paged_and_purged,
        job_writes_commit_with_their_audit,
        other_changes_commit_with_their_audit,
    ]
);

each!(
    dispatch,
    ChannelOpener,
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
    coord,
    LocalOpener,
    [
        membership_sees_join_and_dead_member_leave,
        member_ids_are_unique_and_epochs_grow,
        one_leader_at_a_time,
        abandoned_campaign_does_not_block,
        lock_excludes_and_token_grows,
        watched_values_propagate,
    ]
);
