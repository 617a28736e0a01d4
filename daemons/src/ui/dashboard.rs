//! `GET /`: the dashboard — schedulers, executors, running and queued tasks, outcomes over the last
//! hour, day and week (a chart), recent failures and the next fires. It refreshes itself.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Extension, State};
use chrono::{DateTime, TimeDelta, Utc};
use jobsched::{ExecutionQuery, ExecutorStatus, OutcomeHour, PageRequest, TaskStatus, hour_of};

use super::chart::{self, Bar, Span};
use super::format;
use super::page::{Chrome, Html, PageResult};
use crate::api::{Caller, SharedState};

/// How long the counts of the current and the previous hour are reused (older hours do not change:
/// attempts are recorded with the time they ended, which is now).
const RECENT_TTL: Duration = Duration::from_secs(5);

/// Outcome counts by hour, kept between requests.
#[derive(Default)]
struct HourCache {
    /// Hours before the previous one, read once.
    closed: BTreeMap<DateTime<Utc>, Vec<OutcomeHour>>,
    /// Through which hour (exclusive) `closed` is complete.
    closed_until: Option<DateTime<Utc>>,
    /// The previous and current hour, and when they were read.
    recent: Option<(Instant, DateTime<Utc>, Vec<OutcomeHour>)>,
}

/// What the UI keeps between requests.
#[derive(Default)]
pub struct UiState {
    hours: tokio::sync::Mutex<HourCache>,
}

impl std::fmt::Debug for UiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiState").finish_non_exhaustive()
    }
}

impl UiState {
    /// The outcome counts of the last week, by hour. Hours before the previous one are read once and
    /// kept (a daemon reads a week of history on its first dashboard, or at start with
    /// [`warm`](Self::warm)); the previous and current hour at most every [`RECENT_TTL`].
    ///
    /// A request never waits for the week's read: while one is under way (the daemon's start), it gets
    /// the last two hours alone and `false` (the page says the week is still being counted).
    async fn week(
        &self,
        s: &SharedState,
        now: DateTime<Utc>,
    ) -> jobsched::Result<(Vec<OutcomeHour>, bool)> {
        let store = s.scheduler.storage();
        let recent_from = hour_of(now) - TimeDelta::hours(1);
        let Ok(c) = self.hours.try_lock() else {
            let recent = store
                .outcome_hours(recent_from, now + TimeDelta::hours(1))
                .await?;
            return Ok((recent, false));
        };
        self.fill(s, c, now).await.map(|v| (v, true))
    }

    /// Completes the cache held in `c` and returns the week's counts.
    async fn fill(
        &self,
        s: &SharedState,
        mut c: tokio::sync::MutexGuard<'_, HourCache>,
        now: DateTime<Utc>,
    ) -> jobsched::Result<Vec<OutcomeHour>> {
        let store = s.scheduler.storage();
        let from = hour_of(now) - TimeDelta::days(7);
        let recent_from = hour_of(now) - TimeDelta::hours(1);
        let missing_from = c.closed_until.filter(|u| *u > from).unwrap_or(from);
        if missing_from < recent_from {
            for h in store.outcome_hours(missing_from, recent_from).await? {
                c.closed.entry(h.hour).or_default().push(h);
            }
            c.closed_until = Some(recent_from);
        }
        c.closed = c.closed.split_off(&from);
        let stale = c
            .recent
            .as_ref()
            .is_none_or(|(at, start, _)| at.elapsed() >= RECENT_TTL || *start != recent_from);
        if stale {
            let v = store
                .outcome_hours(recent_from, now + TimeDelta::hours(1))
                .await?;
            c.recent = Some((Instant::now(), recent_from, v));
        }
        let mut out: Vec<OutcomeHour> = c.closed.values().flatten().cloned().collect();
        out.extend(c.recent.as_ref().map(|r| r.2.clone()).unwrap_or_default());
        Ok(out)
    }

    /// Reads the week's counts now, so the first dashboard does not wait for them.
    pub async fn warm(s: SharedState) {
        let c = s.ui.hours.lock().await;
        if let Err(e) = s.ui.fill(&s, c, Utc::now()).await {
            tracing::warn!(error = %e, "reading the outcome counts for the dashboard failed");
        }
    }
}

/// Counts of one window.
struct Window {
    name: &'static str,
    ok: u64,
    bad: u64,
    off: u64,
}

impl Window {
    fn rate(&self) -> String {
        if self.ok + self.bad == 0 {
            "—".to_owned()
        } else {
            format!(
                "{:.1} %",
                self.ok as f64 * 100.0 / (self.ok + self.bad) as f64
            )
        }
    }
}

struct Failure {
    task_id: String,
    job_id: String,
    status: &'static str,
    status_class: &'static str,
    ended: String,
    error: String,
}

struct Next {
    job_id: String,
    name: String,
    at: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    status: jobsched::SystemStatus,
    online: usize,
    offline: usize,
    disabled: usize,
    windows: Vec<Window>,
    day_chart: String,
    week_chart: String,
    failures: Vec<Failure>,
    upcoming: Option<Vec<Next>>,
    /// False while the daemon is still counting the week's history (the charts show the last hours).
    complete: bool,
}

fn group(status: TaskStatus) -> usize {
    match format::status_class(status) {
        "ok" => 0,
        "bad" => 1,
        _ => 2,
    }
}

/// Bars of `span` from `from`, `n` of them, from hourly counts.
fn bars(hours: &[OutcomeHour], from: DateTime<Utc>, n: usize, span: Span) -> Vec<Bar> {
    let width = match span {
        Span::Hour => TimeDelta::hours(1),
        Span::Day => TimeDelta::days(1),
    };
    let mut out: Vec<Bar> = (0..n)
        .map(|i| Bar {
            at: from + width * i as i32,
            ok: 0,
            bad: 0,
            off: 0,
        })
        .collect();
    for h in hours {
        if h.hour < from {
            continue;
        }
        let i = ((h.hour - from).num_seconds() / width.num_seconds()) as usize;
        if let Some(b) = out.get_mut(i) {
            match group(h.status) {
                0 => b.ok += h.count,
                1 => b.bad += h.count,
                _ => b.off += h.count,
            }
        }
    }
    out
}

fn window(name: &'static str, bars: &[Bar]) -> Window {
    Window {
        name,
        ok: bars.iter().map(|b| b.ok).sum(),
        bad: bars.iter().map(|b| b.bad).sum(),
        off: bars.iter().map(|b| b.off).sum(),
    }
}

/// The latest failures the caller may see.
async fn failures(s: &SharedState, caller: &Caller) -> jobsched::Result<Vec<Failure>> {
    let q = ExecutionQuery {
        statuses: vec![TaskStatus::Failed, TaskStatus::TimedOut, TaskStatus::Lost],
        page: PageRequest::new(
            1,
            if caller.owner_scope().is_some() {
                50
            } else {
                8
            },
        )?,
        ..ExecutionQuery::default()
    };
    let mut recs = s.scheduler.history(&q).await?.items;
    if let Some(owner) = caller.owner_scope() {
        let ids: Vec<_> = recs
            .iter()
            .map(|r| r.job_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mine: BTreeSet<_> = s
            .scheduler
            .storage()
            .get_jobs(&ids)
            .await?
            .into_iter()
            .filter(|j| j.owner == owner)
            .map(|j| (j.job_id, j.create_time))
            .collect();
        recs.retain(|r| {
            mine.iter()
                .any(|(id, created)| *id == r.job_id && r.create_time >= *created)
        });
    }
    Ok(recs
        .into_iter()
        .take(8)
        .map(|r| Failure {
            task_id: r.task_id.to_string(),
            job_id: r.job_id.to_string(),
            status: r.status.as_str(),
            status_class: format::status_class(r.status),
            ended: format::maybe_time(r.end_time),
            error: r
                .error
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(160)
                .collect(),
        })
        .collect())
}

/// `GET /`.
pub async fn page(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
) -> PageResult {
    let now = Utc::now();
    let status = s.scheduler.status().await?;
    let executors = s.scheduler.executors().await?;
    let (hours, complete) = s.ui.week(&s, now).await?;
    let day_from = hour_of(now) - TimeDelta::hours(23);
    let day = bars(&hours, day_from, 24, Span::Hour);
    let week_from = day_from - TimeDelta::days(6);
    let week = bars(&hours, week_from, 7 * 24, Span::Hour);
    let week_days: Vec<Bar> = week
        .chunks(24)
        .map(|c| Bar {
            at: c[0].at,
            ok: c.iter().map(|b| b.ok).sum(),
            bad: c.iter().map(|b| b.bad).sum(),
            off: c.iter().map(|b| b.off).sum(),
        })
        .collect();
    let last_hour = Window {
        name: "Last hour",
        ok: status.last_hour.succeeded,
        bad: status.last_hour.failed,
        off: status.last_hour.cancelled,
    };
    let upcoming = s
        .scheduler
        .upcoming(8, caller.owner_scope())
        .await
        .map(|v| {
            v.into_iter()
                .map(|u| Next {
                    job_id: u.job_id.to_string(),
                    name: u.name,
                    at: format::time(u.at),
                })
                .collect()
        });
    let online = executors
        .iter()
        .filter(|e| e.status == ExecutorStatus::Online)
        .count();
    Html::of(&Dashboard {
        chrome: Chrome::new(&caller, "dashboard", "Dashboard"),
        online,
        offline: executors.len() - online,
        disabled: executors.iter().filter(|e| !e.enabled).count(),
        windows: vec![
            last_hour,
            window("Last 24 hours", &day),
            window("Last 7 days", &week),
        ],
        day_chart: chart::stacked_bars("Outcomes by hour, last 24 hours", &day, Span::Hour, 3),
        week_chart: chart::stacked_bars("Outcomes by day, last 7 days", &week_days, Span::Day, 1),
        failures: failures(&s, &caller).await?,
        upcoming,
        complete,
        status,
    })
}
