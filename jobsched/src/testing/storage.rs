//! Conformance of [`Storage`] implementations.

use std::sync::Arc;

use chrono::TimeDelta;
use tokio::task::JoinSet;

use super::{OpenStorage, sample_job, sample_record, t0};
use crate::error::Error;
use crate::model::{
    ExecutionQuery, ExecutorHeartbeat, ExecutorId, ExecutorInfo, ExecutorRecord, ExecutorStatus,
    JobId, JobQuery, PageRequest, TaskId, TaskStatus, Trigger,
};
use crate::storage::{ExecutionUpdate, Expect, Fence, InsertOutcome, Storage, UpdateOutcome};

fn dispatched(mut rec: crate::model::ExecutionRecord, exec: &str) -> crate::model::ExecutionRecord {
    rec.status = TaskStatus::Dispatched;
    rec.executor_id = Some(ExecutorId::new(exec).unwrap());
    rec.executor_epoch = 1;
    rec
}

fn finish(rec: &crate::model::ExecutionRecord, exec: &str, status: TaskStatus) -> ExecutionUpdate {
    let mut u = ExecutionUpdate::new(
        rec.task_id.clone(),
        rec.attempt,
        Expect::OnExecutor(ExecutorId::new(exec).unwrap()),
        status,
    );
    u.start_time = Some(t0());
    u.end_time = Some(t0() + TimeDelta::seconds(1));
    u.output = Some("out".into());
    u.error = Some(String::new());
    u.exit_code = Some(0);
    u
}

async fn insert_one(s: &Arc<dyn Storage>, rec: &crate::model::ExecutionRecord) -> i64 {
    match s
        .insert_executions(std::slice::from_ref(rec), None)
        .await
        .unwrap()
        .remove(0)
    {
        InsertOutcome::Inserted { id } => id,
        other => panic!("insert of a new record returned {other:?}"),
    }
}

/// Jobs: create, read, update with optimistic versions, delete; errors are the right kinds.
pub async fn job_crud_and_versions(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("crud-1");
    let created = s
        .create_jobs(std::slice::from_ref(&job))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(created.version, 1, "a new job has version 1");
    let read = s.get_job(&job.job_id).await.unwrap();
    assert_eq!(read, created, "a job reads back as stored");
    let e = s.create_jobs(std::slice::from_ref(&job)).await.unwrap_err();
    assert!(
        matches!(e, Error::AlreadyExists { .. }),
        "duplicate id gives AlreadyExists, got {e:?}"
    );

    let mut changed = read.clone();
    changed.name = "renamed".into();
    changed.timeout = 42;
    let v2 = s.update_job(&changed).await.unwrap();
    assert_eq!(v2.version, 2, "an update bumps the version");
    assert_eq!(s.get_job(&job.job_id).await.unwrap().timeout, 42);
    let e = s.update_job(&changed).await.unwrap_err();
    assert!(
        matches!(e, Error::Conflict { .. }),
        "an update against an old version conflicts, got {e:?}"
    );

    let e = s.delete_job(&job.job_id, Some(1)).await.unwrap_err();
    assert!(
        matches!(e, Error::Conflict { .. }),
        "a delete against an old version conflicts, got {e:?}"
    );
    s.delete_job(&job.job_id, Some(2)).await.unwrap();
    assert!(matches!(
        s.get_job(&job.job_id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_job(&job.job_id, None).await,
        Err(Error::NotFound { .. })
    ));
    let mut ghost = sample_job("crud-ghost");
    ghost.version = 1;
    assert!(matches!(
        s.update_job(&ghost).await,
        Err(Error::NotFound { .. })
    ));
}

/// A batch of jobs is created all or none.
pub async fn job_batch_is_atomic(open: &dyn OpenStorage) {
    let s = open.open().await;
    s.create_jobs(&[sample_job("batch-taken")]).await.unwrap();
    let e = s
        .create_jobs(&[sample_job("batch-new"), sample_job("batch-taken")])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "got {e:?}");
    assert!(
        matches!(
            s.get_job(&JobId::new("batch-new").unwrap()).await,
            Err(Error::NotFound { .. })
        ),
        "a failed batch must store none of its jobs"
    );
}

/// Listing jobs filters, orders by id and pages with a total.
pub async fn job_listing_filters_and_pages(open: &dyn OpenStorage) {
    let s = open.open().await;
    let mut jobs = Vec::new();
    for i in 0..7 {
        let mut j = sample_job(&format!("list-{i}"));
        j.name = if i % 2 == 0 {
            format!("even report {i}")
        } else {
            format!("odd {i}")
        };
        j.owner = if i < 3 { "alice".into() } else { "bob".into() };
        j.enabled = i != 6;
        jobs.push(j);
    }
    s.create_jobs(&jobs).await.unwrap();
    let page = s
        .list_jobs(&JobQuery {
            page: PageRequest::new(2, 3).unwrap(),
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 7);
    let ids: Vec<_> = page.items.iter().map(|j| j.job_id.to_string()).collect();
    assert_eq!(
        ids,
        vec!["list-3", "list-4", "list-5"],
        "ordered by job_id, second page of three"
    );
    let q = JobQuery {
        name: Some("report".into()),
        owner: Some("bob".into()),
        ..JobQuery::default()
    };
    let page = s.list_jobs(&q).await.unwrap();
    let ids: Vec<_> = page.items.iter().map(|j| j.job_id.to_string()).collect();
    assert_eq!(ids, vec!["list-4", "list-6"]);
    let q = JobQuery {
        enabled: Some(false),
        ..JobQuery::default()
    };
    assert_eq!(s.list_jobs(&q).await.unwrap().total, 1);
}

/// The change feed returns every job's latest state in revision order, deletions included.
pub async fn job_changes_follow_every_write(open: &dyn OpenStorage) {
    let s = open.open().await;
    let start = s
        .job_changes(0, 100_000)
        .await
        .unwrap()
        .last()
        .map_or(0, |c| c.revision);
    let a = sample_job("chg-a");
    let b = sample_job("chg-b");
    s.create_jobs(&[a.clone(), b.clone()]).await.unwrap();
    let mut a2 = s.get_job(&a.job_id).await.unwrap();
    a2.priority = 9;
    s.update_job(&a2).await.unwrap();
    s.delete_job(&b.job_id, None).await.unwrap();
    let changes = s.job_changes(start, 100).await.unwrap();
    let revs: Vec<u64> = changes.iter().map(|c| c.revision).collect();
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "revisions grow: {revs:?}"
    );
    let last_a = changes
        .iter()
        .rev()
        .find(|c| c.job_id == a.job_id)
        .expect("a changed");
    assert_eq!(
        last_a.job.as_ref().expect("a exists").priority,
        9,
        "latest state of a"
    );
    let last_b = changes
        .iter()
        .rev()
        .find(|c| c.job_id == b.job_id)
        .expect("b changed");
    assert!(last_b.job.is_none(), "b's deletion is in the feed");
    let after = changes.last().unwrap().revision;
    assert!(
        s.job_changes(after, 100).await.unwrap().is_empty(),
        "nothing after the last revision"
    );
    // A re-created job shows up again.
    s.create_jobs(std::slice::from_ref(&b)).await.unwrap();
    let again = s.job_changes(after, 100).await.unwrap();
    assert!(
        again
            .iter()
            .any(|c| c.job_id == b.job_id && c.job.is_some())
    );
}

/// **A fire is recorded once**: 16 concurrent attempts from separate handles to record the same
/// `(job, fire time)` → exactly one inserted, the others told who did.
pub async fn fire_is_recorded_once(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("fire-once");
    s.create_jobs(std::slice::from_ref(&job)).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..16 {
        handles.push(open.open().await);
    }
    let at = t0() + TimeDelta::seconds(5);
    let mut set = JoinSet::new();
    for h in &handles {
        let rec = sample_record(&job, Trigger::Schedule, at);
        let h = h.clone();
        set.spawn(async move { (rec.task_id.clone(), h.insert_executions(&[rec], None).await) });
    }
    let results = set.join_all().await;
    let winners: Vec<&TaskId> = results
        .iter()
        .filter(|(_, r)| matches!(r.as_ref().unwrap()[0], InsertOutcome::Inserted { .. }))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 16 concurrent fires must be recorded"
    );
    for (_, r) in &results {
        if let InsertOutcome::AlreadyFired { task_id } = &r.as_ref().unwrap()[0] {
            assert_eq!(task_id, winners[0], "AlreadyFired names the recorded task");
        }
    }
    let recorded = s
        .list_executions(&ExecutionQuery {
            job_id: Some(job.job_id.clone()),
            ..ExecutionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(recorded.total, 1, "one record for the fire");
    // Another fire time, a misfire of the same time, and manual runs are separate.
    let other = sample_record(&job, Trigger::Schedule, at + TimeDelta::seconds(5));
    assert!(matches!(
        s.insert_executions(&[other], None).await.unwrap()[0],
        InsertOutcome::Inserted { .. }
    ));
    let misfire = sample_record(&job, Trigger::Misfire, at);
    assert!(
        matches!(
            s.insert_executions(&[misfire], None).await.unwrap()[0],
            InsertOutcome::AlreadyFired { .. }
        ),
        "a misfire of an already recorded fire time is the same fire"
    );
    let m1 = sample_record(&job, Trigger::Manual, at);
    let m2 = sample_record(&job, Trigger::Manual, at);
    let out = s.insert_executions(&[m1, m2], None).await.unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, InsertOutcome::Inserted { .. })),
        "manual runs at the same time are all recorded: {out:?}"
    );
}

/// **A result is applied once**: duplicate terminal updates and updates from the wrong executor change
/// nothing; the next attempt is inserted only with an update that applies.
pub async fn result_is_applied_once(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("result-once");
    let rec = dispatched(sample_record(&job, Trigger::Manual, t0()), "exec-a");
    insert_one(&s, &rec).await;
    let wrong = finish(&rec, "exec-b", TaskStatus::Succeeded);
    let out = s.update_executions(&[wrong], None).await.unwrap();
    assert!(
        matches!(
            out[0],
            UpdateOutcome::Stale {
                status: TaskStatus::Dispatched,
                ..
            }
        ),
        "a result from another executor must not apply: {out:?}"
    );
    let mut fail = finish(&rec, "exec-a", TaskStatus::Failed);
    fail.next_attempt = Some(rec.next_attempt(Trigger::Retry, t0() + TimeDelta::seconds(10), t0()));
    let mut set = JoinSet::new();
    for _ in 0..3 {
        let h = open.open().await;
        let u = fail.clone();
        set.spawn(async move { h.update_executions(&[u], None).await.unwrap().remove(0) });
    }
    let results = set.join_all().await;
    let applied = results
        .iter()
        .filter(|o| matches!(o, UpdateOutcome::Applied { .. }))
        .count();
    assert_eq!(
        applied, 1,
        "exactly one of three concurrent identical results applies: {results:?}"
    );
    let attempts = s.task_attempts(&rec.task_id).await.unwrap();
    assert_eq!(attempts.len(), 2, "the retry was inserted once");
    assert_eq!(attempts[0].status, TaskStatus::Failed);
    assert_eq!(attempts[0].output, "out");
    assert_eq!(attempts[1].status, TaskStatus::Queued);
    assert_eq!(attempts[1].attempt, 2);
    assert_eq!(attempts[1].trigger, Trigger::Retry);
    // A late `running` for the ended attempt changes nothing.
    let late = ExecutionUpdate::new(
        rec.task_id.clone(),
        1,
        Expect::OnExecutor(ExecutorId::new("exec-a").unwrap()),
        TaskStatus::Running,
    );
    assert!(matches!(
        s.update_executions(&[late], None).await.unwrap()[0],
        UpdateOutcome::Stale { .. }
    ));
    let missing =
        ExecutionUpdate::new(TaskId::generate(), 1, Expect::Active, TaskStatus::Cancelled);
    assert_eq!(
        s.update_executions(&[missing], None).await.unwrap()[0],
        UpdateOutcome::NotFound
    );
}

/// Conditional transitions: queued → dispatched only while queued; active → cancelled only while active.
pub async fn transitions_are_conditional(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("transitions");
    let rec = sample_record(&job, Trigger::Manual, t0());
    insert_one(&s, &rec).await;
    let mut d = ExecutionUpdate::new(
        rec.task_id.clone(),
        1,
        Expect::Queued,
        TaskStatus::Dispatched,
    );
    d.executor = Some((ExecutorId::new("exec-a").unwrap(), 7));
    assert!(matches!(
        s.update_executions(&[d.clone()], None).await.unwrap()[0],
        UpdateOutcome::Applied { .. }
    ));
    assert!(
        matches!(
            s.update_executions(&[d], None).await.unwrap()[0],
            UpdateOutcome::Stale { .. }
        ),
        "dispatching twice must not apply"
    );
    let stored = s.get_execution(&rec.task_id, 1).await.unwrap();
    assert_eq!(
        stored.executor_id.as_ref().map(|e| e.as_str()),
        Some("exec-a")
    );
    assert_eq!(stored.executor_epoch, 7);
    let mut run = ExecutionUpdate::new(
        rec.task_id.clone(),
        1,
        Expect::OnExecutor(ExecutorId::new("exec-a").unwrap()),
        TaskStatus::Running,
    );
    run.start_time = Some(t0());
    assert!(matches!(
        s.update_executions(&[run], None).await.unwrap()[0],
        UpdateOutcome::Applied { .. }
    ));
    let mut c = ExecutionUpdate::new(
        rec.task_id.clone(),
        1,
        Expect::Active,
        TaskStatus::Cancelled,
    );
    c.end_time = Some(t0());
    assert!(matches!(
        s.update_executions(&[c.clone()], None).await.unwrap()[0],
        UpdateOutcome::Applied { .. }
    ));
    assert!(matches!(
        s.update_executions(&[c], None).await.unwrap()[0],
        UpdateOutcome::Stale {
            status: TaskStatus::Cancelled,
            ..
        }
    ));
    let stored = s.get_execution(&rec.task_id, 1).await.unwrap();
    assert_eq!(stored.status, TaskStatus::Cancelled);
    assert_eq!(stored.start_time, Some(t0()), "earlier fields are kept");
}

/// **Fencing**: a write with an older token than one already seen fails and changes nothing.
pub async fn fencing_rejects_older_tokens(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("fenced");
    let new_fence = Fence {
        scope: "conformance-leader".into(),
        token: 5,
    };
    let old_fence = Fence {
        scope: "conformance-leader".into(),
        token: 3,
    };
    let rec = sample_record(&job, Trigger::Schedule, t0());
    s.insert_executions(std::slice::from_ref(&rec), Some(&new_fence))
        .await
        .unwrap();
    let stale = sample_record(&job, Trigger::Schedule, t0() + TimeDelta::seconds(5));
    let e = s
        .insert_executions(std::slice::from_ref(&stale), Some(&old_fence))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Fenced {
                token: 3,
                current: 5,
                ..
            }
        ),
        "got {e:?}"
    );
    let c = ExecutionUpdate::new(
        rec.task_id.clone(),
        1,
        Expect::Active,
        TaskStatus::Cancelled,
    );
    let e = s
        .update_executions(&[c], Some(&old_fence))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Fenced { .. }), "got {e:?}");
    let e = s
        .put_value("fenced-key", "x", None, Some(&old_fence), &[])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Fenced { .. }), "got {e:?}");
    assert_eq!(
        s.get_execution(&rec.task_id, 1).await.unwrap().status,
        TaskStatus::Queued,
        "nothing changed"
    );
    assert!(matches!(
        s.get_execution(&stale.task_id, 1).await,
        Err(Error::NotFound { .. })
    ));
    // A newer token takes over; other scopes are independent.
    let newer = Fence {
        scope: "conformance-leader".into(),
        token: 6,
    };
    s.put_value("fenced-key", "y", None, Some(&newer), &[])
        .await
        .unwrap();
    let other = Fence {
        scope: "another-scope".into(),
        token: 1,
    };
    s.put_value("fenced-key", "z", None, Some(&other), &[])
        .await
        .unwrap();
}

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

/// Every behaviour of this suite, by function name (for the coverage check in backend tests).
pub fn behaviours() -> Vec<&'static str> {
    super::behaviours_in(include_str!("storage.rs"))
}
