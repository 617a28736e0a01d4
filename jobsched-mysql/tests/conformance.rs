//! The core conformance suite against a real MariaDB/MySQL server, each behaviour in a fresh database.

mod support;

use jobsched::testing;

macro_rules! each {
    ($suite:ident, [$($name:ident),+ $(,)?]) => {
        mod $suite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(opener) = support::Opener::new().await else { return };
                    testing::$suite::$name(&opener).await;
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
