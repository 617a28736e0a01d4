//! Wall-clock time, injectable so that timing tests run on tokio's paused clock.
//!
//! The engine and the executor runtime read the time from a [`Clock`] and wait with `tokio::time`. In
//! production that is [`SystemClock`]; tests use [`TokioClock`], whose wall time moves with tokio's clock,
//! so `tokio::time::pause()` and `advance()` drive cron fires, retries and timeouts without sleeping.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current UTC time (millisecond precision, like every stored time).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time, truncated to milliseconds.
    fn now(&self) -> DateTime<Utc>;
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        trunc_ms(Utc::now())
    }
}

/// A clock that starts at a chosen wall time and advances with `tokio::time::Instant`, so it follows
/// `tokio::time::pause()`/`advance()` in tests.
#[derive(Clone, Debug)]
pub struct TokioClock {
    base: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        TokioClock {
            base: trunc_ms(start),
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started.elapsed();
        trunc_ms(self.base + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX))
    }
}

/// Truncates a time to whole milliseconds (the precision stores keep).
pub fn trunc_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The `tokio::time::Instant` at which `clock` will read `at` (now, if `at` is not in the future).
pub(crate) fn instant_at(clock: &dyn Clock, at: DateTime<Utc>) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    match (at - clock.now()).to_std() {
        Ok(d) => now + d,
        Err(_) => now,
    }
}

/// Converts whole seconds to a `Duration`.
pub(crate) fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// Adds a std `Duration` to a time, saturating at the latest representable time.
pub(crate) fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let start: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        let clock = TokioClock::starting_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now(), start + TimeDelta::milliseconds(1500));
        let target = start + TimeDelta::seconds(10);
        let at = instant_at(&clock, target);
        tokio::time::sleep_until(at).await;
        assert_eq!(clock.now(), target);
    }

    #[test]
    fn adding_saturates_instead_of_panicking() {
        let t: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        assert_eq!(add(t, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(add(t, Duration::from_secs(1)), t + TimeDelta::seconds(1));
    }

    #[test]
    fn truncates_to_millis() {
        let t: DateTime<Utc> = "2026-03-01T00:00:00.123456789Z".parse().unwrap();
        assert_eq!(trunc_ms(t).to_rfc3339(), "2026-03-01T00:00:00.123+00:00");
    }
}
