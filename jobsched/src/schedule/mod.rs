//! Schedules: when a job fires. A [`Schedule`] is compiled from a job and answers "the next fire after t".

mod cron;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

pub use cron::CronSchedule;
pub(crate) use cron::compile;

use crate::clock::secs;
use crate::error::{Error, Result};
use crate::model::{Job, ScheduleType, limits};

/// A compiled schedule.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// By cron expression in a time zone.
    Cron(Arc<CronSchedule>),
    /// At `anchor + k × every`.
    FixedRate {
        /// The first fire.
        anchor: DateTime<Utc>,
        /// The period.
        every: Duration,
    },
    /// `every` after the previous run ended; the first at `first`.
    FixedDelay {
        /// The first fire.
        first: DateTime<Utc>,
        /// The delay after each run.
        every: Duration,
    },
    /// Once at `at`.
    Once {
        /// The fire time.
        at: DateTime<Utc>,
    },
    /// Never by itself.
    Manual,
}

fn interval(job: &Job) -> Result<Duration> {
    match job.interval {
        None => Err(Error::invalid(
            "interval",
            format!("is required for schedule_type '{}'", job.schedule_type),
        )),
        Some(0) => Err(Error::invalid("interval", "must be at least 1 second")),
        Some(i) if i > limits::MAX_SECONDS => Err(Error::invalid(
            "interval",
            format!(
                "must be at most {} seconds (30 days), got {i}",
                limits::MAX_SECONDS
            ),
        )),
        Some(i) => Ok(secs(i)),
    }
}

impl Schedule {
    /// Compiles the schedule of `job`; errors name the field (`cron_expression`, `interval`, `start_time`).
    pub fn from_job(job: &Job) -> Result<Schedule> {
        match job.schedule_type {
            ScheduleType::Cron => {
                let expr = job.cron_expression.as_deref().ok_or_else(|| {
                    Error::invalid("cron_expression", "is required for schedule_type 'cron'")
                })?;
                let compiled = compile(expr, job.time_zone)?;
                if compiled.next_after(job.update_time).is_none() {
                    return Err(Error::invalid(
                        "cron_expression",
                        format!(
                            "'{expr}' never fires after {}",
                            job.update_time.to_rfc3339()
                        ),
                    ));
                }
                Ok(Schedule::Cron(compiled))
            }
            ScheduleType::FixedRate => {
                let every = interval(job)?;
                let anchor = job
                    .start_time
                    .unwrap_or_else(|| crate::clock::add(job.create_time, every));
                Ok(Schedule::FixedRate { anchor, every })
            }
            ScheduleType::FixedDelay => {
                let every = interval(job)?;
                let first = job
                    .start_time
                    .unwrap_or_else(|| crate::clock::add(job.create_time, every));
                Ok(Schedule::FixedDelay { first, every })
            }
            ScheduleType::Once => {
                let at = job.start_time.ok_or_else(|| {
                    Error::invalid("start_time", "is required for schedule_type 'once'")
                })?;
                Ok(Schedule::Once { at })
            }
            ScheduleType::Manual => Ok(Schedule::Manual),
        }
    }

    /// The first fire strictly after `after`, or `None` if there is none. For fixed delay this assumes
    /// runs take no time (the engine schedules the real next fire when a run ends).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(c) => c.next_after(after),
            Schedule::FixedRate { anchor, every } => {
                if *anchor > after {
                    return Some(*anchor);
                }
                let every_ms = every.as_millis().max(1) as i64;
                let since = (after - *anchor).num_milliseconds();
                let k = since / every_ms + 1;
                Some(*anchor + TimeDelta::milliseconds(k.saturating_mul(every_ms)))
            }
            Schedule::FixedDelay { first, every } => {
                Some((*first).max(crate::clock::add(after, *every)))
            }
            Schedule::Once { at } => (*at > after).then_some(*at),
            Schedule::Manual => None,
        }
    }

    /// Up to `count` fires after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count.min(1000));
        let mut t = after;
        while out.len() < count {
            match self.next_after(t) {
                Some(n) => {
                    out.push(n);
                    t = n;
                }
                None => break,
            }
        }
        out
    }

    /// True for fixed delay: the next fire is set when a run ends, not from the previous fire.
    pub fn is_fixed_delay(&self) -> bool {
        matches!(self, Schedule::FixedDelay { .. })
    }

    /// The delay of a fixed-delay schedule.
    pub fn delay(&self) -> Option<Duration> {
        match self {
            Schedule::FixedDelay { every, .. } => Some(*every),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobSpec;
    use chrono_tz::Tz;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn cron(expr: &str, tz: &str) -> Schedule {
        JobSpec::cron("x", expr, "true")
            .with_time_zone(tz)
            .build(t("2024-01-01T00:00:00Z"))
            .unwrap()
            .schedule()
            .unwrap()
    }

    #[test]
    fn cron_with_seconds_and_five_field_form() {
        let s = cron("*/15 * * * * *", "UTC");
        assert_eq!(
            s.upcoming(t("2024-05-01T10:00:07Z"), 3),
            vec![
                t("2024-05-01T10:00:15Z"),
                t("2024-05-01T10:00:30Z"),
                t("2024-05-01T10:00:45Z")
            ]
        );
        let s = cron("30 9 * * 1", "UTC"); // Mondays 09:30, POSIX weekday 1 = Monday
        assert_eq!(
            s.next_after(t("2024-05-01T00:00:00Z")),
            Some(t("2024-05-06T09:30:00Z"))
        );
    }

    #[test]
    fn cron_in_a_time_zone() {
        let s = cron("0 0 9 * * *", "Asia/Tokyo");
        assert_eq!(
            s.next_after(t("2024-05-01T01:00:00Z")),
            Some(t("2024-05-02T00:00:00Z"))
        );
    }

    #[test]
    fn dst_gap_fires_once_right_after_the_gap() {
        // New York springs forward at 2024-03-10 02:00 local (07:00 UTC); 02:30 does not exist that day.
        let s = cron("0 30 2 * * *", "America/New_York");
        assert_eq!(
            s.upcoming(t("2024-03-09T12:00:00Z"), 2),
            vec![t("2024-03-10T07:00:00Z"), t("2024-03-11T06:30:00Z")]
        );
    }

    #[test]
    fn dst_overlap_fixed_time_once_interval_twice() {
        // New York falls back at 2024-11-03 02:00 EDT to 01:00 EST; 01:30 happens twice.
        let daily = cron("0 30 1 * * *", "America/New_York");
        assert_eq!(
            daily.upcoming(t("2024-11-02T12:00:00Z"), 2),
            vec![t("2024-11-03T05:30:00Z"), t("2024-11-04T06:30:00Z")]
        );
        let half_hourly = cron("0 */30 * * * *", "America/New_York");
        assert_eq!(
            half_hourly.upcoming(t("2024-11-03T04:50:00Z"), 4),
            vec![
                t("2024-11-03T05:00:00Z"),
                t("2024-11-03T05:30:00Z"),
                t("2024-11-03T06:00:00Z"),
                t("2024-11-03T06:30:00Z")
            ]
        );
    }

    #[test]
    fn fixed_rate_delay_once_manual() {
        let mut job = JobSpec::fixed_rate("r", 10, "true")
            .with_start_time(t("2024-01-01T00:00:05Z"))
            .build(t("2024-01-01T00:00:00Z"))
            .unwrap();
        let s = job.schedule().unwrap();
        assert_eq!(
            s.next_after(t("2024-01-01T00:00:00Z")),
            Some(t("2024-01-01T00:00:05Z"))
        );
        assert_eq!(
            s.next_after(t("2024-01-01T00:00:05Z")),
            Some(t("2024-01-01T00:00:15Z"))
        );
        assert_eq!(
            s.next_after(t("2024-01-01T00:01:00Z")),
            Some(t("2024-01-01T00:01:05Z"))
        );
        job.schedule_type = ScheduleType::FixedDelay;
        let s = job.schedule().unwrap();
        assert_eq!(
            s.next_after(t("2024-01-01T00:01:00Z")),
            Some(t("2024-01-01T00:01:10Z"))
        );
        assert_eq!(s.delay(), Some(Duration::from_secs(10)));
        job.schedule_type = ScheduleType::Once;
        let s = job.schedule().unwrap();
        assert_eq!(
            s.next_after(t("2024-01-01T00:00:00Z")),
            Some(t("2024-01-01T00:00:05Z"))
        );
        assert_eq!(s.next_after(t("2024-01-01T00:00:05Z")), None);
        job.schedule_type = ScheduleType::Manual;
        assert!(
            job.schedule()
                .unwrap()
                .upcoming(t("2024-01-01T00:00:00Z"), 3)
                .is_empty()
        );
    }

    #[test]
    fn invalid_schedules_name_the_field() {
        let e = JobSpec::fixed_rate("r", 0, "true")
            .build(Utc::now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("interval"), "{e}");
        let e = JobSpec {
            schedule_type: Some(ScheduleType::Once),
            ..JobSpec::manual("o", "true")
        }
        .build(Utc::now())
        .unwrap_err()
        .to_string();
        assert!(e.contains("start_time"), "{e}");
        let e = JobSpec::cron("c", "0 0 0 1 1 * 2020", "true")
            .build(Utc::now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("never fires"), "{e}");
        let _ = Tz::UTC;
    }
}
