//! What an operator configures (rules, channels, silences: one versioned document in the store) and
//! what the evaluator keeps (alerts firing, the history of notifications).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most rules, channels and silences each.
pub const MAX_ITEMS: usize = 200;
/// Notifications kept in the history.
pub const HISTORY: usize = 1000;

/// The alerting configuration: every rule, channel and silence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The rules.
    #[serde(default)]
    pub rules: Vec<AlertRule>,
    /// Where notifications go.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Silences: matching alerts fire and resolve as usual but notify nobody.
    #[serde(default)]
    pub silences: Vec<Silence>,
}

/// One rule: a condition, the channels it notifies, how often it repeats while it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Its id (letters, digits, `-`, `_`; at most 64).
    pub id: String,
    /// What notifications call it.
    #[serde(default)]
    pub name: String,
    /// The condition.
    pub condition: Condition,
    /// Ids of the channels it notifies.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Seconds between repeated notifications while it holds (0: none).
    #[serde(default)]
    pub repeat_interval_secs: u64,
    /// A muted rule fires and resolves (shown, kept in the history) but notifies nobody.
    #[serde(default)]
    pub muted: bool,
}

/// What makes a rule fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// A job's run ended failed, timed out or lost (one alert per job; resolved by its next success).
    TaskFailure {
        /// Only this job (none: every job).
        #[serde(default)]
        job_id: Option<String>,
        /// Fire only after this many failed runs in a row (default 1).
        #[serde(default = "one")]
        consecutive: u32,
        /// Fire only when the run has no retry left.
        #[serde(default)]
        retries_exhausted: bool,
    },
    /// A measure over a window crosses a bound.
    Threshold {
        /// What is measured.
        metric: Metric,
        /// For `success_rate`: only this job (none: every job).
        #[serde(default)]
        job_id: Option<String>,
        /// Fires when the measure is `below` or `above` the bound.
        op: Op,
        /// The bound (a success rate in percent, a count, milliseconds of lag).
        value: f64,
        /// The window in seconds: a rate or percentile over it, or a level held for all of it.
        window_secs: u64,
    },
    /// Something went wrong in the system.
    Exception {
        /// What.
        event: ExceptionEvent,
        /// `storage_unavailable`, `broker_unavailable`: unavailable for this long before firing; the
        /// other events stay firing this long after they happened (default 600).
        #[serde(default = "ten_minutes")]
        for_secs: u64,
    },
}

fn one() -> u32 {
    1
}

fn ten_minutes() -> u64 {
    600
}

/// A measure of a threshold rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Percent of the runs ended in the window that succeeded (no run: no alert).
    SuccessRate,
    /// Attempts waiting for an executor, held for the whole window.
    QueueLength,
    /// The 99th percentile of fire lag (start − scheduled time) in the window, milliseconds.
    FireLagP99,
    /// Executors online, held for the whole window.
    ExecutorsOnline,
}

/// The direction of a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Fires below the bound.
    Below,
    /// Fires above the bound.
    Above,
}

/// An exception rule's event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionEvent {
    /// An executor went offline within `for_secs` (one alert per executor; resolved when it is back,
    /// or `for_secs` after its last heartbeat).
    ExecutorLost,
    /// Another scheduler took over (this one became the leader after another).
    SchedulerFailover,
    /// The store does not answer.
    StorageUnavailable,
    /// The task transport (Kafka) does not answer.
    BrokerUnavailable,
    /// Poison messages were skipped.
    PoisonMessages,
}

/// Where notifications go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Its id (what rules name).
    pub id: String,
    /// How.
    pub target: Target,
}

/// A channel's kind and settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A JSON POST; with a secret, `X-Jobsched-Signature: sha256=<hex HMAC of the body>`.
    Webhook {
        /// `http://` or `https://`.
        url: String,
        /// The HMAC key (stored sealed; answered as `***`; `***` on a change keeps the stored one).
        #[serde(default)]
        secret: Option<String>,
        /// Seconds per attempt (default 10).
        #[serde(default = "ten")]
        timeout_secs: u64,
        /// Attempts, with exponential backoff from 1 s (default 3).
        #[serde(default = "three")]
        max_attempts: u32,
    },
    /// Email over SMTP.
    Email {
        /// The SMTP server.
        host: String,
        /// Its port (default 587).
        #[serde(default = "submission")]
        port: u16,
        /// `starttls` (default), `tls` (implicit TLS, port 465) or `none` (a local relay only).
        #[serde(default)]
        security: SmtpSecurity,
        /// A PEM file of the certificate authority the server's certificate is checked against
        /// (default: the public web's roots).
        #[serde(default)]
        ca_cert: Option<String>,
        /// The login, if the server wants one.
        #[serde(default)]
        username: Option<String>,
        /// Its password (stored sealed; answered as `***`; `***` on a change keeps the stored one).
        #[serde(default)]
        password: Option<String>,
        /// The sender.
        from: String,
        /// The recipients.
        to: Vec<String>,
        /// Seconds per attempt (default 10).
        #[serde(default = "ten")]
        timeout_secs: u64,
    },
}

fn ten() -> u64 {
    10
}

fn three() -> u32 {
    3
}

fn submission() -> u16 {
    587
}

/// How an email channel talks to its server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte.
    Tls,
    /// No TLS: only for a relay on the same host.
    None,
}

/// Alerts that match stay quiet from `starts` to `ends`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// Labels an alert must all have: `rule`, `job`, `executor`, `event`.
    pub matchers: BTreeMap<String, String>,
    /// From.
    pub starts: DateTime<Utc>,
    /// Until.
    pub ends: DateTime<Utc>,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// An alert that is firing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Firing {
    /// The rule.
    pub rule_id: String,
    /// Its labels: `rule` and, as the rule groups, `job`, `executor` or `event`.
    pub labels: BTreeMap<String, String>,
    /// Since when.
    pub since: DateTime<Utc>,
    /// When it last notified (or would have, if silenced).
    pub notified: DateTime<Utc>,
    /// What it is about, for people.
    pub summary: String,
    /// Occurrences grouped into it (failed runs, poison messages, ...).
    pub count: u64,
}

/// What a notification says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// It started.
    Firing,
    /// It still holds (after the rule's repeat interval).
    Repeat,
    /// It ended.
    Resolved,
}

/// One notification of the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertEvent {
    /// Grows by one per event; receivers can drop a repeat of an id they have seen.
    pub id: u64,
    /// When.
    pub time: DateTime<Utc>,
    /// Started, repeated or resolved.
    pub transition: Transition,
    /// The rule.
    pub rule_id: String,
    /// The alert's labels.
    pub labels: BTreeMap<String, String>,
    /// What it is about.
    pub summary: String,
    /// Occurrences grouped so far.
    pub count: u64,
    /// Why nobody was notified, if so (`silenced by …`, `rule muted`, `no channel`).
    pub quiet: Option<String>,
    /// Per channel: `ok`, or the error of the last attempt (empty until sent).
    pub delivery: BTreeMap<String, String>,
}

/// What the evaluator keeps in the store between evaluations and across failovers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// Alerts firing, by key (rule and labels).
    pub firing: BTreeMap<String, Firing>,
    /// The newest notifications, oldest first.
    pub history: Vec<AlertEvent>,
    /// The id of the next event.
    pub next_id: u64,
    /// The leadership term the state was last written under.
    pub term: u64,
}
