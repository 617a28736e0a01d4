//! The evaluator's logic on its own: every rule kind's firing and resolving, grouping, repeats,
//! unknown measures, silences, and the seed after a takeover.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use jobsched::{ExecutionRecord, JobSpec, TaskId, TaskStatus, Trigger};
use serde_json::json;

use super::eval::{Evaluator, Inputs, transitions};
use super::model::{AlertEvent, AlertRule, AlertState, Silence, Transition};

fn t0() -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn rule(id: &str, condition: serde_json::Value) -> AlertRule {
    serde_json::from_value(json!({"id": id, "condition": condition, "channels": ["c"]})).unwrap()
}

fn run(
    job: &str,
    status: TaskStatus,
    at: DateTime<Utc>,
    lag_ms: i64,
    attempt: u32,
) -> ExecutionRecord {
    let j = JobSpec::manual(job, "true")
        .with_job_id(jobsched::JobId::new(job).unwrap())
        .with_retry(1, 0)
        .build(at)
        .unwrap();
    let scheduled = at - TimeDelta::milliseconds(lag_ms);
    let mut r = ExecutionRecord::first_attempt(
        &j,
        TaskId::generate(),
        Trigger::Schedule,
        scheduled,
        scheduled,
    );
    r.attempt = attempt;
    r.status = status;
    r.start_time = Some(at);
    r.end_time = Some(at);
    r
}

fn inputs(now: DateTime<Utc>) -> Inputs {
    Inputs {
        now,
        queue: Some(0),
        executors_online: Some(2),
        storage_ok: true,
        broker_ok: true,
        ..Inputs::default()
    }
}

/// Evaluates `rules` at `i` against `state`; the events.
fn step(
    e: &mut Evaluator,
    state: &mut AlertState,
    rules: &[AlertRule],
    i: &Inputs,
) -> Vec<AlertEvent> {
    step_silenced(e, state, rules, i, &[])
}

fn step_silenced(
    e: &mut Evaluator,
    state: &mut AlertState,
    rules: &[AlertRule],
    i: &Inputs,
    silences: &[Silence],
) -> Vec<AlertEvent> {
    let (active, unknown) = e.active(rules, i);
    transitions(state, active, &unknown, rules, silences, i.now)
}

fn kinds(events: &[AlertEvent]) -> Vec<(String, Transition)> {
    events
        .iter()
        .map(|e| (e.rule_id.clone(), e.transition))
        .collect()
}

#[test]
fn task_failures_group_by_job_count_consecutive_and_exhausted_and_resolve_on_success() {
    let rules = [
        rule("any", json!({"kind": "task_failure"})),
        rule("two", json!({"kind": "task_failure", "consecutive": 2})),
        rule(
            "final",
            json!({"kind": "task_failure", "retries_exhausted": true}),
        ),
    ];
    let (mut e, mut s) = (Evaluator::default(), AlertState::default());
    // Attempt 1 of a job with one retry fails: not exhausted.
    e.finished(&run("etl", TaskStatus::Failed, t0(), 0, 1), 3);
    let ev = step(&mut e, &mut s, &rules, &inputs(t0()));
    assert_eq!(kinds(&ev), [("any".to_owned(), Transition::Firing)]);
    // 500 more failures (attempt 2: exhausted) are still one alert per rule, counted.
    for _ in 0..500 {
        e.finished(&run("etl", TaskStatus::Failed, t0(), 0, 2), 3);
    }
    let ev = step(
        &mut e,
        &mut s,
        &rules,
        &inputs(t0() + TimeDelta::seconds(5)),
    );
    let mut k = kinds(&ev);
    k.sort();
    assert_eq!(
        k,
        [
            ("final".to_owned(), Transition::Firing),
            ("two".to_owned(), Transition::Firing)
        ]
    );
    assert!(
        s.firing
            .values()
            .all(|f| f.count == 501 && f.labels["job"] == "etl")
    );
    assert!(
        step(
            &mut e,
            &mut s,
            &rules,
            &inputs(t0() + TimeDelta::seconds(10))
        )
        .is_empty()
    );
    // A success resolves all three, once.
    e.finished(&run("etl", TaskStatus::Succeeded, t0(), 0, 1), 3);
    let ev = step(
        &mut e,
        &mut s,
        &rules,
        &inputs(t0() + TimeDelta::seconds(15)),
    );
    assert_eq!(ev.len(), 3);
    assert!(ev.iter().all(|e| e.transition == Transition::Resolved));
    assert!(s.firing.is_empty());
    assert_eq!(s.history.len(), 6);
    assert_eq!(s.next_id, 6);
}

#[test]
fn thresholds_judge_windows_and_levels_held_for_their_window() {
    let rules = [
        rule(
            "rate",
            json!({"kind": "threshold", "metric": "success_rate", "op": "below", "value": 80, "window_secs": 60}),
        ),
        rule(
            "lag",
            json!({"kind": "threshold", "metric": "fire_lag_p99", "op": "above", "value": 500, "window_secs": 60}),
        ),
        rule(
            "few",
            json!({"kind": "threshold", "metric": "executors_online", "op": "below", "value": 2, "window_secs": 30}),
        ),
    ];
    let (mut e, mut s) = (Evaluator::default(), AlertState::default());
    // No run yet: the rate and the lag are unknown, nothing fires.
    assert!(step(&mut e, &mut s, &rules, &inputs(t0())).is_empty());
    for i in 0..10 {
        let status = if i < 3 {
            TaskStatus::Failed
        } else {
            TaskStatus::Succeeded
        };
        e.finished(&run("j", status, t0(), if i == 9 { 900 } else { 10 }, 1), 3);
    }
    // 70 % < 80 %; p99 of the lags is 900 ms > 500.
    let ev = step(
        &mut e,
        &mut s,
        &rules,
        &inputs(t0() + TimeDelta::seconds(1)),
    );
    let mut k = kinds(&ev);
    k.sort();
    assert_eq!(
        k,
        [
            ("lag".to_owned(), Transition::Firing),
            ("rate".to_owned(), Transition::Firing)
        ]
    );
    // One executor online: it must hold for 30 s before firing.
    let mut i = inputs(t0() + TimeDelta::seconds(2));
    i.executors_online = Some(1);
    assert!(step(&mut e, &mut s, &rules, &i).is_empty());
    i.now = t0() + TimeDelta::seconds(33);
    assert_eq!(
        kinds(&step(&mut e, &mut s, &rules, &i)),
        [("few".to_owned(), Transition::Firing)]
    );
    // The window moves past the runs: the rate and lag are unknown again and stay firing; the
    // executors come back and `few` resolves.
    i.now = t0() + TimeDelta::seconds(120);
    i.executors_online = Some(3);
    assert_eq!(
        kinds(&step(&mut e, &mut s, &rules, &i)),
        [("few".to_owned(), Transition::Resolved)]
    );
    assert_eq!(s.firing.len(), 2);
    // Good runs bring the rate back; the lag too.
    for _ in 0..10 {
        e.finished(&run("j", TaskStatus::Succeeded, i.now, 5, 1), 3);
    }
    let ev = step(&mut e, &mut s, &rules, &i);
    assert!(
        ev.iter().all(|e| e.transition == Transition::Resolved) && ev.len() == 2,
        "{ev:?}"
    );
}

#[test]
fn exceptions_storage_broker_poison_and_lost_executors() {
    let rules = [
        rule(
            "db",
            json!({"kind": "exception", "event": "storage_unavailable", "for_secs": 10}),
        ),
        rule(
            "kafka",
            json!({"kind": "exception", "event": "broker_unavailable", "for_secs": 0}),
        ),
        rule(
            "poison",
            json!({"kind": "exception", "event": "poison_messages", "for_secs": 60}),
        ),
        rule(
            "lost",
            json!({"kind": "exception", "event": "executor_lost", "for_secs": 600}),
        ),
    ];
    let (mut e, mut s) = (Evaluator::default(), AlertState::default());
    let mut i = inputs(t0());
    i.poison = 7; // the baseline: counted before this leader evaluated
    i.executors = vec![
        ("e1".into(), true, t0()),
        ("e2".into(), false, t0() - TimeDelta::seconds(30)),
        ("retired".into(), false, t0() - TimeDelta::days(30)),
    ];
    i.storage_ok = false;
    i.broker_ok = false;
    let ev = step(&mut e, &mut s, &rules, &i);
    let mut k = kinds(&ev);
    k.sort();
    // The broker fires at once (for_secs 0); the store must be down for 10 s; e2 is lost, `retired`
    // was heard from too long ago to count.
    assert_eq!(
        k,
        [
            ("kafka".to_owned(), Transition::Firing),
            ("lost".to_owned(), Transition::Firing)
        ]
    );
    assert!(
        s.firing
            .values()
            .any(|f| f.labels.get("executor").map(String::as_str) == Some("e2"))
    );
    i.now = t0() + TimeDelta::seconds(11);
    i.poison = 9;
    let ev = step(&mut e, &mut s, &rules, &i);
    let mut k = kinds(&ev);
    k.sort();
    assert_eq!(
        k,
        [
            ("db".to_owned(), Transition::Firing),
            ("poison".to_owned(), Transition::Firing)
        ]
    );
    assert!(ev.iter().any(|e| e.summary.contains("2 poison")));
    // All well again: the store, the broker and e2 resolve; poison 60 s after the last one.
    i.now = t0() + TimeDelta::seconds(20);
    i.storage_ok = true;
    i.broker_ok = true;
    i.executors[1].1 = true;
    let mut k = kinds(&step(&mut e, &mut s, &rules, &i));
    k.sort();
    assert_eq!(k.len(), 3);
    i.now = t0() + TimeDelta::seconds(80);
    assert_eq!(
        kinds(&step(&mut e, &mut s, &rules, &i)),
        [("poison".to_owned(), Transition::Resolved)]
    );
}

#[test]
fn repeats_silences_mutes_deleted_rules_and_the_seed_after_a_takeover() {
    let mut rules = vec![
        serde_json::from_value::<AlertRule>(json!({"id": "fail",
        "condition": {"kind": "task_failure"}, "channels": ["c"], "repeat_interval_secs": 60}))
        .unwrap(),
    ];
    let (mut e, mut s) = (Evaluator::default(), AlertState::default());
    e.finished(&run("a", TaskStatus::Failed, t0(), 0, 2), 3);
    let silence = Silence {
        id: "quiet-a".into(),
        matchers: BTreeMap::from([("job".to_owned(), "a".to_owned())]),
        starts: t0() - TimeDelta::minutes(1),
        ends: t0() + TimeDelta::minutes(30),
        comment: String::new(),
    };
    let ev = step_silenced(
        &mut e,
        &mut s,
        &rules,
        &inputs(t0()),
        std::slice::from_ref(&silence),
    );
    assert_eq!(ev[0].quiet.as_deref(), Some("silenced by 'quiet-a'"));
    assert!(
        step(
            &mut e,
            &mut s,
            &rules,
            &inputs(t0() + TimeDelta::seconds(30))
        )
        .is_empty()
    );
    let ev = step_silenced(
        &mut e,
        &mut s,
        &rules,
        &inputs(t0() + TimeDelta::seconds(61)),
        std::slice::from_ref(&silence),
    );
    assert_eq!(kinds(&ev), [("fail".to_owned(), Transition::Repeat)]);
    assert_eq!(
        ev[0].quiet.as_deref(),
        Some("silenced by 'quiet-a'"),
        "repeats are silenced too"
    );
    // A new leader: its evaluator saw none of the runs; seeded from the state, the alert stays firing.
    let mut fresh = Evaluator::default();
    fresh.seed(&s, &rules);
    assert!(
        step(
            &mut fresh,
            &mut s,
            &rules,
            &inputs(t0() + TimeDelta::seconds(90))
        )
        .is_empty()
    );
    rules[0].muted = true;
    fresh.finished(&run("b", TaskStatus::Lost, t0(), 0, 1), 3);
    let ev = step(
        &mut fresh,
        &mut s,
        &rules,
        &inputs(t0() + TimeDelta::seconds(95)),
    );
    assert_eq!(ev[0].quiet.as_deref(), Some("rule muted"));
    // The rule is deleted: what it had firing resolves, quietly.
    let ev = step(
        &mut fresh,
        &mut s,
        &[],
        &inputs(t0() + TimeDelta::seconds(100)),
    );
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(
        |e| e.transition == Transition::Resolved && e.quiet.as_deref() == Some("rule deleted")
    ));
}
