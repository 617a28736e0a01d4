//! Retention: the system's purge spares jobs with their own retention, which purge by age and by count.

use chrono::TimeDelta;

use super::{dispatched, finish};
use crate::error::Error;
use crate::model::{ExecutionRecord, Job, TaskStatus, Trigger};
use crate::storage::Storage;
use crate::testing::{OpenStorage, sample_job, sample_record, t0};

/// Inserts `n` ended records of `job`, the i-th ended `i` days after `t0`, and one still queued.
async fn history(s: &dyn Storage, job: &Job, n: i64) -> (Vec<ExecutionRecord>, ExecutionRecord) {
    let recs: Vec<_> = (0..n)
        .map(|_| dispatched(sample_record(job, Trigger::Manual, t0()), "exec-r"))
        .collect();
    let queued = sample_record(job, Trigger::Manual, t0());
    let mut all = recs.clone();
    all.push(queued.clone());
    s.insert_executions(&all, None).await.unwrap();
    let updates: Vec<_> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut u = finish(r, "exec-r", TaskStatus::Succeeded);
            u.end_time = Some(t0() + TimeDelta::days(i as i64));
            u
        })
        .collect();
    s.update_executions(&updates, None).await.unwrap();
    (recs, queued)
}

async fn kept(s: &dyn Storage, recs: &[ExecutionRecord]) -> Vec<bool> {
    let mut out = Vec::new();
    for r in recs {
        match s.get_execution(&r.task_id, 1).await {
            Ok(_) => out.push(true),
            Err(Error::NotFound { .. }) => out.push(false),
            Err(e) => panic!("reading {}: {e}", r.task_id),
        }
    }
    out
}

/// The system's purge deletes old records of jobs without their own `retention_days` only; a job's
/// own purge deletes by age and beyond its newest `keep`, in batches of at most `limit`, and never a
/// record that has not ended.
pub async fn jobs_keep_history_by_their_own_retention(open: &dyn OpenStorage) {
    let s = open.open().await;
    let plain = sample_job("ret-plain");
    let mut own = sample_job("ret-own");
    own.retention_days = 90;
    let mut counted = sample_job("ret-count");
    counted.retention_runs = 2;
    s.create_jobs(&[plain.clone(), own.clone(), counted.clone()])
        .await
        .unwrap();
    let (p, p_queued) = history(s.as_ref(), &plain, 3).await;
    let (o, _) = history(s.as_ref(), &own, 3).await;
    let (c, c_queued) = history(s.as_ref(), &counted, 5).await;

    // The system's retention: records that ended before day 2 go, except those of `ret-own`.
    let cutoff = t0() + TimeDelta::days(2);
    let n = s.purge_executions(cutoff, 1000).await.unwrap();
    assert!(n >= 4, "two of ret-plain and two of ret-count, got {n}");
    assert_eq!(kept(s.as_ref(), &p).await, [false, false, true]);
    assert_eq!(kept(s.as_ref(), &o).await, [true, true, true]);
    assert_eq!(kept(s.as_ref(), &c).await, [false, false, true, true, true]);

    // A job's own retention by age.
    let n = s
        .purge_job_executions(&own.job_id, Some(t0() + TimeDelta::hours(36)), 0, 1000)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(kept(s.as_ref(), &o).await, [false, false, true]);

    // By count: the newest two ended ones stay; one call deletes at most `limit`.
    let n = s
        .purge_job_executions(&counted.job_id, None, 2, 1)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        kept(s.as_ref(), &c).await,
        [false, false, false, true, true]
    );
    let n = s
        .purge_job_executions(&counted.job_id, None, 2, 1000)
        .await
        .unwrap();
    assert_eq!(n, 0, "only the newest two are left");
    // Both limits apply (the older beyond the newest one, the newest by age); records not ended stay.
    let n = s
        .purge_job_executions(&counted.job_id, Some(t0() + TimeDelta::days(100)), 1, 1000)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        kept(s.as_ref(), &c).await,
        [false, false, false, false, false]
    );
    assert!(s.get_execution(&c_queued.task_id, 1).await.is_ok());
    assert!(s.get_execution(&p_queued.task_id, 1).await.is_ok());
    // An unknown job has nothing to purge.
    let n = s
        .purge_job_executions(&sample_job("ret-none").job_id, None, 1, 1000)
        .await
        .unwrap();
    assert_eq!(n, 0);
}
