//! The alerting configuration in the store: validation with errors that name the field, channel secrets
//! sealed with the params keyring (answered as `***`), and the versioned reads and writes of the
//! configuration and of the evaluator's state.

use std::collections::HashSet;
use std::sync::Arc;

use jobsched::storage::{Storage, Versioned};
use jobsched::{AuditEntry, Error};

use super::model::{AlertState, AlertsConfig, Condition, MAX_ITEMS, Metric, Target};
use crate::secrets::Keyring;

/// The store key of the configuration.
pub const CONFIG_KEY: &str = "alerts.config";
/// The store key of the evaluator's state.
pub const STATE_KEY: &str = "alerts.state";
/// What secrets show as.
pub const REDACTED: &str = "***";
/// The scope secrets are sealed under.
const SCOPE: &str = "alerts";

fn check_id(field: &str, id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("'{id}' must be 1–64 letters, digits, '-' or '_'"),
        ))
    }
}

fn unique<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(Error::invalid(what, format!("'{id}' is used twice")));
        }
    }
    Ok(())
}

/// Checks a configuration; the error names the item and field.
pub fn validate(c: &AlertsConfig) -> Result<(), Error> {
    for (what, n) in [
        ("rules", c.rules.len()),
        ("channels", c.channels.len()),
        ("silences", c.silences.len()),
    ] {
        if n > MAX_ITEMS {
            return Err(Error::invalid(
                what,
                format!("at most {MAX_ITEMS}, got {n}"),
            ));
        }
    }
    unique("rules", c.rules.iter().map(|r| r.id.as_str()))?;
    unique("channels", c.channels.iter().map(|r| r.id.as_str()))?;
    unique("silences", c.silences.iter().map(|r| r.id.as_str()))?;
    for ch in &c.channels {
        check_id("channels.id", &ch.id)?;
        let field = |f: &str| format!("channels.{}.{f}", ch.id);
        match &ch.target {
            Target::Webhook {
                url,
                timeout_secs,
                max_attempts,
                ..
            } => {
                let ok = (url.starts_with("http://") || url.starts_with("https://"))
                    && url.parse::<reqwest::Url>().is_ok();
                if !ok {
                    return Err(Error::invalid(
                        field("url"),
                        format!("'{url}' is not an http(s) URL"),
                    ));
                }
                if !(1..=120).contains(timeout_secs) {
                    return Err(Error::invalid(field("timeout_secs"), "must be 1–120"));
                }
                if !(1..=10).contains(max_attempts) {
                    return Err(Error::invalid(field("max_attempts"), "must be 1–10"));
                }
            }
            Target::Email {
                host,
                from,
                to,
                timeout_secs,
                ..
            } => {
                if host.is_empty() {
                    return Err(Error::invalid(field("host"), "must not be empty"));
                }
                for a in std::iter::once(from).chain(to) {
                    if a.parse::<lettre::message::Mailbox>().is_err() {
                        return Err(Error::invalid(
                            field(if a == from { "from" } else { "to" }),
                            format!("'{a}' is not an email address"),
                        ));
                    }
                }
                if to.is_empty() {
                    return Err(Error::invalid(field("to"), "needs a recipient"));
                }
                if !(1..=120).contains(timeout_secs) {
                    return Err(Error::invalid(field("timeout_secs"), "must be 1–120"));
                }
            }
        }
    }
    let channels: HashSet<&str> = c.channels.iter().map(|ch| ch.id.as_str()).collect();
    for r in &c.rules {
        check_id("rules.id", &r.id)?;
        let field = |f: &str| format!("rules.{}.{f}", r.id);
        for ch in &r.channels {
            if !channels.contains(ch.as_str()) {
                return Err(Error::invalid(
                    field("channels"),
                    format!("no channel '{ch}'"),
                ));
            }
        }
        match &r.condition {
            Condition::TaskFailure { consecutive, .. } => {
                if !(1..=1000).contains(consecutive) {
                    return Err(Error::invalid(field("consecutive"), "must be 1–1000"));
                }
            }
            Condition::Threshold {
                metric,
                value,
                window_secs,
                ..
            } => {
                if !(1..=7 * 86_400).contains(window_secs) {
                    return Err(Error::invalid(
                        field("window_secs"),
                        "must be 1 s to 7 days",
                    ));
                }
                let range = match metric {
                    Metric::SuccessRate => 0.0..=100.0,
                    _ => 0.0..=f64::MAX,
                };
                if !value.is_finite() || !range.contains(value) {
                    return Err(Error::invalid(
                        field("value"),
                        format!("{value} is out of range for {metric:?} (a success rate is 0–100)"),
                    ));
                }
            }
            Condition::Exception { for_secs, .. } => {
                if *for_secs > 7 * 86_400 {
                    return Err(Error::invalid(field("for_secs"), "must be at most 7 days"));
                }
            }
        }
        if r.repeat_interval_secs != 0 && r.repeat_interval_secs < 60 {
            return Err(Error::invalid(
                field("repeat_interval_secs"),
                "must be 0 (no repeat) or at least 60",
            ));
        }
    }
    for s in &c.silences {
        check_id("silences.id", &s.id)?;
        if s.ends <= s.starts {
            return Err(Error::invalid(
                format!("silences.{}.ends", s.id),
                "must be after starts",
            ));
        }
        if s.matchers.is_empty() {
            return Err(Error::invalid(
                format!("silences.{}.matchers", s.id),
                "needs at least one label (rule, job, executor, event)",
            ));
        }
    }
    Ok(())
}

/// The secret fields of a channel target.
fn secret_mut(t: &mut Target) -> Option<&mut Option<String>> {
    match t {
        Target::Webhook { secret, .. } => Some(secret),
        Target::Email { password, .. } => Some(password),
    }
}

/// Seals the new secrets of `c` (a `***` keeps the one `stored` has for that channel); fails if a
/// secret is given and there is no keyring.
pub fn seal(
    keyring: Option<&Keyring>,
    c: &mut AlertsConfig,
    stored: &AlertsConfig,
) -> Result<(), Error> {
    for ch in &mut c.channels {
        let kept = stored
            .channels
            .iter()
            .find(|s| s.id == ch.id)
            .and_then(|s| match &s.target {
                Target::Webhook { secret, .. } => secret.clone(),
                Target::Email { password, .. } => password.clone(),
            });
        let id = ch.id.clone();
        let Some(slot) = secret_mut(&mut ch.target) else {
            continue;
        };
        match slot.as_deref() {
            None | Some("") => *slot = None,
            Some(REDACTED) => *slot = kept,
            Some(clear) => {
                let k = keyring.ok_or_else(|| {
                    Error::invalid(
                        format!("channels.{id}"),
                        "a channel secret needs the params keyring (`jobsched secrets init`, \
                         --secret-key-file)",
                    )
                })?;
                *slot = Some(k.seal(SCOPE, &id, clear));
            }
        }
    }
    Ok(())
}

/// `c` with every secret as `***`.
pub fn redacted(mut c: AlertsConfig) -> AlertsConfig {
    for ch in &mut c.channels {
        if let Some(slot) = secret_mut(&mut ch.target)
            && slot.is_some()
        {
            *slot = Some(REDACTED.to_owned());
        }
    }
    c
}

/// The clear secret of channel `id` (sealed as `sealed`).
pub fn open(keyring: Option<&Keyring>, id: &str, sealed: &str) -> Result<String, String> {
    keyring
        .ok_or_else(|| format!("channel '{id}' has a secret but this process has no keyring"))?
        .open_value(SCOPE, id, sealed)
}

/// The stored configuration (empty and version 0 if none).
pub async fn load(storage: &Arc<dyn Storage>) -> Result<Versioned<AlertsConfig>, Error> {
    Ok(match storage.get_value(CONFIG_KEY).await? {
        Some(v) => Versioned {
            value: serde_json::from_str(&v.value).map_err(|e| {
                Error::backend("alerts", format!("the stored alert configuration: {e}"))
            })?,
            version: v.version,
        },
        None => Versioned {
            value: AlertsConfig::default(),
            version: 0,
        },
    })
}

/// Writes the configuration if the store is at `expected` (0: none yet); its new version.
pub async fn store(
    storage: &Arc<dyn Storage>,
    c: &AlertsConfig,
    expected: u64,
    audit: &[AuditEntry],
) -> Result<u64, Error> {
    let text = serde_json::to_string(c).expect("the configuration serialises");
    storage
        .put_value(CONFIG_KEY, &text, Some(expected), None, audit)
        .await
}

/// The evaluator's stored state (empty and version 0 if none).
pub async fn load_state(storage: &Arc<dyn Storage>) -> Result<Versioned<AlertState>, Error> {
    Ok(match storage.get_value(STATE_KEY).await? {
        Some(v) => Versioned {
            value: serde_json::from_str(&v.value).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the stored alert state is unreadable; starting afresh");
                AlertState::default()
            }),
            version: v.version,
        },
        None => Versioned {
            value: AlertState::default(),
            version: 0,
        },
    })
}

/// Writes the state if the store is at `expected`: the write that records a transition is what
/// entitles a scheduler to send it, so two that evaluated the same transition send it once.
pub async fn store_state(
    storage: &Arc<dyn Storage>,
    s: &AlertState,
    expected: u64,
) -> Result<u64, Error> {
    let text = serde_json::to_string(s).expect("the state serialises");
    storage
        .put_value(STATE_KEY, &text, Some(expected), None, &[])
        .await
}
