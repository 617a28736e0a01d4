//! Jobs and the change feed, fires, results, transitions and fencing.

use chrono::TimeDelta;
use tokio::task::JoinSet;

use super::{dispatched, finish, insert_one};
use crate::error::Error;
use crate::model::{
    ExecutionQuery, ExecutorId, JobId, JobQuery, PageRequest, TaskId, TaskStatus, Trigger,
};
use crate::storage::{ExecutionUpdate, Expect, Fence, InsertOutcome, UpdateOutcome};
use crate::testing::{OpenStorage, sample_job, sample_record, t0};

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
        if i == 5 {
            j.schedule_type = crate::model::ScheduleType::Manual;
            j.cron_expression = None;
        }
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
    let q = JobQuery {
        schedule_type: Some(crate::model::ScheduleType::Manual),
        ..JobQuery::default()
    };
    let page = s.list_jobs(&q).await.unwrap();
    assert_eq!((page.total, page.items[0].job_id.as_str()), (1, "list-5"));
    // By the status of each job's newest record: list-0 failed after succeeding, list-1 succeeded.
    let mut recs = Vec::new();
    for (job, status, secs) in [
        (&jobs[0], TaskStatus::Succeeded, 0),
        (&jobs[0], TaskStatus::Failed, 1),
        (&jobs[1], TaskStatus::Failed, 0),
        (&jobs[1], TaskStatus::Succeeded, 1),
    ] {
        let mut r = sample_record(job, Trigger::Schedule, t0() + TimeDelta::seconds(secs));
        r.status = status;
        recs.push(r);
    }
    s.insert_executions(&recs, None).await.unwrap();
    for (statuses, want) in [
        (vec![TaskStatus::Failed], vec!["list-0"]),
        (
            vec![TaskStatus::Succeeded, TaskStatus::Failed],
            vec!["list-0", "list-1"],
        ),
        (vec![TaskStatus::Running], vec![]),
    ] {
        let q = JobQuery {
            last_status: statuses.clone(),
            ..JobQuery::default()
        };
        let page = s.list_jobs(&q).await.unwrap();
        let ids: Vec<_> = page.items.iter().map(|j| j.job_id.to_string()).collect();
        assert_eq!(
            (ids, page.total),
            (
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                want.len() as u64
            ),
            "last run {statuses:?}"
        );
    }
    let q = JobQuery {
        order: crate::model::JobOrder::Name,
        descending: true,
        ..JobQuery::default()
    };
    let page = s.list_jobs(&q).await.unwrap();
    let ids: Vec<_> = page.items.iter().map(|j| j.job_id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "list-5", "list-3", "list-1", "list-6", "list-4", "list-2", "list-0"
        ],
        "by name, descending"
    );
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
