//! `jobsched alerts …`: the alerting configuration (printed as JSON, replaced from a JSON file), the
//! alerts firing, and the notifications sent.

use std::path::Path;

use serde_json::Value;

use super::Client;
use super::render::table;
use crate::cli::AlertsCommand;
use crate::error::DaemonError;

fn labels(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "rule")
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn firing(v: &Value) -> String {
    let mut t = table(&["rule", "about", "since", "count", "summary"]);
    for f in v["items"].as_array().into_iter().flatten() {
        t.add_row(vec![
            f["rule_id"].as_str().unwrap_or("").to_owned(),
            labels(&f["labels"]),
            f["since"].as_str().unwrap_or("").to_owned(),
            f["count"].to_string(),
            f["summary"].as_str().unwrap_or("").to_owned(),
        ]);
    }
    t.to_string()
}

fn history(v: &Value) -> String {
    let mut t = table(&["id", "time", "transition", "rule", "about", "delivery"]);
    for e in v["items"].as_array().into_iter().flatten() {
        let delivery = match e["quiet"].as_str() {
            Some(q) => q.to_owned(),
            None => e["delivery"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "sending".to_owned()),
        };
        t.add_row(vec![
            e["id"].to_string(),
            e["time"].as_str().unwrap_or("").to_owned(),
            e["transition"].as_str().unwrap_or("").to_owned(),
            e["rule_id"].as_str().unwrap_or("").to_owned(),
            labels(&e["labels"]),
            delivery,
        ]);
    }
    t.to_string()
}

fn read_json(file: &Path) -> Result<Value, DaemonError> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| DaemonError::Config(format!("cannot read standard input: {e}")))?
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| DaemonError::Config(format!("cannot read {}: {e}", file.display())))?
    };
    serde_json::from_str(&text)
        .map_err(|e| DaemonError::Config(format!("{} is not JSON: {e}", file.display())))
}

impl Client {
    /// `jobsched alerts …`.
    pub async fn alerts(&self, cmd: AlertsCommand) -> Result<(), DaemonError> {
        #![allow(clippy::print_stdout)] // The client's output.
        match cmd {
            AlertsCommand::Get => {
                let v: Value = self.get("/api/alerts/config").await?;
                println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
            }
            AlertsCommand::Set { file } => {
                let mut body = read_json(&file)?;
                // `get`'s output can be edited and given back: its version makes the change conditional.
                let version = body
                    .as_object_mut()
                    .and_then(|o| o.remove("version"))
                    .and_then(|v| v.as_u64());
                let current: Value = self.get("/api/alerts/config").await?;
                let expected = version.unwrap_or(current["version"].as_u64().unwrap_or(0));
                let v: Value = self
                    .call(
                        reqwest::Method::PUT,
                        &format!("/api/alerts/config?expected_version={expected}"),
                        Some(&body),
                    )
                    .await?;
                println!(
                    "alert configuration saved: version {}, {} rules, {} channels, {} silences",
                    v["version"],
                    v["rules"].as_array().map_or(0, Vec::len),
                    v["channels"].as_array().map_or(0, Vec::len),
                    v["silences"].as_array().map_or(0, Vec::len)
                );
            }
            AlertsCommand::Firing => {
                let v: Value = self.get("/api/alerts/firing").await?;
                self.show(&v, firing);
            }
            AlertsCommand::History { rule, limit } => {
                let mut path = format!("/api/alerts/history?limit={limit}");
                if let Some(r) = rule {
                    path.push_str(&format!("&rule_id={}", super::enc(&r)));
                }
                let v: Value = self.get(&path).await?;
                self.show(&v, history);
            }
        }
        Ok(())
    }
}
