//! How values are shown: times (in UTC, turned into the viewer's zone by the page's script, with UTC on
//! hover), durations, statuses, and query strings.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use jobsched::TaskStatus;

/// A `<time>` element for `t`: UTC text that the page's script shows in the viewer's zone, with the UTC
/// time as its title. Built from a timestamp only, so it needs no escaping.
pub fn time(t: DateTime<Utc>) -> String {
    let utc = t.format("%Y-%m-%d %H:%M:%S UTC");
    format!(
        "<time datetime=\"{}\" title=\"{utc}\">{utc}</time>",
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// [`time`] of an optional time, or a dash.
pub fn maybe_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "—".to_owned(), time)
}

/// A duration in words a person reads at a glance: `850 ms`, `12.3 s`, `4 m 05 s`, `2 h 03 m`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} m {:02} s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{} h {:02} m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

/// How long an attempt ran (or has run, till `now`), if it started.
pub fn run_time(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    match start {
        Some(s) => duration_ms((end.unwrap_or(now) - s).num_milliseconds()),
        None => "—".to_owned(),
    }
}

/// The badge class of a status: what colour it is shown in.
pub fn status_class(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Succeeded => "ok",
        TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Lost => "bad",
        TaskStatus::Running | TaskStatus::Dispatched => "run",
        TaskStatus::Queued => "wait",
        TaskStatus::Cancelled | TaskStatus::Skipped => "off",
        // A status added later: shown plain until it has a colour.
        _ => "off",
    }
}

/// True while an attempt may still change (it can be cancelled).
pub fn is_active(s: TaskStatus) -> bool {
    !s.is_terminal()
}

/// `s` trimmed, or `None` when that is empty (an unset form or query field).
pub fn nonempty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// A param's value as shown: a string as it is, anything else as JSON.
pub fn param_text(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// Params as `(name, shown value)` rows.
pub fn params(p: &jobsched::Params) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.clone(), param_text(v))).collect()
}

/// Labels as `k=v` joined by `sep`.
pub fn labels(l: &std::collections::BTreeMap<String, String>, sep: &str) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// Percent-encodes `s` for a query string value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A query string of the non-empty `pairs` (`?a=1&b=2`), or nothing.
pub fn query(pairs: &[(&str, String)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Links to the pages around `page` of `pages` (first, previous, next, last), keeping `base` (a query
/// string without `page`, possibly empty).
#[derive(Clone, Debug)]
pub struct Pager {
    /// This page.
    pub page: u32,
    /// How many pages there are.
    pub pages: u32,
    /// How many items there are.
    pub total: u64,
    /// The link of the previous page, if any.
    pub prev: Option<String>,
    /// The link of the next page, if any.
    pub next: Option<String>,
}

impl Pager {
    /// The pager of page `page` (of `page_size` items) of `total`, linking `path` with `pairs`.
    pub fn new(
        path: &str,
        pairs: &[(&str, String)],
        page: u32,
        page_size: u32,
        total: u64,
    ) -> Pager {
        // No link past the deepest page a store serves.
        let pages = (total
            .div_ceil(u64::from(page_size.max(1)))
            .min(u64::from(jobsched::MAX_PAGE)) as u32)
            .max(1);
        let link = |p: u32| {
            let mut all = pairs.to_vec();
            all.push(("page", p.to_string()));
            format!("{path}{}", query(&all))
        };
        Pager {
            page,
            pages,
            total,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_340), "12.3 s");
        assert_eq!(duration_ms(245_000), "4 m 05 s");
        assert_eq!(duration_ms(7_380_000), "2 h 03 m");
    }

    #[test]
    fn query_values_are_encoded_and_empty_ones_left_out() {
        let q = query(&[("name", "a b&c".to_owned()), ("owner", String::new())]);
        assert_eq!(q, "?name=a%20b%26c");
        let p = Pager::new("/jobs", &[("name", "x".to_owned())], 2, 50, 120);
        assert_eq!(p.pages, 3);
        assert_eq!(p.prev.as_deref(), Some("/jobs?name=x&page=1"));
        assert_eq!(p.next.as_deref(), Some("/jobs?name=x&page=3"));
    }
}
