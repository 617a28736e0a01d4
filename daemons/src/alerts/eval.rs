//! The evaluator's logic, without I/O: what it learns from ended runs, which alerts hold at an instant,
//! and the transitions (firing, repeat, resolved) between what was firing and what holds now.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use jobsched::{ExecutionRecord, TaskStatus, Trigger};

use super::model::{
    AlertEvent, AlertRule, AlertState, Condition, ExceptionEvent, Firing, HISTORY, Metric, Op,
    Silence, Transition,
};

/// Ended runs kept for windows (the longest window is 7 days; the count bounds memory).
const MAX_RUNS: usize = 200_000;

/// What the system looks like at an evaluation.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Now.
    pub now: DateTime<Utc>,
    /// The queue length (`None`: unknown).
    pub queue: Option<u64>,
    /// Executors online (`None`: unknown).
    pub executors_online: Option<u64>,
    /// Every registered executor, whether it is online, and its last heartbeat.
    pub executors: Vec<(String, bool, DateTime<Utc>)>,
    /// The store answered.
    pub storage_ok: bool,
    /// The transport answered.
    pub broker_ok: bool,
    /// Poison messages this process counted so far.
    pub poison: u64,
}

/// An alert that holds now.
#[derive(Clone, Debug, PartialEq)]
pub struct Active {
    /// The rule.
    pub rule_id: String,
    /// `rule` and what the rule groups by.
    pub labels: BTreeMap<String, String>,
    /// What it is about.
    pub summary: String,
    /// Occurrences so far.
    pub count: u64,
}

#[derive(Clone, Debug)]
struct Run {
    at: DateTime<Utc>,
    job: String,
    /// `Some(true)` succeeded, `Some(false)` failed/timed out/lost, `None` cancelled or skipped.
    ok: Option<bool>,
    lag_ms: Option<f64>,
}

/// A job's failures since its last success (whatever the rules: a rule added later judges them too).
#[derive(Clone, Debug, Default)]
struct Failing {
    /// Failed attempts in a row.
    consecutive: u32,
    /// Of them, attempts with no retry left.
    exhausted: u32,
    count: u64,
    summary: String,
}

/// What the evaluator learned since this scheduler became the leader.
#[derive(Debug, Default)]
pub struct Evaluator {
    runs: VecDeque<Run>,
    /// Per job: failures since its last success.
    failing: HashMap<String, Failing>,
    /// When a held condition (per alert key) started to hold.
    since: HashMap<String, DateTime<Utc>>,
    /// One-shot events: when each last happened, how often, and what.
    occurred: HashMap<ExceptionEvent, (DateTime<Utc>, u64, String)>,
    last_poison: Option<u64>,
}

fn key(rule: &str, labels: &BTreeMap<String, String>) -> String {
    let mut k = rule.to_owned();
    for (n, v) in labels {
        if n != "rule" {
            k.push_str(&format!("|{n}={v}"));
        }
    }
    k
}

fn labels(rule: &str, more: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([("rule".to_owned(), rule.to_owned())]);
    for (n, v) in more {
        l.insert((*n).to_owned(), (*v).to_owned());
    }
    l
}

fn crosses(op: Op, measured: f64, bound: f64) -> bool {
    match op {
        Op::Below => measured < bound,
        Op::Above => measured > bound,
    }
}

fn failed(s: TaskStatus) -> bool {
    matches!(
        s,
        TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Lost
    )
}

impl Evaluator {
    /// Takes in an ended attempt (`max_failovers` of the central configuration tells whether a lost
    /// attempt has a retry left).
    pub fn finished(&mut self, rec: &ExecutionRecord, max_failovers: u32) {
        let at = rec.end_time.unwrap_or(rec.create_time);
        let ok = match rec.status {
            TaskStatus::Succeeded => Some(true),
            s if failed(s) => Some(false),
            _ => None,
        };
        let lag_ms = match (rec.start_time, rec.trigger, rec.attempt) {
            (Some(start), Trigger::Schedule, 1) => {
                Some((start - rec.scheduled_time).num_microseconds().unwrap_or(0) as f64 / 1e3)
            }
            _ => None,
        };
        self.runs.push_back(Run {
            at,
            job: rec.job_id.to_string(),
            ok,
            lag_ms,
        });
        while self.runs.len() > MAX_RUNS
            || self
                .runs
                .front()
                .is_some_and(|r| at - r.at > TimeDelta::days(7))
        {
            self.runs.pop_front();
        }
        let exhausted = match rec.status {
            TaskStatus::Lost => rec.attempt > rec.retry_count + max_failovers,
            _ => rec.attempt > rec.retry_count,
        };
        let job = rec.job_id.to_string();
        match ok {
            Some(true) => {
                self.failing.remove(&job);
            }
            Some(false) => {
                let f = self.failing.entry(job).or_default();
                f.consecutive += 1;
                f.exhausted += u32::from(exhausted);
                f.count += 1;
                let why = if rec.error.trim().is_empty() {
                    rec.exit_code
                        .map_or(String::new(), |c| format!(" (exit code {c})"))
                } else {
                    format!(
                        ": {}",
                        rec.error.trim().chars().take(200).collect::<String>()
                    )
                };
                f.summary = format!(
                    "job '{}' {} (attempt {}, task {}){why}",
                    rec.job_id, rec.status, rec.attempt, rec.task_id
                );
            }
            None => {}
        }
    }

    /// Records a one-shot event (a failover) at `at`.
    pub fn occurred(&mut self, event: ExceptionEvent, at: DateTime<Utc>, summary: String) {
        let e = self.occurred.entry(event).or_insert((at, 0, String::new()));
        e.0 = at;
        e.1 += 1;
        e.2 = summary;
    }

    /// After a takeover: task failures and lost executors the previous leader had firing stay firing
    /// until this one sees them end (it did not see the runs that started them).
    pub fn seed(&mut self, state: &AlertState, rules: &[AlertRule]) {
        for f in state.firing.values() {
            let Some(rule) = rules.iter().find(|r| r.id == f.rule_id) else {
                continue;
            };
            if let Condition::TaskFailure { consecutive, .. } = &rule.condition
                && let Some(job) = f.labels.get("job")
            {
                let e = self.failing.entry(job.clone()).or_default();
                e.consecutive = e.consecutive.max(*consecutive);
                e.exhausted = e.exhausted.max(*consecutive);
                e.count = e.count.max(f.count);
                e.summary.clone_from(&f.summary);
            }
        }
    }

    /// Whether a level has held for `window` (per alert key), given whether it holds now.
    fn held(&mut self, key: &str, holds: bool, now: DateTime<Utc>, window: u64) -> bool {
        if !holds {
            self.since.remove(key);
            return false;
        }
        let since = *self.since.entry(key.to_owned()).or_insert(now);
        now - since >= TimeDelta::seconds(window as i64)
    }

    /// The alerts that hold now, and the rules that cannot be judged now (no data: what they have
    /// firing stays as it is).
    pub fn active(
        &mut self,
        rules: &[AlertRule],
        i: &Inputs,
    ) -> (BTreeMap<String, Active>, HashSet<String>) {
        let mut out = BTreeMap::new();
        let mut unknown = HashSet::new();
        let poison_delta = match self.last_poison.replace(i.poison) {
            Some(before) => i.poison.saturating_sub(before),
            None => 0,
        };
        if poison_delta > 0 {
            let n = self
                .occurred
                .get(&ExceptionEvent::PoisonMessages)
                .map_or(0, |e| e.1);
            self.occurred.insert(
                ExceptionEvent::PoisonMessages,
                (
                    i.now,
                    n + poison_delta,
                    format!("{poison_delta} poison message(s) skipped since the last evaluation"),
                ),
            );
        }
        let mut put = |rule: &str, l: BTreeMap<String, String>, summary: String, count: u64| {
            out.insert(
                key(rule, &l),
                Active {
                    rule_id: rule.to_owned(),
                    labels: l,
                    summary,
                    count,
                },
            );
        };
        for r in rules {
            match &r.condition {
                Condition::TaskFailure {
                    job_id,
                    consecutive,
                    retries_exhausted,
                } => {
                    for (job, f) in &self.failing {
                        let n = if *retries_exhausted {
                            f.exhausted
                        } else {
                            f.consecutive
                        };
                        if job_id.as_ref().is_none_or(|j| j == job) && n >= *consecutive {
                            put(
                                &r.id,
                                labels(&r.id, &[("job", job)]),
                                f.summary.clone(),
                                f.count,
                            );
                        }
                    }
                }
                Condition::Threshold {
                    metric,
                    job_id,
                    op,
                    value,
                    window_secs,
                } => {
                    let l = match job_id {
                        Some(j) => labels(&r.id, &[("job", j)]),
                        None => labels(&r.id, &[]),
                    };
                    let k = key(&r.id, &l);
                    let from = i.now - TimeDelta::seconds(*window_secs as i64);
                    let recent = self
                        .runs
                        .iter()
                        .rev()
                        .take_while(|run| run.at >= from)
                        .filter(|run| job_id.as_deref().is_none_or(|j| j == run.job));
                    let measured = match metric {
                        Metric::SuccessRate => {
                            let (mut ok, mut all) = (0u64, 0u64);
                            for run in recent {
                                if let Some(s) = run.ok {
                                    all += 1;
                                    ok += u64::from(s);
                                }
                            }
                            (all > 0).then(|| (ok as f64 * 100.0 / all as f64, all))
                        }
                        Metric::FireLagP99 => {
                            let mut lags: Vec<f64> = recent.filter_map(|run| run.lag_ms).collect();
                            lags.sort_by(f64::total_cmp);
                            (!lags.is_empty()).then(|| {
                                let idx = ((lags.len() as f64 - 1.0) * 0.99).round() as usize;
                                (lags[idx], lags.len() as u64)
                            })
                        }
                        Metric::QueueLength => i.queue.map(|q| (q as f64, 0)),
                        Metric::ExecutorsOnline => i.executors_online.map(|n| (n as f64, 0)),
                    };
                    let Some((m, n)) = measured else {
                        unknown.insert(r.id.clone());
                        continue;
                    };
                    let holds = crosses(*op, m, *value);
                    let fire = match metric {
                        Metric::SuccessRate | Metric::FireLagP99 => holds,
                        _ => self.held(&k, holds, i.now, *window_secs),
                    };
                    if fire {
                        let what = match metric {
                            Metric::SuccessRate => format!("success rate {m:.1}% over {n} runs"),
                            Metric::FireLagP99 => format!("fire lag p99 {m:.0} ms over {n} fires"),
                            Metric::QueueLength => format!("queue length {m}"),
                            Metric::ExecutorsOnline => format!("{m} executors online"),
                        };
                        let bound = if *op == Op::Below { "below" } else { "above" };
                        put(
                            &r.id,
                            l,
                            format!("{what} is {bound} {value} (window {window_secs} s)"),
                            n.max(1),
                        );
                    }
                }
                Condition::Exception { event, for_secs } => match event {
                    ExceptionEvent::ExecutorLost => {
                        // Offline, and heard from within `for_secs`: an executor retired long ago
                        // does not stay an alert.
                        for (e, online, beat) in &i.executors {
                            if !online && i.now - *beat < TimeDelta::seconds(*for_secs as i64) {
                                put(
                                    &r.id,
                                    labels(&r.id, &[("executor", e)]),
                                    format!("executor '{e}' is offline"),
                                    1,
                                );
                            }
                        }
                    }
                    ExceptionEvent::StorageUnavailable | ExceptionEvent::BrokerUnavailable => {
                        let (down, what) = if *event == ExceptionEvent::StorageUnavailable {
                            (!i.storage_ok, "the store")
                        } else {
                            (!i.broker_ok, "the task transport")
                        };
                        let l = labels(&r.id, &[("event", event_name(*event))]);
                        if self.held(&key(&r.id, &l), down, i.now, *for_secs) {
                            put(
                                &r.id,
                                l,
                                format!("{what} has not answered for at least {for_secs} s"),
                                1,
                            );
                        }
                    }
                    ExceptionEvent::SchedulerFailover | ExceptionEvent::PoisonMessages => {
                        if let Some((at, n, summary)) = self.occurred.get(event)
                            && i.now - *at < TimeDelta::seconds(*for_secs as i64)
                        {
                            put(
                                &r.id,
                                labels(&r.id, &[("event", event_name(*event))]),
                                summary.clone(),
                                *n,
                            );
                        }
                    }
                },
            }
        }
        (out, unknown)
    }
}

/// The name of an exception event, as its label shows it.
pub fn event_name(e: ExceptionEvent) -> &'static str {
    match e {
        ExceptionEvent::ExecutorLost => "executor_lost",
        ExceptionEvent::SchedulerFailover => "scheduler_failover",
        ExceptionEvent::StorageUnavailable => "storage_unavailable",
        ExceptionEvent::BrokerUnavailable => "broker_unavailable",
        ExceptionEvent::PoisonMessages => "poison_messages",
    }
}

/// Why an alert of `rule` with `labels` notifies nobody, if so.
fn quiet(
    rule: Option<&AlertRule>,
    labels: &BTreeMap<String, String>,
    silences: &[Silence],
    now: DateTime<Utc>,
) -> Option<String> {
    let Some(rule) = rule else {
        return Some("rule deleted".to_owned());
    };
    if rule.muted {
        return Some("rule muted".to_owned());
    }
    if let Some(s) = silences.iter().find(|s| {
        s.starts <= now && now < s.ends && s.matchers.iter().all(|(k, v)| labels.get(k) == Some(v))
    }) {
        return Some(format!("silenced by '{}'", s.id));
    }
    if rule.channels.is_empty() {
        return Some("no channel".to_owned());
    }
    None
}

/// Moves `state` to what holds now; returns the events to record (and, unless quiet, to send).
pub fn transitions(
    state: &mut AlertState,
    active: BTreeMap<String, Active>,
    unknown: &HashSet<String>,
    rules: &[AlertRule],
    silences: &[Silence],
    now: DateTime<Utc>,
) -> Vec<AlertEvent> {
    let rule = |id: &str| rules.iter().find(|r| r.id == id);
    let mut events = Vec::new();
    let mut event = |state: &mut AlertState, t: Transition, f: &Firing| {
        let e = AlertEvent {
            id: state.next_id,
            time: now,
            transition: t,
            rule_id: f.rule_id.clone(),
            labels: f.labels.clone(),
            summary: f.summary.clone(),
            count: f.count,
            quiet: quiet(rule(&f.rule_id), &f.labels, silences, now),
            delivery: BTreeMap::new(),
        };
        state.next_id += 1;
        events.push(e);
    };
    let ended: Vec<String> = state
        .firing
        .iter()
        .filter(|(k, f)| {
            let kept = unknown.contains(&f.rule_id) && rule(&f.rule_id).is_some();
            !(active.contains_key(*k) || kept)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in ended {
        let f = state.firing.remove(&k).expect("listed above");
        event(state, Transition::Resolved, &f);
    }
    for (k, a) in active {
        match state.firing.get_mut(&k) {
            Some(f) => {
                f.count = f.count.max(a.count);
                f.summary = a.summary;
                let repeat = rule(&a.rule_id).map_or(0, |r| r.repeat_interval_secs);
                if repeat > 0 && now - f.notified >= TimeDelta::seconds(repeat as i64) {
                    f.notified = now;
                    let f = f.clone();
                    event(state, Transition::Repeat, &f);
                }
            }
            None => {
                let f = Firing {
                    rule_id: a.rule_id,
                    labels: a.labels,
                    since: now,
                    notified: now,
                    summary: a.summary,
                    count: a.count,
                };
                event(state, Transition::Firing, &f);
                state.firing.insert(k, f);
            }
        }
    }
    state.history.extend(events.iter().cloned());
    let excess = state.history.len().saturating_sub(HISTORY);
    state.history.drain(..excess);
    events
}
