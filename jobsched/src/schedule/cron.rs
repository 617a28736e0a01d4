//! Cron expressions: parsing (by `croner`) with errors that name the bad field, and a shared cache of
//! compiled expressions.
//!
//! Accepted forms: 5 fields (`minute hour day-of-month month day-of-week`, seconds = 0), 6 fields (seconds
//! first), 7 fields (seconds first, year last), and the nicknames `@yearly`, `@monthly`, `@weekly`, `@daily`,
//! `@hourly`. Day of week is POSIX: 0–7 with 0 and 7 Sunday, or `SUN`–`SAT`. Extensions: `L`, `W`, `#`, `?`.
//!
//! Time zones and daylight saving follow Vixie cron: a time that falls into a spring-forward gap fires once
//! at the first instant after the gap; in a fall-back overlap, an expression with fixed hours fires once (at
//! the first occurrence), one with a wildcard or stepped hour fires in both passes.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::error::{Error, Result};
use crate::model::limits;

const FIELD: &str = "cron_expression";

/// A compiled cron expression in a time zone.
pub struct CronSchedule {
    cron: Cron,
    expression: Box<str>,
    tz: Tz,
    /// The last two answers of [`next_after`](Self::next_after): the jobs sharing this schedule often
    /// ask with the same times (at a takeover, each job is checked from its last change and placed from
    /// the shared watermark), and a search costs microseconds.
    last: Mutex<Recent>,
}

/// The last two `(after, next)` answers, and which one to replace next.
type Recent = ([Option<(DateTime<Utc>, Option<DateTime<Utc>>)>; 2], usize);

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?} in {})", self.expression, self.tz)
    }
}

impl CronSchedule {
    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone it is read in.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The first fire strictly after `after`, or `None` if it never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let lock = || self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, next)) = lock().0.iter().flatten().find(|(at, _)| *at == after) {
            return *next;
        }
        let next = self
            .cron
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        let mut recent = lock();
        let slot = recent.1;
        recent.0[slot] = Some((after, next));
        recent.1 = 1 - slot;
        next
    }

    /// A human description ("At 02:30, on Monday").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Optional)
        .build()
}

/// The field names of each accepted form, with their ranges.
fn field_names(count: usize) -> &'static [(&'static str, &'static str)] {
    const FIVE: &[(&str, &str)] = &[
        ("minute", "0-59"),
        ("hour", "0-23"),
        ("day-of-month", "1-31, L, W"),
        ("month", "1-12 or JAN-DEC"),
        ("day-of-week", "0-7 or SUN-SAT, #, L"),
    ];
    const SIX: &[(&str, &str)] = &[
        ("second", "0-59"),
        ("minute", "0-59"),
        ("hour", "0-23"),
        ("day-of-month", "1-31, L, W"),
        ("month", "1-12 or JAN-DEC"),
        ("day-of-week", "0-7 or SUN-SAT, #, L"),
    ];
    const SEVEN: &[(&str, &str)] = &[
        ("second", "0-59"),
        ("minute", "0-59"),
        ("hour", "0-23"),
        ("day-of-month", "1-31, L, W"),
        ("month", "1-12 or JAN-DEC"),
        ("day-of-week", "0-7 or SUN-SAT, #, L"),
        ("year", "1-5000"),
    ];
    match count {
        5 => FIVE,
        6 => SIX,
        _ => SEVEN,
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Parses a cron expression; an error names the field (by position and name) and says why.
pub fn parse_cron(expression: &str) -> Result<Cron> {
    let expr = expression.trim();
    if expr.is_empty() {
        return Err(Error::invalid(FIELD, "must not be empty"));
    }
    if expr.len() > limits::CRON_BYTES {
        return Err(Error::invalid(
            FIELD,
            format!(
                "must be at most {} bytes, got {}",
                limits::CRON_BYTES,
                expr.len()
            ),
        ));
    }
    let p = parser();
    match p.parse(expr) {
        Ok(cron) => Ok(cron),
        Err(whole) => Err(diagnose(&p, expr, &whole.to_string())),
    }
}

/// Finds which field makes `expr` invalid by parsing each field alone (the others set to `*`).
fn diagnose(p: &CronParser, expr: &str, whole: &str) -> Error {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if expr.starts_with('@') {
        return Error::invalid(
            FIELD,
            format!(
                "'{expr}' is not a known nickname (@yearly, @annually, @monthly, @weekly, @daily, @hourly)"
            ),
        );
    }
    if !(5..=7).contains(&fields.len()) {
        return Error::invalid(
            FIELD,
            format!(
                "'{expr}' has {} fields; expected 5 (minute hour day-of-month month day-of-week), 6 (with \
                 seconds first) or 7 (with seconds first and year last)",
                fields.len()
            ),
        );
    }
    let names = field_names(fields.len());
    for (i, field) in fields.iter().enumerate() {
        let probe: Vec<&str> = (0..fields.len())
            .map(|j| if i == j { *field } else { "*" })
            .collect();
        if let Err(e) = p.parse(&probe.join(" ")) {
            let (name, range) = names[i];
            let why = match e {
                croner::errors::CronError::ComponentError(m)
                | croner::errors::CronError::IllegalCharacters(m)
                | croner::errors::CronError::InvalidPattern(m) => {
                    lower_first(m.trim_end_matches('.'))
                }
                other => lower_first(&other.to_string()),
            };
            return Error::invalid(
                FIELD,
                format!(
                    "'{expr}': field {} ({name}) '{field}' is invalid: {why} (allowed: {range})",
                    i + 1
                ),
            );
        }
    }
    Error::invalid(
        FIELD,
        format!("'{expr}' is invalid: {}", lower_first(whole)),
    )
}

type CacheMap = HashMap<(Box<str>, Tz), Weak<CronSchedule>>;

struct Cache {
    map: CacheMap,
    inserts_since_sweep: usize,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| {
        Mutex::new(Cache {
            map: HashMap::new(),
            inserts_since_sweep: 0,
        })
    })
}

/// Compiles `expression` in `tz`, sharing one compiled copy among all jobs with the same expression and
/// zone (a compiled expression is ~1 KiB and takes ~15 µs to parse; a million jobs usually share a few
/// hundred expressions).
pub fn compile(expression: &str, tz: Tz) -> Result<Arc<CronSchedule>> {
    let key = (Box::<str>::from(expression.trim()), tz);
    {
        let c = cache().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = c.map.get(&key).and_then(Weak::upgrade) {
            return Ok(hit);
        }
    }
    let cron = parse_cron(expression)?;
    let compiled = Arc::new(CronSchedule {
        cron,
        expression: key.0.clone(),
        tz,
        last: Mutex::new(([None, None], 0)),
    });
    let mut c = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(hit) = c.map.get(&key).and_then(Weak::upgrade) {
        return Ok(hit);
    }
    c.map.insert(key, Arc::downgrade(&compiled));
    c.inserts_since_sweep += 1;
    if c.inserts_since_sweep > 1024 && c.inserts_since_sweep > c.map.len() / 2 {
        c.map.retain(|_, w| w.strong_count() > 0);
        c.inserts_since_sweep = 0;
    }
    Ok(compiled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(expr: &str) -> String {
        parse_cron(expr).unwrap_err().to_string()
    }

    #[test]
    fn accepts_five_six_seven_fields_and_nicknames() {
        for e in [
            "* * * * *",
            "*/5 * * * * *",
            "0 0 12 * * MON-FRI 2030",
            "@daily",
            "0 0 L * *",
        ] {
            parse_cron(e).unwrap_or_else(|x| panic!("{e}: {x}"));
        }
    }

    #[test]
    fn errors_name_the_field_and_position() {
        let e = err("0 61 * * * *");
        assert!(
            e.contains("field 2 (minute) '61'") && e.contains("0-59"),
            "{e}"
        );
        let e = err("0 0 * * 8");
        assert!(e.contains("field 5 (day-of-week) '8'"), "{e}");
        let e = err("*/0 * * * *");
        assert!(
            e.contains("field 1 (minute)") && e.contains("step cannot be zero"),
            "{e}"
        );
        let e = err("* * * *");
        assert!(e.contains("has 4 fields"), "{e}");
        let e = err("0 0 0 1 FOO *");
        assert!(e.contains("field 5 (month) 'FOO'"), "{e}");
        let e = err("@sometimes");
        assert!(e.contains("nickname"), "{e}");
        assert!(err("").contains("empty"));
        assert!(e.starts_with("invalid cron_expression"), "{e}");
    }

    #[test]
    fn the_remembered_answer_is_only_reused_for_the_same_time() {
        let c = compile("0 30 2 * * *", Tz::Europe__Berlin).unwrap();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let (a, b) = (t("2026-03-01T00:00:00Z"), t("2026-03-29T01:00:00Z"));
        let first = c.next_after(a);
        assert_eq!(first, Some(t("2026-03-01T01:30:00Z")));
        assert_eq!(c.next_after(a), first);
        // 29 March 2026: Berlin skips 02:00–03:00, so the next 02:30 is on the 30th (00:30 UTC).
        assert_eq!(c.next_after(b), Some(t("2026-03-30T00:30:00Z")));
        assert_eq!(c.next_after(a), first);
        let d = t("2026-06-01T12:00:00Z");
        assert_eq!(c.next_after(d), Some(t("2026-06-02T00:30:00Z")));
        assert_eq!(c.next_after(b), Some(t("2026-03-30T00:30:00Z")));
        assert_eq!(c.next_after(a), first);
    }

    #[test]
    fn compiled_schedules_are_shared() {
        let a = compile("0 0 3 * * *", Tz::UTC).unwrap();
        let b = compile("0 0 3 * * *", Tz::UTC).unwrap();
        let c = compile("0 0 3 * * *", Tz::Europe__Berlin).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
