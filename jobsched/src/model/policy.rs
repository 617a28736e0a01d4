//! Per-job policies: how a job is scheduled, routed, retried, and what happens on misfires and overlaps.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every variant.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used in the API and the stores.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the name returned by `as_str`.
            pub fn parse(s: &str) -> crate::Result<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    crate::Error::invalid(
                        stringify!($name),
                        format!(
                            "unknown value '{s}'; expected one of {}",
                            Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// How a job's fire times are produced.
    ScheduleType {
        /// By `cron_expression` (5 fields, or 6 with seconds, or 7 with seconds and year) in `time_zone`.
        #[default]
        Cron => "cron",
        /// Every `interval` seconds from `start_time` (or from creation), regardless of run time.
        FixedRate => "fixed_rate",
        /// `interval` seconds after the previous fire's last attempt ended.
        FixedDelay => "fixed_delay",
        /// Once, at `start_time`.
        Once => "once",
        /// Never by itself: only when executed on request.
        Manual => "manual",
    }
);

named_enum!(
    /// How the scheduler picks an executor among the eligible ones (online, enabled, matching the job's
    /// selector and handler type, with free capacity).
    RoutingStrategy {
        /// Each eligible executor in turn.
        #[default]
        RoundRobin => "round_robin",
        /// A random eligible executor.
        Random => "random",
        /// The executor with the lowest share of its capacity in use.
        LeastLoaded => "least_loaded",
        /// The same executor for the same job while the executor set is unchanged (rendezvous hashing on
        /// `job_id`); when it is full, the next one in the job's hash order.
        ConsistentHash => "consistent_hash",
        /// The first eligible executor in `executor_id` order; the next one only when it is unavailable.
        Failover => "failover",
    }
);

named_enum!(
    /// What to do with fires that were due while the scheduler was down or stalled (later than the
    /// misfire threshold).
    MisfirePolicy {
        /// Drop the missed fires; continue with the next regular one.
        Skip => "skip",
        /// Fire once now for all of the missed fires, then continue regularly.
        #[default]
        FireOnce => "fire_once",
        /// Fire every missed fire (up to `misfire_max_fires`, the most recent ones), then continue.
        FireAll => "fire_all",
    }
);

named_enum!(
    /// What to do when a job fires while an earlier task of it is still queued or running.
    OverlapPolicy {
        /// Run both.
        #[default]
        Allow => "allow",
        /// Record the new fire as `skipped`.
        Skip => "skip",
        /// Hold the new fire until the running one ends, then start it.
        Queue => "queue",
        /// Cancel the running one and start the new one.
        Replace => "replace",
    }
);

named_enum!(
    /// How the wait between retries grows.
    RetryBackoff {
        /// Always `retry_interval` seconds.
        #[default]
        Fixed => "fixed",
        /// `retry_interval × 2^(n-1)`, capped at `retry_max_interval` (or, when that is 0,
        /// [`RetryBackoff::DEFAULT_CAP_SECS`]).
        Exponential => "exponential",
        /// Exponential, then a random point in the upper half of it (spreads retries of many tasks).
        ExponentialJitter => "exponential_jitter",
    }
);

impl RetryBackoff {
    /// The cap of an exponential backoff whose job sets no `retry_max_interval` (one day), or its
    /// `retry_interval` if that is longer.
    pub const DEFAULT_CAP_SECS: u32 = 86_400;

    /// The wait before retry number `retry` (1 for the first retry).
    pub fn delay(self, interval_secs: u32, max_interval_secs: u32, retry: u32) -> Duration {
        let base = Duration::from_secs(u64::from(interval_secs));
        let cap = if max_interval_secs == 0 {
            Duration::from_secs(u64::from(Self::DEFAULT_CAP_SECS)).max(base)
        } else {
            Duration::from_secs(u64::from(max_interval_secs)).max(base)
        };
        match self {
            RetryBackoff::Fixed => base,
            RetryBackoff::Exponential | RetryBackoff::ExponentialJitter => {
                let factor = 1u32
                    .checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u32::MAX);
                let grown = base.checked_mul(factor).unwrap_or(cap).min(cap);
                if self == RetryBackoff::ExponentialJitter && !grown.is_zero() {
                    let half = grown / 2;
                    half + Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64))
                } else {
                    grown
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in RoutingStrategy::ALL {
            assert_eq!(RoutingStrategy::parse(v.as_str()).unwrap(), *v);
            assert_eq!(
                serde_json::to_string(v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
        let e = OverlapPolicy::parse("sometimes").unwrap_err().to_string();
        assert!(e.contains("allow, skip, queue, replace"), "{e}");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let d = |b: RetryBackoff, n| b.delay(2, 10, n).as_secs();
        assert_eq!(d(RetryBackoff::Fixed, 5), 2);
        assert_eq!(d(RetryBackoff::Exponential, 1), 2);
        assert_eq!(d(RetryBackoff::Exponential, 2), 4);
        assert_eq!(d(RetryBackoff::Exponential, 3), 8);
        assert_eq!(d(RetryBackoff::Exponential, 4), 10);
        assert_eq!(d(RetryBackoff::Exponential, 60), 10);
        for n in 1..10 {
            let j = RetryBackoff::ExponentialJitter.delay(2, 10, n);
            let full = RetryBackoff::Exponential.delay(2, 10, n);
            assert!(j >= full / 2 && j <= full, "{j:?} vs {full:?}");
        }
    }

    #[test]
    fn an_uncapped_exponential_backoff_stops_at_one_day() {
        let day = u64::from(RetryBackoff::DEFAULT_CAP_SECS);
        assert_eq!(RetryBackoff::Exponential.delay(1, 0, 17).as_secs(), 65_536);
        assert_eq!(RetryBackoff::Exponential.delay(1, 0, 18).as_secs(), day);
        assert_eq!(RetryBackoff::Exponential.delay(1, 0, 32).as_secs(), day);
        assert_eq!(
            RetryBackoff::Exponential.delay(60, 0, u32::MAX).as_secs(),
            day
        );
        // A fixed interval longer than the default cap is its own cap.
        assert_eq!(
            RetryBackoff::Exponential.delay(172_800, 0, 3).as_secs(),
            172_800
        );
        assert!(RetryBackoff::ExponentialJitter.delay(1, 0, 40).as_secs() <= day);
    }
}
