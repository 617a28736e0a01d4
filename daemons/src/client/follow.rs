//! `jobsched tasks logs TASK_ID --follow`: prints a task's output as it is written, from the
//! server's event stream (`/api/tasks/{id}/log/stream`), reconnecting with `Last-Event-ID` when the
//! connection drops, until the task ends.

use std::io::Write as _;
use std::time::Duration;

use serde_json::Value;

use super::{Client, enc};
use crate::error::DaemonError;

/// Reconnections before giving up.
const RECONNECTS: u32 = 30;

/// One server-sent event.
#[derive(Debug, Default, PartialEq)]
struct SseEvent {
    event: String,
    id: Option<String>,
    data: String,
}

/// Splits complete events off the front of `buf` (the rest waits for more bytes; a character split
/// between network reads is whole once its event is).
fn events(buf: &mut Vec<u8>) -> Vec<SseEvent> {
    let mut out = Vec::new();
    while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
        let raw: Vec<u8> = buf.drain(..end + 2).collect();
        let block = String::from_utf8_lossy(&raw);
        let mut ev = SseEvent::default();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                ev.event = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("id:") {
                ev.id = Some(v.trim_start().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                if !ev.data.is_empty() {
                    ev.data.push('\n');
                }
                ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if !ev.data.is_empty() {
            out.push(ev);
        }
    }
    out
}

impl Client {
    /// Follows the output of `task_id` until the task ends; the ending status goes to standard error.
    pub(super) async fn follow(&self, task_id: &str) -> Result<(), DaemonError> {
        let url = format!("{}/api/tasks/{}/log/stream", self.base, enc(task_id));
        let mut last_id: Option<String> = None;
        let mut line_open = false;
        let mut failures = 0;
        loop {
            let mut req = self
                .http
                .get(&url)
                .header("accept", "text/event-stream")
                // The stream lasts as long as the task: no overall deadline.
                .timeout(Duration::from_secs(365 * 24 * 3600));
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            if let Some(id) = &last_id {
                req = req.header("last-event-id", id);
            }
            let mut resp = match req.send().await {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    let (status, body) = (r.status(), r.bytes().await.unwrap_or_default());
                    return Err(DaemonError::Client(super::error_line(
                        &reqwest::Method::GET,
                        &format!("/api/tasks/{task_id}/log/stream"),
                        status,
                        &body,
                    )));
                }
                Err(e) => {
                    failures += 1;
                    if failures > RECONNECTS {
                        return Err(DaemonError::Client(format!(
                            "cannot reach {}: {e}",
                            self.base
                        )));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut buf = Vec::new();
            // Until the server closes the stream without an end: then reconnect from the last event.
            while let Ok(Some(bytes)) = resp.chunk().await {
                failures = 0;
                buf.extend_from_slice(&bytes);
                for ev in events(&mut buf) {
                    if ev.id.is_some() {
                        last_id = ev.id.clone();
                    }
                    if print_event(&ev, &mut line_open)? {
                        return Ok(());
                    }
                }
            }
            failures += 1;
            if failures > RECONNECTS {
                return Err(DaemonError::Client(format!(
                    "the output stream of task {task_id} kept breaking off"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Prints one event; true at the end of the stream. `line_open` says whether the output printed so far
/// ends inside a line.
fn print_event(ev: &SseEvent, line_open: &mut bool) -> Result<bool, DaemonError> {
    let v: Value = serde_json::from_str(&ev.data)
        .map_err(|e| DaemonError::Client(format!("unexpected event from the server: {e}")))?;
    let mut out = std::io::stdout().lock();
    match ev.event.as_str() {
        "chunk" => {
            if let Some(n) = v["skipped"].as_u64().filter(|n| *n > 0) {
                eprintln!("[{n} bytes of output not shown]");
            }
            let text = v["text"].as_str().unwrap_or("");
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            if let Some(last) = text.chars().last() {
                *line_open = last != '\n';
            }
            Ok(false)
        }
        "end" => {
            if *line_open {
                let _ = out.write_all(b"\n");
                let _ = out.flush();
            }
            eprintln!(
                "[task ended: {}{}]",
                v["status"].as_str().unwrap_or("?"),
                v["exit_code"]
                    .as_i64()
                    .map(|c| format!(", exit code {c}"))
                    .unwrap_or_default()
            );
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_when_complete() {
        let mut buf =
            b"event: chunk\nid: 1:5\ndata: {\"text\":\"hi\"}\n\n: keep-alive\n\nevent: end\ndata: {}".to_vec();
        let got = events(&mut buf);
        assert_eq!(
            got,
            vec![SseEvent {
                event: "chunk".into(),
                id: Some("1:5".into()),
                data: "{\"text\":\"hi\"}".into()
            }]
        );
        assert_eq!(buf, b"event: end\ndata: {}", "the incomplete event waits");
        buf.extend_from_slice(b"\n\n");
        assert_eq!(events(&mut buf)[0].event, "end");
    }
}
