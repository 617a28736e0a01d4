//! Alerts (`docs/OPERATIONS.md`, "Alerts"): rules kept in the store, evaluated by the active scheduler
//! only, notifying webhooks and email.
//!
//! Every scheduler process runs [`run`]; it evaluates only while its scheduler is the active one. Each
//! evaluation (every `interval`) computes which alerts hold, turns the difference with the stored state
//! into events (firing, repeat, resolved), and records them with a versioned write of the state *before*
//! sending: the write succeeds for one scheduler only, so a transition is sent once even if a deposed
//! leader evaluates it too. A takeover reads the state: what was sent is not sent again, and events
//! recorded but not delivered (the previous leader died in between) are delivered by the new leader,
//! with their ids, which receivers can use to drop a repeat.

pub mod config;
pub mod eval;
pub mod model;
pub mod notify;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use jobsched::{Event, Scheduler};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};

use eval::{Evaluator, Inputs};
use model::{AlertEvent, AlertsConfig, ExceptionEvent};

use crate::secrets::Keyring;

/// How often the active scheduler evaluates (`--alert-interval-ms` changes it; tests make it short).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Undelivered events a new leader still delivers (older ones are only kept in the history).
const REDELIVER_WITHIN: TimeDelta = TimeDelta::minutes(10);

/// What the evaluation loop needs.
pub struct Alerting {
    /// The scheduler (active or standby).
    pub scheduler: Scheduler,
    /// Opens channel secrets.
    pub keyring: Option<Arc<Keyring>>,
    /// Sends webhooks.
    pub http: reqwest::Client,
    /// Between evaluations.
    pub interval: Duration,
}

/// Runs until the scheduler's events end (it shut down).
pub async fn run(a: Arc<Alerting>) {
    let mut events = a.scheduler.subscribe();
    let mut tick = tokio::time::interval(a.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut eval = Evaluator::default();
    let mut leading: Option<u64> = None;
    let mut seeded = false;
    let mut max_failovers = 3;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(Event::Finished(rec)) => eval.finished(&rec, max_failovers),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    warn!(missed = n, "the alert evaluator fell behind the scheduler's events; counts may be low");
                }
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                // A new term (this process took over, or took over again): start again from the
                // store. What the evaluator learned is kept when this process had not been leading:
                // only the active engine emits runs, so those are this term's (they may have ended
                // before this tick noticed the term).
                let term = a.scheduler.leader_term();
                if term != leading {
                    if leading.is_some() {
                        eval = Evaluator::default();
                    }
                    leading = term;
                    seeded = false;
                }
                let Some(term) = term else { continue };
                let storage = a.scheduler.storage().clone();
                let config = match config::load(&storage).await {
                    Ok(c) => c.value,
                    Err(e) => {
                        debug!(error = %e, "alert configuration unreadable; next time");
                        continue;
                    }
                };
                if let Ok(c) = a.scheduler.config().await {
                    max_failovers = c.value.max_failovers;
                }
                if let Err(e) = evaluate(&a, &mut eval, &config, term, &mut seeded).await {
                    debug!(error = %e, "alert evaluation skipped");
                }
            }
        }
    }
}

/// One evaluation: inputs, transitions, the state written, then delivery.
async fn evaluate(
    a: &Arc<Alerting>,
    eval: &mut Evaluator,
    config: &AlertsConfig,
    term: u64,
    seeded: &mut bool,
) -> jobsched::Result<()> {
    let s = &a.scheduler;
    let storage = s.storage().clone();
    let now = Utc::now();
    let mut state = config::load_state(&storage).await?;
    // Nothing to judge and nothing to resolve: no call to any backend.
    if config.rules.is_empty() && state.value.firing.is_empty() {
        return Ok(());
    }
    let stats = s.engine_stats().await;
    let storage_ok = storage.ping().await.is_ok();
    let executors = s.executors().await.unwrap_or_default();
    let inputs = Inputs {
        now,
        queue: stats.as_ref().map(|st| st.ready),
        executors_online: stats.as_ref().map(|st| st.executors_online),
        executors: executors
            .iter()
            .map(|e| {
                (
                    e.executor_id.to_string(),
                    e.status == jobsched::ExecutorStatus::Online,
                    e.last_heartbeat_time,
                )
            })
            .collect(),
        storage_ok,
        broker_ok: s.dispatcher().ping().await.is_ok(),
        poison: s.dispatch_stats().poison,
    };
    let mut redeliver = Vec::new();
    if !*seeded {
        eval.seed(&state.value, &config.rules);
        if state.value.term != 0 && state.value.term != term {
            eval.occurred(
                ExceptionEvent::SchedulerFailover,
                now,
                format!(
                    "scheduler '{}' took over as the active scheduler (term {term}, after term {})",
                    s.status()
                        .await
                        .map_or_else(|_| "?".to_owned(), |st| st.scheduler_id),
                    state.value.term
                ),
            );
        }
        redeliver = state
            .value
            .history
            .iter()
            .filter(|e| {
                e.quiet.is_none() && e.delivery.is_empty() && now - e.time < REDELIVER_WITHIN
            })
            .cloned()
            .collect();
        *seeded = true;
    }
    let (active, unknown) = eval.active(&config.rules, &inputs);
    let before = state.value.clone();
    let mut events = eval::transitions(
        &mut state.value,
        active,
        &unknown,
        &config.rules,
        &config.silences,
        now,
    );
    state.value.term = term;
    if state.value != before {
        config::store_state(&storage, &state.value, state.version).await?;
    }
    if !redeliver.is_empty() {
        info!(
            events = redeliver.len(),
            "delivering alert events the previous leader recorded but did not deliver"
        );
        redeliver.append(&mut events);
        events = redeliver;
    }
    if events.iter().any(|e| e.quiet.is_none()) {
        tokio::spawn(deliver(a.clone(), config.clone(), events));
    }
    Ok(())
}

/// Sends each channel its events in one message, then records the outcome in the history.
async fn deliver(a: Arc<Alerting>, config: AlertsConfig, events: Vec<AlertEvent>) {
    let names = |id: &str| {
        config.rules.iter().find(|r| r.id == id).map_or_else(
            || id.to_owned(),
            |r| {
                if r.name.is_empty() {
                    r.id.clone()
                } else {
                    r.name.clone()
                }
            },
        )
    };
    let mut by_channel: BTreeMap<String, Vec<AlertEvent>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.quiet.is_none()) {
        let Some(rule) = config.rules.iter().find(|r| r.id == e.rule_id) else {
            continue;
        };
        for ch in &rule.channels {
            by_channel.entry(ch.clone()).or_default().push(e.clone());
        }
    }
    let mut results: BTreeMap<u64, BTreeMap<String, String>> = BTreeMap::new();
    for (ch, evs) in by_channel {
        let outcome = match config.channels.iter().find(|c| c.id == ch) {
            Some(channel) => {
                notify::send(&a.http, a.keyring.as_deref(), channel, &evs, &names).await
            }
            None => Err(format!("no channel '{ch}'")),
        };
        match &outcome {
            Ok(()) => info!(channel = %ch, events = evs.len(), "alert notification sent"),
            Err(e) => warn!(channel = %ch, error = %e, "alert notification failed"),
        }
        let text = outcome.err().unwrap_or_else(|| "ok".to_owned());
        for e in &evs {
            results
                .entry(e.id)
                .or_default()
                .insert(ch.clone(), text.clone());
        }
    }
    // Record the outcome; another writer may have moved the state on meanwhile: read and apply again.
    let storage = a.scheduler.storage().clone();
    for _ in 0..5 {
        let Ok(mut state) = config::load_state(&storage).await else {
            return;
        };
        for e in &mut state.value.history {
            if let Some(r) = results.get(&e.id) {
                e.delivery.extend(r.clone());
            }
        }
        match config::store_state(&storage, &state.value, state.version).await {
            Ok(_) => return,
            Err(jobsched::Error::Conflict { .. }) => continue,
            Err(e) => {
                warn!(error = %e, "recording alert deliveries failed");
                return;
            }
        }
    }
}
