//! Rate limits: requests per user and per client address (`governor`'s keyed GCRA limiters), and failed
//! logins per user name and per address (a sliding window of the last failures). Each refusal is a 429
//! with `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::api::ApiError;

/// A refusal for going over a limit: a 429 that says when to come back.
#[derive(Debug)]
pub struct TooMany {
    /// When a new try may succeed.
    pub retry_after: Duration,
    /// Which limit.
    pub message: String,
}

fn too_many(retry_after: Duration, message: String) -> TooMany {
    TooMany {
        retry_after,
        message,
    }
}

impl IntoResponse for TooMany {
    fn into_response(self) -> Response {
        let secs = self.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let mut r = ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: format!("{}; retry in {secs} s", self.message),
        }
        .into_response();
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).expect("digits"),
        );
        r
    }
}

/// Requests a second (with a burst of twice as many) per key; `None` when the limit is off.
struct PerSecond<K: Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: Hash + Eq + Clone> PerSecond<K> {
    fn new(per_sec: u32) -> Self {
        PerSecond(NonZeroU32::new(per_sec).map(|n| {
            let burst = n.saturating_mul(NonZeroU32::new(2).expect("2 > 0"));
            RateLimiter::keyed(Quota::per_second(n).allow_burst(burst))
        }))
    }

    /// How long to wait if `key` is over its limit.
    fn check(&self, key: &K) -> Option<Duration> {
        let limiter = self.0.as_ref()?;
        let denied = limiter.check_key(key).err()?;
        Some(denied.wait_time_from(DefaultClock::default().now()))
    }

    fn forget_idle(&self) {
        if let Some(l) = &self.0 {
            l.retain_recent();
        }
    }
}

/// The last failures per key within a window, at most `max` kept per key.
struct Failures<K: Hash + Eq> {
    max: usize,
    window: Duration,
    seen: Mutex<HashMap<K, VecDeque<Instant>>>,
}

impl<K: Hash + Eq> Failures<K> {
    /// At most `max` failures a minute per key (0: no limit).
    fn new(max: u32) -> Self {
        Failures {
            max: max as usize,
            window: Duration::from_secs(60),
            seen: Mutex::default(),
        }
    }

    /// How long until `key` may try again, if it has had `max` failures within the window.
    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        if self.max == 0 {
            return None;
        }
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let times = seen.get(key)?;
        let recent: Vec<&Instant> = times
            .iter()
            .filter(|t| now.duration_since(**t) < self.window)
            .collect();
        (recent.len() >= self.max).then(|| self.window - now.duration_since(*recent[0]))
    }

    fn record(&self, key: K, now: Instant) {
        if self.max == 0 {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded memory: keys whose failures are all older than the window are dropped when the map grows.
        if seen.len() > 100_000 {
            let window = self.window;
            seen.retain(|_, v| v.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let times = seen.entry(key).or_default();
        times.push_back(now);
        while times.len() > self.max {
            times.pop_front();
        }
    }
}

/// Every limit of one server.
pub struct Limits {
    per_user: PerSecond<String>,
    per_client: PerSecond<IpAddr>,
    login_by_name: Failures<String>,
    login_by_client: Failures<IpAddr>,
}

impl Limits {
    /// Limits of `per_user` and `per_client` requests a second (0: none) and `login_failures` failed
    /// logins a minute per user name and per address (0: none).
    pub fn new(per_user: u32, per_client: u32, login_failures: u32) -> Limits {
        Limits {
            per_user: PerSecond::new(per_user),
            per_client: PerSecond::new(per_client),
            login_by_name: Failures::new(login_failures),
            login_by_client: Failures::new(login_failures),
        }
    }

    /// A 429 if the client address is over its request rate.
    pub fn client(&self, addr: IpAddr) -> Result<(), TooMany> {
        match self.per_client.check(&addr) {
            Some(wait) => Err(too_many(wait, format!("too many requests from {addr}"))),
            None => Ok(()),
        }
    }

    /// A 429 if the user is over their request rate.
    pub fn user(&self, user_id: &str, name: &str) -> Result<(), TooMany> {
        match self.per_user.check(&user_id.to_owned()) {
            Some(wait) => Err(too_many(
                wait,
                format!("too many requests by user '{name}'"),
            )),
            None => Ok(()),
        }
    }

    /// A 429 if the name or the address has failed to log in too often within the last minute.
    pub fn login_allowed(&self, name: &str, addr: IpAddr) -> Result<(), TooMany> {
        let now = Instant::now();
        if let Some(wait) = self.login_by_name.blocked(&name.to_owned(), now) {
            return Err(too_many(
                wait,
                format!("too many failed logins for user '{name}'"),
            ));
        }
        if let Some(wait) = self.login_by_client.blocked(&addr, now) {
            return Err(too_many(
                wait,
                format!("too many failed logins from {addr}"),
            ));
        }
        Ok(())
    }

    /// Counts a failed login.
    pub fn login_failed(&self, name: &str, addr: IpAddr) {
        let now = Instant::now();
        self.login_by_name.record(name.to_owned(), now);
        self.login_by_client.record(addr, now);
    }

    /// Drops the state of keys that have been idle (called now and then).
    pub fn forget_idle(&self) {
        self.per_user.forget_idle();
        self.per_client.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_logins_block_a_name_and_an_address_for_the_window() {
        let l = Limits::new(0, 0, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.login_allowed("alice", a).is_ok());
            l.login_failed("alice", a);
        }
        let r = l.login_allowed("alice", b).unwrap_err().into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        assert!(
            l.login_allowed("bob", a).is_err(),
            "the address is blocked too"
        );
        assert!(l.login_allowed("bob", b).is_ok());
    }

    #[test]
    fn requests_over_the_rate_are_refused_per_key() {
        let l = Limits::new(1, 0, 0);
        assert!(l.user("u1", "alice").is_ok());
        assert!(l.user("u1", "alice").is_ok(), "a burst of two");
        assert!(l.user("u1", "alice").is_err());
        assert!(l.user("u2", "bob").is_ok());
        assert!(
            l.client("127.0.0.1".parse().unwrap()).is_ok(),
            "no limit set"
        );
    }
}
