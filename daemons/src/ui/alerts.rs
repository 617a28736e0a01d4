//! `GET /system/alerts`: the alerts firing now, the rules, channels and silences, and the newest
//! notifications (administrators and read-only users); administrators edit the configuration there as
//! JSON (the same document as `PUT /api/alerts/config` and `jobsched alerts set`), checked by the server.

use askama::Template;
use axum::extract::{Extension, State};

use super::format;
use super::page::{Chrome, Html, PageResult};
use crate::alerts::model::{Condition, Target, Transition};
use crate::api::{Caller, SharedState};

struct FiringRow {
    rule: String,
    labels: String,
    summary: String,
    since: String,
    count: u64,
}

struct RuleRow {
    id: String,
    name: String,
    condition: String,
    channels: String,
    muted: bool,
}

struct EventRow {
    time: String,
    transition: &'static str,
    class: &'static str,
    rule: String,
    summary: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    firing: Vec<FiringRow>,
    rules: Vec<RuleRow>,
    channels: Vec<(String, String)>,
    silences: Vec<(String, String, String, String)>,
    events: Vec<EventRow>,
    version: u64,
    /// The configuration as JSON (secrets as `***`), for administrators to edit.
    document: String,
}

fn labels(l: &std::collections::BTreeMap<String, String>) -> String {
    l.iter()
        .filter(|(k, _)| *k != "rule")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn condition(c: &Condition) -> String {
    match c {
        Condition::TaskFailure {
            job_id,
            consecutive,
            retries_exhausted,
        } => format!(
            "task failure of {}{}{}",
            job_id
                .as_deref()
                .map_or("any job".to_owned(), |j| format!("job {j}")),
            if *consecutive > 1 {
                format!(", {consecutive} in a row")
            } else {
                String::new()
            },
            if *retries_exhausted {
                ", retries exhausted"
            } else {
                ""
            }
        ),
        Condition::Threshold {
            metric,
            job_id,
            op,
            value,
            window_secs,
        } => format!(
            "{metric:?}{} {op:?} {value} over {window_secs} s",
            job_id
                .as_deref()
                .map_or(String::new(), |j| format!(" of job {j}"))
        ),
        Condition::Exception { event, for_secs } => {
            format!("{} ({for_secs} s)", crate::alerts::eval::event_name(*event))
        }
    }
}

/// `GET /system/alerts`.
pub async fn page(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
) -> PageResult {
    let axum::Json(cfg) =
        crate::api::alerts::get_config(State(s.clone()), Extension(caller.clone())).await?;
    let axum::Json(firing) =
        crate::api::alerts::firing(State(s.clone()), Extension(caller.clone())).await?;
    let axum::Json(history) = crate::api::alerts::history(
        State(s.clone()),
        Extension(caller.clone()),
        crate::api::error::ApiQuery(crate::api::alerts::HistoryQuery {
            rule_id: None,
            limit: Some(50),
        }),
    )
    .await?;
    let c = crate::alerts::model::AlertsConfig {
        rules: cfg.rules,
        channels: cfg.channels,
        silences: cfg.silences,
    };
    let document = serde_json::to_string_pretty(&c).unwrap_or_default();
    Html::of(&AlertsPage {
        chrome: Chrome::new(&caller, "system", "Alerts"),
        firing: firing
            .items
            .into_iter()
            .map(|f| FiringRow {
                rule: f.rule_id,
                labels: labels(&f.labels),
                summary: f.summary,
                since: format::time(f.since),
                count: f.count,
            })
            .collect(),
        rules: c
            .rules
            .iter()
            .map(|r| RuleRow {
                id: r.id.clone(),
                name: r.name.clone(),
                condition: condition(&r.condition),
                channels: r.channels.join(", "),
                muted: r.muted,
            })
            .collect(),
        channels: c
            .channels
            .iter()
            .map(|ch| {
                let what = match &ch.target {
                    Target::Webhook { url, .. } => format!("webhook {url}"),
                    Target::Email { host, port, to, .. } => {
                        format!("email via {host}:{port} to {}", to.join(", "))
                    }
                };
                (ch.id.clone(), what)
            })
            .collect(),
        silences: c
            .silences
            .iter()
            .map(|si| {
                (
                    si.id.clone(),
                    labels(&si.matchers)
                        + &si
                            .matchers
                            .get("rule")
                            .map_or(String::new(), |r| format!(" rule={r}")),
                    format!("{} – {}", format::time(si.starts), format::time(si.ends)),
                    si.comment.clone(),
                )
            })
            .collect(),
        events: history
            .items
            .into_iter()
            .map(|e| EventRow {
                time: format::time(e.time),
                transition: match e.transition {
                    Transition::Firing => "firing",
                    Transition::Repeat => "repeat",
                    Transition::Resolved => "resolved",
                },
                class: match e.transition {
                    Transition::Resolved => "ok",
                    _ => "bad",
                },
                rule: e.rule_id,
                summary: e.summary,
                outcome: e.quiet.unwrap_or_else(|| {
                    if e.delivery.is_empty() {
                        "sending".to_owned()
                    } else {
                        e.delivery
                            .iter()
                            .map(|(ch, r)| format!("{ch}: {r}"))
                            .collect::<Vec<_>>()
                            .join("; ")
                    }
                }),
            })
            .collect(),
        version: cfg.version,
        document,
    })
}
