//! Rate limits: requests per user and per client address (`governor`'s keyed GCRA limiters), and login
//! attempts per user name and per address (a sliding window). Each refusal is a 429 with `Retry-After`.
//!
//! A login attempt takes its place in the window *before* the password is checked and gives it back if
//! the password was right, so concurrent guesses cannot all slip through one check. An IPv6 client is
//! counted by its /64 (one host usually holds the whole prefix).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
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
    /// The first refusal of this key in the current window (later ones are not worth an audit entry
    /// each).
    pub first: bool,
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

/// The key of a client address: IPv4 as is, IPv6 by its /64.
pub fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
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

#[derive(Default)]
struct Window {
    /// Attempts within the window, oldest first.
    times: VecDeque<Instant>,
    /// Until when the current refusal has been reported.
    reported_until: Option<Instant>,
}

/// At most `max` attempts per key within a sliding window.
struct Attempts<K: Hash + Eq> {
    max: usize,
    window: Duration,
    seen: Mutex<HashMap<K, Window>>,
}

impl<K: Hash + Eq> Attempts<K> {
    /// At most `max` attempts a minute per key (0: no limit).
    fn new(max: u32) -> Self {
        Attempts {
            max: max as usize,
            window: Duration::from_secs(60),
            seen: Mutex::default(),
        }
    }

    /// Takes a place for an attempt of `key` at `now`, or says how long until one is free (and whether
    /// this is the first refusal of the window).
    fn reserve(&self, key: K, now: Instant) -> Result<(), (Duration, bool)> {
        if self.max == 0 {
            return Ok(());
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded memory: keys idle for a whole window are dropped when the map grows.
        if seen.len() > 100_000 {
            let window = self.window;
            seen.retain(|_, w| {
                w.times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let w = seen.entry(key).or_default();
        while w
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            w.times.pop_front();
        }
        if w.times.len() >= self.max {
            let oldest = *w.times.front().expect("at least max > 0 entries");
            let until = oldest + self.window;
            let first = w.reported_until.is_none_or(|r| r < until);
            w.reported_until = Some(until);
            return Err((until - now, first));
        }
        w.times.push_back(now);
        Ok(())
    }

    /// Gives back the place taken at `at` (the attempt succeeded).
    fn release(&self, key: &K, at: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = seen.get_mut(key)
            && let Some(i) = w.times.iter().rposition(|t| *t == at)
        {
            w.times.remove(i);
        }
    }
}

/// A login attempt's places in the windows, given back with [`Limits::login_succeeded`].
#[derive(Debug)]
pub struct LoginAttempt {
    name: String,
    addr: IpAddr,
    at: Instant,
}

/// Every limit of one server.
pub struct Limits {
    per_user: PerSecond<String>,
    per_client: PerSecond<IpAddr>,
    login_by_name: Attempts<String>,
    login_by_client: Attempts<IpAddr>,
}

impl Limits {
    /// Limits of `per_user` and `per_client` requests a second (0: none) and `login_failures` failed
    /// logins a minute per user name and per address (0: none).
    pub fn new(per_user: u32, per_client: u32, login_failures: u32) -> Limits {
        Limits {
            per_user: PerSecond::new(per_user),
            per_client: PerSecond::new(per_client),
            login_by_name: Attempts::new(login_failures),
            login_by_client: Attempts::new(login_failures),
        }
    }

    /// A 429 if the client address is over its request rate.
    pub fn client(&self, addr: IpAddr) -> Result<(), TooMany> {
        match self.per_client.check(&client_key(addr)) {
            Some(wait) => Err(TooMany {
                retry_after: wait,
                message: format!("too many requests from {addr}"),
                first: true,
            }),
            None => Ok(()),
        }
    }

    /// A 429 if the user is over their request rate.
    pub fn user(&self, user_id: &str, name: &str) -> Result<(), TooMany> {
        match self.per_user.check(&user_id.to_owned()) {
            Some(wait) => Err(TooMany {
                retry_after: wait,
                message: format!("too many requests by user '{name}'"),
                first: true,
            }),
            None => Ok(()),
        }
    }

    /// Takes a place for a password check of `name` from `addr`, or a 429 if the name or the address has
    /// tried too often within the last minute. Give the place back with [`Limits::login_succeeded`] when
    /// the password was right; a wrong one keeps it (it counts as a failure).
    pub fn login_attempt(&self, name: &str, addr: IpAddr) -> Result<LoginAttempt, TooMany> {
        let now = Instant::now();
        let key = client_key(addr);
        if let Err((wait, first)) = self.login_by_name.reserve(name.to_owned(), now) {
            return Err(TooMany {
                retry_after: wait,
                message: format!("too many failed logins for user '{name}'"),
                first,
            });
        }
        if let Err((wait, first)) = self.login_by_client.reserve(key, now) {
            self.login_by_name.release(&name.to_owned(), now);
            return Err(TooMany {
                retry_after: wait,
                message: format!("too many failed logins from {addr}"),
                first,
            });
        }
        Ok(LoginAttempt {
            name: name.to_owned(),
            addr: key,
            at: now,
        })
    }

    /// The attempt's password was right: its places are given back.
    pub fn login_succeeded(&self, attempt: LoginAttempt) {
        self.login_by_name.release(&attempt.name, attempt.at);
        self.login_by_client.release(&attempt.addr, attempt.at);
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
        // Successes give their place back.
        for _ in 0..5 {
            l.login_succeeded(l.login_attempt("alice", a).unwrap());
        }
        for _ in 0..3 {
            let _failed = l.login_attempt("alice", a).unwrap();
        }
        let r = l.login_attempt("alice", b).unwrap_err();
        assert!(r.first, "the first refusal of the window is reported");
        assert!(
            !l.login_attempt("alice", b).unwrap_err().first,
            "later ones are not"
        );
        let r = r.into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        assert!(
            l.login_attempt("bob", a).is_err(),
            "the address is blocked too"
        );
        assert!(l.login_attempt("bob", b).is_ok());
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_prefix() {
        let l = Limits::new(0, 0, 2);
        for host in ["2001:db8::1", "2001:db8::2"] {
            let _failed = l.login_attempt(host, host.parse().unwrap()).unwrap();
        }
        assert!(
            l.login_attempt("other", "2001:db8::ffff".parse().unwrap())
                .is_err(),
            "the same /64"
        );
        assert!(
            l.login_attempt("other", "2001:db8:1::1".parse().unwrap())
                .is_ok()
        );
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
