//! History, takeover listing, purge, executors, settings, verbatim text, batches and ids.

use chrono::TimeDelta;
use tokio::task::JoinSet;

use super::{dispatched, finish, insert_one};
use crate::error::Error;
use crate::model::{
    ExecutionQuery, ExecutorHeartbeat, ExecutorId, ExecutorInfo, ExecutorRecord, ExecutorStatus,
    PageRequest, TaskStatus, Trigger,
};
use crate::storage::{ExecutionUpdate, Expect, InsertOutcome};
use crate::testing::{OpenStorage, sample_job, sample_record, t0};

/// History queries filter by job, task, status, executor and time, newest first, with totals.
pub async fn executions_filter_and_page(open: &dyn OpenStorage) {
    let s = open.open().await;
    let a = sample_job("hist-a");
    let b = sample_job("hist-b");
    let mut recs = Vec::new();
    for i in 0..10 {
        let job = if i % 2 == 0 { &a } else { &b };
        let mut r = sample_record(job, Trigger::Schedule, t0() + TimeDelta::seconds(i));
        if i >= 6 {
            r = dispatched(r, "exec-h");
        }
        recs.push(r);
    }
    s.insert_executions(&recs, None).await.unwrap();
    let all = s.list_executions(&ExecutionQuery::default()).await.unwrap();
    assert!(all.total >= 10);
    let q = ExecutionQuery {
        job_id: Some(a.job_id.clone()),
        ..ExecutionQuery::default()
    };
    let page = s.list_executions(&q).await.unwrap();
    assert_eq!(page.total, 5);
    let times: Vec<_> = page.items.iter().map(|r| r.scheduled_time).collect();
    assert!(
        times.windows(2).all(|w| w[0] > w[1]),
        "newest first: {times:?}"
    );
    let q = ExecutionQuery {
        job_id: Some(a.job_id.clone()),
        page: PageRequest::new(2, 2).unwrap(),
        ..ExecutionQuery::default()
    };
    let page = s.list_executions(&q).await.unwrap();
    assert_eq!((page.total, page.items.len()), (5, 2));
    assert_eq!(page.items[0].scheduled_time, t0() + TimeDelta::seconds(4));
    let q = ExecutionQuery {
        statuses: vec![TaskStatus::Dispatched],
        ..ExecutionQuery::default()
    };
    assert_eq!(s.list_executions(&q).await.unwrap().total, 4);
    let q = ExecutionQuery {
        executor_id: Some(ExecutorId::new("exec-h").unwrap()),
        job_id: Some(b.job_id.clone()),
        ..ExecutionQuery::default()
    };
    assert_eq!(s.list_executions(&q).await.unwrap().total, 2, "i = 7, 9");
    let q = ExecutionQuery {
        job_id: Some(a.job_id.clone()),
        from: Some(t0() + TimeDelta::seconds(2)),
        to: Some(t0() + TimeDelta::seconds(6)),
        ..ExecutionQuery::default()
    };
    assert_eq!(s.list_executions(&q).await.unwrap().total, 2, "i = 2, 4");
    let q = ExecutionQuery {
        job_id: Some(a.job_id.clone()),
        created_from: Some(t0() + TimeDelta::seconds(2)),
        ..ExecutionQuery::default()
    };
    assert_eq!(
        s.list_executions(&q).await.unwrap().total,
        4,
        "created at or after: i = 2, 4, 6, 8"
    );
    let q = ExecutionQuery {
        task_id: Some(recs[3].task_id.clone()),
        ..ExecutionQuery::default()
    };
    assert_eq!(
        s.list_executions(&q).await.unwrap().items[0].task_id,
        recs[3].task_id
    );
}

/// Active executions are listed by id for takeover; ended ones are not.
pub async fn active_executions_are_listed_for_takeover(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("active");
    let recs: Vec<_> = (0..5)
        .map(|i| sample_record(&job, Trigger::Schedule, t0() + TimeDelta::seconds(i)))
        .collect();
    s.insert_executions(&recs, None).await.unwrap();
    let c = ExecutionUpdate::new(
        recs[1].task_id.clone(),
        1,
        Expect::Active,
        TaskStatus::Cancelled,
    );
    s.update_executions(&[c], None).await.unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = s.active_executions(after, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        for r in page {
            assert!(r.id > after, "ordered by id");
            after = r.id;
            seen.push(r.task_id);
        }
    }
    let ours: Vec<_> = seen
        .into_iter()
        .filter(|t| recs.iter().any(|r| r.task_id == *t))
        .collect();
    assert_eq!(ours.len(), 4, "the cancelled one is not active");
    assert!(!ours.contains(&recs[1].task_id));
}

/// Purging removes ended records older than the cut-off, and nothing else.
pub async fn purge_removes_only_old_ended_records(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("purge");
    let old = dispatched(sample_record(&job, Trigger::Manual, t0()), "exec-p");
    let recent = dispatched(sample_record(&job, Trigger::Manual, t0()), "exec-p");
    let active = sample_record(&job, Trigger::Manual, t0());
    s.insert_executions(&[old.clone(), recent.clone(), active.clone()], None)
        .await
        .unwrap();
    let mut u1 = finish(&old, "exec-p", TaskStatus::Succeeded);
    u1.end_time = Some(t0());
    let mut u2 = finish(&recent, "exec-p", TaskStatus::Succeeded);
    u2.end_time = Some(t0() + TimeDelta::days(10));
    s.update_executions(&[u1, u2], None).await.unwrap();
    let n = s
        .purge_executions(t0() + TimeDelta::days(1), 1000)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(matches!(
        s.get_execution(&old.task_id, 1).await,
        Err(Error::NotFound { .. })
    ));
    assert!(s.get_execution(&recent.task_id, 1).await.is_ok());
    assert!(s.get_execution(&active.task_id, 1).await.is_ok());
}

/// Executors: upsert keeps an operator's `enabled`; heartbeats update liveness; unknown ids are NotFound.
pub async fn executors_keep_enabled_across_upserts(open: &dyn OpenStorage) {
    let s = open.open().await;
    let info = ExecutorInfo {
        executor_id: ExecutorId::new("exec-conf").unwrap(),
        host: "host-1".into(),
        port: 9001,
        capacity: 4,
        group: "batch".into(),
        labels: [("zone".to_string(), "a".to_string())].into(),
        handlers: vec!["shell".into(), "noop".into()],
        version: "x".into(),
    };
    let rec = ExecutorRecord::from_info(&info, t0());
    let stored = s.upsert_executor(&rec).await.unwrap();
    assert!(stored.enabled);
    assert_eq!(s.get_executor(&info.executor_id).await.unwrap(), stored);
    s.set_executor_enabled(&info.executor_id, false, &[])
        .await
        .unwrap();
    let mut again = ExecutorRecord::from_info(&info, t0() + TimeDelta::seconds(60));
    again.capacity = 8;
    let stored = s.upsert_executor(&again).await.unwrap();
    assert!(
        !stored.enabled,
        "re-registration keeps the operator's choice"
    );
    assert_eq!(stored.capacity, 8);
    let beat = ExecutorHeartbeat {
        executor_id: info.executor_id.clone(),
        status: ExecutorStatus::Offline,
        at: t0() + TimeDelta::seconds(90),
        running: 3,
    };
    let ghost = ExecutorHeartbeat {
        executor_id: ExecutorId::new("ghost").unwrap(),
        ..beat.clone()
    };
    s.record_heartbeats(&[beat, ghost]).await.unwrap();
    let got = s.get_executor(&info.executor_id).await.unwrap();
    assert_eq!(got.status, ExecutorStatus::Offline);
    assert_eq!(got.running, 3);
    assert_eq!(got.last_heartbeat_time, t0() + TimeDelta::seconds(90));
    assert_eq!(got.labels.get("zone").map(String::as_str), Some("a"));
    assert_eq!(got.handlers, vec!["shell".to_string(), "noop".to_string()]);
    assert!(
        s.list_executors()
            .await
            .unwrap()
            .iter()
            .any(|e| e.executor_id == info.executor_id)
    );
    assert!(matches!(
        s.get_executor(&ExecutorId::new("ghost").unwrap()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.set_executor_enabled(&ExecutorId::new("ghost").unwrap(), true, &[])
            .await,
        Err(Error::NotFound { .. })
    ));
}

/// Settings are versioned with compare-and-set.
pub async fn settings_are_versioned(open: &dyn OpenStorage) {
    let s = open.open().await;
    assert!(s.get_value("conf-key").await.unwrap().is_none());
    assert_eq!(
        s.put_value("conf-key", "a", Some(0), None, &[])
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        s.put_value("conf-key", "b", Some(0), None, &[]).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        s.put_value("conf-key", "b", Some(1), None, &[])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.put_value("conf-key", "c", None, None, &[]).await.unwrap(),
        3
    );
    let v = s.get_value("conf-key").await.unwrap().unwrap();
    assert_eq!((v.value.as_str(), v.version), ("c", 3));
}

/// Text is stored verbatim: quotes, backslashes, emoji, newlines, long output.
pub async fn text_is_stored_verbatim(open: &dyn OpenStorage) {
    let s = open.open().await;
    let mut job = sample_job("verbatim");
    job.name = "it's a \"name\" with \\ and 🚀".into();
    job.command = "printf '%s\\n' \"a'b\" && echo \\\"q\\\" # 💥 ; DROP TABLE jobs; --".into();
    job.description = "line 1\nline 2\t\u{0001}".into();
    s.create_jobs(std::slice::from_ref(&job)).await.unwrap();
    let back = s.get_job(&job.job_id).await.unwrap();
    assert_eq!(back.name, job.name);
    assert_eq!(back.command, job.command);
    assert_eq!(back.description, job.description);
    let rec = dispatched(sample_record(&job, Trigger::Manual, t0()), "exec-v");
    insert_one(&s, &rec).await;
    let mut u = finish(&rec, "exec-v", TaskStatus::Failed);
    let big = "x".repeat(60_000) + "🚀 end";
    u.output = Some(big.clone());
    u.error = Some("stderr: 'quoted' \\ \"double\"".into());
    s.update_executions(&[u], None).await.unwrap();
    let back = s.get_execution(&rec.task_id, 1).await.unwrap();
    assert_eq!(back.output, big);
    assert_eq!(back.error, "stderr: 'quoted' \\ \"double\"");
    assert_eq!(
        back.command, job.command,
        "the task snapshot keeps the command"
    );
}

/// A batch that contains an attempt already stored (or one twice) fails as a whole: nothing of it is stored,
/// and an update batch whose retry would duplicate an attempt applies none of its updates.
pub async fn batches_with_a_taken_attempt_change_nothing(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("atomic-batch");
    let taken = sample_record(&job, Trigger::Manual, t0());
    insert_one(&s, &taken).await;
    let fresh = sample_record(&job, Trigger::Manual, t0());
    let e = s
        .insert_executions(&[fresh.clone(), taken.clone()], None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "got {e:?}");
    assert!(
        matches!(
            s.get_execution(&fresh.task_id, 1).await,
            Err(Error::NotFound { .. })
        ),
        "a failed batch stores none of its records"
    );
    // An update whose next attempt exists already: the batch fails and the other update is not applied.
    let a = dispatched(sample_record(&job, Trigger::Manual, t0()), "exec-t");
    let b = dispatched(sample_record(&job, Trigger::Manual, t0()), "exec-t");
    s.insert_executions(&[a.clone(), b.clone()], None)
        .await
        .unwrap();
    let second = a.next_attempt(Trigger::Retry, t0(), t0());
    insert_one(&s, &second).await;
    let ok = finish(&b, "exec-t", TaskStatus::Succeeded);
    let mut dup = finish(&a, "exec-t", TaskStatus::Failed);
    dup.next_attempt = Some(a.next_attempt(Trigger::Retry, t0(), t0()));
    let e = s.update_executions(&[ok, dup], None).await.unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "got {e:?}");
    assert_eq!(
        s.get_execution(&b.task_id, 1).await.unwrap().status,
        TaskStatus::Dispatched,
        "no update of a failed batch applies"
    );
}

/// A task's attempts stay listed when earlier attempts were purged.
pub async fn attempts_survive_purge_of_earlier_ones(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("purged-attempts");
    let first = dispatched(sample_record(&job, Trigger::Manual, t0()), "exec-q");
    insert_one(&s, &first).await;
    let mut fail = finish(&first, "exec-q", TaskStatus::Failed);
    fail.end_time = Some(t0());
    fail.next_attempt = Some(first.next_attempt(Trigger::Retry, t0() + TimeDelta::days(5), t0()));
    s.update_executions(&[fail], None).await.unwrap();
    assert_eq!(
        s.purge_executions(t0() + TimeDelta::days(1), 100)
            .await
            .unwrap(),
        1
    );
    let left = s.task_attempts(&first.task_id).await.unwrap();
    assert_eq!(left.iter().map(|r| r.attempt).collect::<Vec<_>>(), vec![2]);
}

/// The ids `insert_executions` returns are the stored records' ids, and grow in batch order, also when
/// several handles insert batches (and retries) at once.
pub async fn inserted_ids_are_the_stored_ids(open: &dyn OpenStorage) {
    let job = sample_job("ids");
    let mut set = JoinSet::new();
    for h in 0..4 {
        let s = open.open().await;
        let job = job.clone();
        set.spawn(async move {
            let mut out = Vec::new();
            for b in 0..5 {
                let recs: Vec<_> = (0..50)
                    .map(|i| {
                        let at = t0() + TimeDelta::seconds(h * 10_000 + b * 100 + i);
                        sample_record(&job, Trigger::Schedule, at)
                    })
                    .collect();
                let outcomes = s.insert_executions(&recs, None).await.unwrap();
                let ids: Vec<i64> = outcomes
                    .iter()
                    .map(|o| match o {
                        InsertOutcome::Inserted { id } => *id,
                        other => panic!("a new fire was not inserted: {other:?}"),
                    })
                    .collect();
                assert!(
                    ids.windows(2).all(|w| w[0] < w[1]),
                    "ids grow in batch order: {ids:?}"
                );
                out.extend(recs.into_iter().zip(ids));
            }
            out
        });
    }
    let s = open.open().await;
    for (rec, id) in set.join_all().await.into_iter().flatten() {
        let stored = s.get_execution(&rec.task_id, 1).await.unwrap();
        assert_eq!(
            stored.id, id,
            "the returned id of {} is its stored id",
            rec.task_id
        );
    }
}
