//! Behaviours of the statistics a dashboard reads.

use chrono::TimeDelta;

use super::{dispatched, finish};
use crate::model::{OutcomeHour, TaskStatus, Trigger};
use crate::testing::{OpenStorage, sample_job, sample_record, t0};

/// Ended attempts are counted by the UTC hour of their end and their status, within `[from, to)` only;
/// attempts still active are not counted.
pub async fn outcomes_are_counted_by_hour_and_status(open: &dyn OpenStorage) {
    let s = open.open().await;
    let job = sample_job("stats-a");
    // Far from the times other behaviours use, so a shared store's other records stay outside.
    let base = t0() + TimeDelta::days(500);
    let ends = [
        (TimeDelta::minutes(5), TaskStatus::Succeeded),
        (TimeDelta::minutes(59), TaskStatus::Succeeded),
        (TimeDelta::minutes(30), TaskStatus::Failed),
        (TimeDelta::minutes(61), TaskStatus::TimedOut),
        (TimeDelta::minutes(125), TaskStatus::Succeeded),
        // Before the window, and at its end (excluded).
        (TimeDelta::minutes(-1), TaskStatus::Succeeded),
        (TimeDelta::hours(3), TaskStatus::Failed),
    ];
    let mut recs = Vec::new();
    for (i, _) in ends.iter().enumerate() {
        let at = base + TimeDelta::seconds(i as i64);
        recs.push(dispatched(
            sample_record(&job, Trigger::Schedule, at),
            "exec-stats",
        ));
    }
    // One more that stays running.
    recs.push(dispatched(
        sample_record(&job, Trigger::Schedule, base + TimeDelta::seconds(99)),
        "exec-stats",
    ));
    s.insert_executions(&recs, None).await.unwrap();
    let updates: Vec<_> = ends
        .iter()
        .zip(&recs)
        .map(|((end, status), rec)| {
            let mut u = finish(rec, "exec-stats", *status);
            u.start_time = Some(base + *end - TimeDelta::seconds(1));
            u.end_time = Some(base + *end);
            u
        })
        .collect();
    s.update_executions(&updates, None).await.unwrap();
    let got = s
        .outcome_hours(base, base + TimeDelta::hours(3))
        .await
        .unwrap();
    let h = |n: i64| base + TimeDelta::hours(n);
    let want = vec![
        OutcomeHour {
            hour: h(0),
            status: TaskStatus::Succeeded,
            count: 2,
        },
        OutcomeHour {
            hour: h(0),
            status: TaskStatus::Failed,
            count: 1,
        },
        OutcomeHour {
            hour: h(1),
            status: TaskStatus::TimedOut,
            count: 1,
        },
        OutcomeHour {
            hour: h(2),
            status: TaskStatus::Succeeded,
            count: 1,
        },
    ];
    assert_eq!(got, want);
}

/// The newest record of each job asked for is returned, once, and jobs without records are left out.
pub async fn latest_executions_are_the_newest_per_job(open: &dyn OpenStorage) {
    let s = open.open().await;
    let (a, b, c) = (
        sample_job("latest-a"),
        sample_job("latest-b"),
        sample_job("latest-c"),
    );
    let mut recs = Vec::new();
    for i in 0..3 {
        for job in [&a, &b] {
            recs.push(sample_record(
                job,
                Trigger::Schedule,
                t0() + TimeDelta::seconds(i),
            ));
        }
    }
    s.insert_executions(&recs, None).await.unwrap();
    let got = s
        .latest_executions(&[a.job_id.clone(), b.job_id.clone(), c.job_id.clone()])
        .await
        .unwrap();
    let mut got: Vec<_> = got
        .into_iter()
        .map(|r| (r.job_id.to_string(), r.scheduled_time))
        .collect();
    got.sort();
    let newest = t0() + TimeDelta::seconds(2);
    assert_eq!(
        got,
        vec![
            ("latest-a".to_owned(), newest),
            ("latest-b".to_owned(), newest)
        ]
    );
}
