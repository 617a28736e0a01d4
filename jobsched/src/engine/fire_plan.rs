//! Fire planning, free of engine state: which fires a due job time produces under the misfire policy,
//! how a fire relates to the job's runs (overlap policy), and how job changes read from storage apply.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{Job, MisfirePolicy, Trigger};
use crate::schedule::Schedule;

/// At most this many missed fire times are walked through when catching up one job.
const MAX_MISSED_SCAN: usize = 100_000;

/// The fires to record for a job whose fire at `at` is being handled at `now`, and the time from which its
/// next fire is computed.
///
/// A fire up to `threshold` late fires normally. A later one is a misfire: every fire due by `now` is then
/// handled together by the policy: `skip` records none, `fire_once` records the latest of them, `fire_all`
/// records each (the latest `max` of them).
pub(crate) fn fire_times(
    schedule: &Schedule,
    policy: MisfirePolicy,
    max: u32,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    threshold: TimeDelta,
) -> (Vec<(DateTime<Utc>, Trigger)>, DateTime<Utc>) {
    if now - at <= threshold {
        return (vec![(at, Trigger::Schedule)], at);
    }
    let keep = max.max(1) as usize;
    let mut due: VecDeque<DateTime<Utc>> = VecDeque::from([at]);
    let mut t = at;
    for _ in 0..MAX_MISSED_SCAN {
        match schedule.next_after(t) {
            Some(n) if n <= now => {
                due.push_back(n);
                if due.len() > keep {
                    due.pop_front();
                }
                t = n;
            }
            _ => break,
        }
    }
    let fires = match policy {
        MisfirePolicy::Skip => Vec::new(),
        MisfirePolicy::FireOnce => vec![(*due.back().expect("at least `at`"), Trigger::Misfire)],
        MisfirePolicy::FireAll => due.into_iter().map(|t| (t, Trigger::Misfire)).collect(),
    };
    (fires, now)
}

/// How a planned fire relates to the job's runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Overlap {
    Run,
    Skip,
    Hold,
    Replace,
}

/// How job changes read from storage are applied.
#[derive(Clone, Copy, Debug)]
pub(crate) enum JobLoad {
    /// Loading everything at takeover; fires missed since the watermark are due now.
    Initial(Option<DateTime<Utc>>),
    /// Following changes made since.
    Incremental,
}

pub(crate) fn same_schedule(a: &Job, b: &Job) -> bool {
    a.schedule_type == b.schedule_type
        && a.cron_expression == b.cron_expression
        && a.interval == b.interval
        && a.start_time == b.start_time
        && a.time_zone == b.time_zone
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobSpec;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn every_second() -> Schedule {
        JobSpec::cron("x", "* * * * * *", "true")
            .build(t("2026-01-01T00:00:00Z"))
            .unwrap()
            .schedule()
            .unwrap()
    }

    #[test]
    fn a_fire_within_the_threshold_is_not_a_misfire() {
        let (fires, base) = fire_times(
            &every_second(),
            MisfirePolicy::Skip,
            10,
            t("2026-01-01T00:00:10Z"),
            t("2026-01-01T00:00:14Z"),
            TimeDelta::seconds(5),
        );
        assert_eq!(fires, vec![(t("2026-01-01T00:00:10Z"), Trigger::Schedule)]);
        assert_eq!(base, t("2026-01-01T00:00:10Z"));
    }

    #[test]
    fn misfire_policies() {
        let run = |p, max| {
            fire_times(
                &every_second(),
                p,
                max,
                t("2026-01-01T00:00:10Z"),
                t("2026-01-01T00:01:00.500Z"),
                TimeDelta::seconds(5),
            )
        };
        let (fires, base) = run(MisfirePolicy::Skip, 100);
        assert!(fires.is_empty());
        assert_eq!(base, t("2026-01-01T00:01:00.500Z"));
        let (fires, _) = run(MisfirePolicy::FireOnce, 100);
        assert_eq!(fires, vec![(t("2026-01-01T00:01:00Z"), Trigger::Misfire)]);
        let (fires, _) = run(MisfirePolicy::FireAll, 100);
        assert_eq!(fires.len(), 51, "00:10 through 01:00");
        let (fires, _) = run(MisfirePolicy::FireAll, 3);
        assert_eq!(
            fires.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![
                t("2026-01-01T00:00:58Z"),
                t("2026-01-01T00:00:59Z"),
                t("2026-01-01T00:01:00Z")
            ]
        );
    }
}
