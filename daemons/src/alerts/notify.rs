//! Delivering notifications: one message per channel per evaluation, listing every event of it — a
//! webhook's JSON POST (HMAC-signed, retried with backoff) or an email over SMTP (STARTTLS or TLS,
//! with a login).

use std::time::Duration;

use hmac::{KeyInit, Mac};
use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::json;

use super::model::{AlertEvent, Channel, SmtpSecurity, Target, Transition};
use crate::secrets::Keyring;

/// The header of a webhook's signature: `sha256=<hex HMAC-SHA256 of the body under the secret>`.
pub const SIGNATURE_HEADER: &str = "X-Jobsched-Signature";

/// The JSON a webhook receives.
pub fn payload(
    events: &[AlertEvent],
    names: &(dyn Fn(&str) -> String + Sync),
) -> serde_json::Value {
    json!({
        "source": "jobsched",
        "events": events.iter().map(|e| json!({
            "id": e.id,
            "time": e.time,
            "transition": e.transition,
            "rule_id": e.rule_id,
            "rule": names(&e.rule_id),
            "labels": e.labels,
            "summary": e.summary,
            "count": e.count,
        })).collect::<Vec<_>>(),
    })
}

fn word(t: Transition) -> &'static str {
    match t {
        Transition::Firing => "FIRING",
        Transition::Repeat => "STILL FIRING",
        Transition::Resolved => "RESOLVED",
    }
}

/// An email's subject and text.
pub fn email_text(
    events: &[AlertEvent],
    names: &(dyn Fn(&str) -> String + Sync),
) -> (String, String) {
    let subject = match events {
        [e] => format!("[jobsched] {}: {}", word(e.transition), names(&e.rule_id)),
        _ => format!("[jobsched] {} alert notifications", events.len()),
    };
    let mut body = String::new();
    for e in events {
        let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        body.push_str(&format!(
            "{} - {}\n  {}\n  labels: {}\n  occurrences: {}\n  at {} (event {})\n\n",
            word(e.transition),
            names(&e.rule_id),
            e.summary,
            labels.join(", "),
            e.count,
            e.time.to_rfc3339(),
            e.id
        ));
    }
    (subject, body)
}

/// Sends `events` through `channel`; `Err` is the last attempt's error.
pub async fn send(
    http: &reqwest::Client,
    keyring: Option<&Keyring>,
    channel: &Channel,
    events: &[AlertEvent],
    names: &(dyn Fn(&str) -> String + Sync),
) -> Result<(), String> {
    match &channel.target {
        Target::Webhook {
            url,
            secret,
            timeout_secs,
            max_attempts,
        } => {
            let body = serde_json::to_vec(&payload(events, names)).expect("JSON");
            let signature = match secret {
                Some(sealed) => {
                    let key = super::config::open(keyring, &channel.id, sealed)?;
                    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                        .expect("any key length");
                    mac.update(&body);
                    Some(format!(
                        "sha256={}",
                        crate::auth::hex(&mac.finalize().into_bytes())
                    ))
                }
                None => None,
            };
            let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
            let mut last = String::new();
            for attempt in 0..*max_attempts {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1 << (attempt - 1).min(5))).await;
                }
                let mut req = http
                    .post(url)
                    .timeout(Duration::from_secs(*timeout_secs))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("X-Jobsched-Event-Ids", ids.join(","))
                    .body(body.clone());
                if let Some(s) = &signature {
                    req = req.header(SIGNATURE_HEADER, s);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => return Ok(()),
                    Ok(r) => {
                        last = format!("the webhook answered {}", r.status());
                        let retry = r.status().is_server_error()
                            || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS
                            || r.status() == reqwest::StatusCode::REQUEST_TIMEOUT;
                        if !retry {
                            return Err(last);
                        }
                    }
                    Err(e) => last = format!("the webhook could not be reached: {e}"),
                }
            }
            Err(last)
        }
        Target::Email {
            host,
            port,
            security,
            ca_cert,
            username,
            password,
            from,
            to,
            timeout_secs,
        } => {
            let (subject, text) = email_text(events, names);
            let parse = |a: &str| {
                a.parse::<Mailbox>()
                    .map_err(|e| format!("'{a}' is not an email address: {e}"))
            };
            let mut msg = Message::builder().from(parse(from)?).subject(subject);
            for t in to {
                msg = msg.to(parse(t)?);
            }
            let msg = msg
                .header(ContentType::TEXT_PLAIN)
                .body(text)
                .map_err(|e| format!("the email could not be built: {e}"))?;
            let tls = |required: bool| -> Result<Tls, String> {
                let mut b = TlsParameters::builder(host.clone());
                if let Some(path) = ca_cert {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("cannot read the CA certificate {path}: {e}"))?;
                    let cert = lettre::transport::smtp::client::Certificate::from_pem(&pem)
                        .map_err(|e| format!("the CA certificate {path}: {e}"))?;
                    b = b.add_root_certificate(cert);
                }
                let p = b
                    .build()
                    .map_err(|e| format!("TLS settings for {host}: {e}"))?;
                Ok(if required {
                    Tls::Required(p)
                } else {
                    Tls::Wrapper(p)
                })
            };
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                .port(*port)
                .timeout(Some(Duration::from_secs(*timeout_secs)))
                .tls(match security {
                    SmtpSecurity::Starttls => tls(true)?,
                    SmtpSecurity::Tls => tls(false)?,
                    SmtpSecurity::None => Tls::None,
                });
            if let Some(user) = username {
                let pass = match password {
                    Some(sealed) => super::config::open(keyring, &channel.id, sealed)?,
                    None => String::new(),
                };
                b = b.credentials(Credentials::new(user.clone(), pass));
            }
            let mailer = b.build();
            let mut last = String::new();
            for attempt in 0..3u32 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                }
                match mailer.send(msg.clone()).await {
                    Ok(_) => return Ok(()),
                    Err(e) => {
                        last = format!("the mail server {host}:{port}: {e}");
                        if e.is_permanent() {
                            break;
                        }
                    }
                }
            }
            Err(last)
        }
    }
}
