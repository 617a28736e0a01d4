//! `/api/tasks/{taskId}/log` and `/log/stream`: a task's output while it runs (the live output the
//! schedulers collect from executors) and once it ended (its recorded output), from an offset, or as
//! Server-Sent Events that resume from `Last-Event-ID`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use jobsched::{ExecutionRecord, TaskStatus};
use serde::{Deserialize, Serialize};
use tokio_stream::Stream;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiQuery;
use super::tasks::attempts;
use super::{ApiError, Caller, ErrorBody, SharedState};

/// `offset` of a log read.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Read from this byte of the attempt's output (default 0).
    #[param(minimum = 0, nullable = false)]
    pub offset: Option<u64>,
}

/// A task's output from an offset.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogView {
    /// The task.
    pub task_id: String,
    /// The attempt the output belongs to (the latest).
    pub attempt: u32,
    /// The latest attempt's status.
    pub status: TaskStatus,
    /// True while the task is active and the text is its live output; false for the recorded output of
    /// an ended task (standard output, then standard error).
    pub live: bool,
    /// The offset of `text`.
    pub offset: u64,
    /// Bytes between the offset asked for and `offset` that are not kept (live output keeps the
    /// newest 256 KiB of a task, and executors skip what a task writes faster than they send).
    pub skipped: u64,
    /// Where the next read starts.
    pub next_offset: u64,
    /// The output.
    pub text: String,
}

/// One event of `GET /api/tasks/{taskId}/log/stream`, as an event-stream reader sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogStreamEvent {
    /// `chunk` (output) or `end` (the task ended; the last event).
    #[schema(pattern = "^(chunk|end)$")]
    pub event: String,
    /// JSON text: `{"attempt", "offset", "skipped", "text"}` for a chunk, `{"status", "code",
    /// "exit_code"}` for the end.
    pub data: String,
    /// `attempt:next_offset` of a chunk (what `Last-Event-ID` resumes from).
    #[schema(pattern = r"^[0-9]+:[0-9]+$")]
    pub id: Option<String>,
    /// Reconnection delay, if the server sets one (it does not).
    pub retry: Option<u64>,
}

/// The recorded output of an ended attempt: standard output, then standard error.
fn recorded(r: &ExecutionRecord) -> String {
    match (r.output.is_empty(), r.error.is_empty()) {
        (_, true) => r.output.clone(),
        (true, false) => r.error.clone(),
        (false, false) if r.output.ends_with('\n') => format!("{}{}", r.output, r.error),
        (false, false) => format!("{}\n{}", r.output, r.error),
    }
}

/// The log of the latest attempt from `offset`.
fn read(s: &SharedState, latest: &ExecutionRecord, offset: u64) -> LogView {
    let base = |live, offset, skipped, next_offset, text| LogView {
        task_id: latest.task_id.to_string(),
        attempt: latest.attempt,
        status: latest.status,
        live,
        offset,
        skipped,
        next_offset,
        text,
    };
    if !latest.status.is_terminal() {
        return match s.output.read(&latest.task_id, latest.attempt, offset) {
            Some(r) if r.attempt == latest.attempt => {
                base(true, r.offset, r.skipped, r.next, r.text)
            }
            _ => base(true, offset, 0, offset, String::new()),
        };
    }
    let text = recorded(latest);
    let from = (offset as usize).min(text.len());
    let from = (from..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let len = text.len() as u64;
    base(false, from as u64, 0, len, text[from..].to_owned())
}

/// A task's output from an offset: the live output while it runs, the recorded output once it ended.
#[utoipa::path(get, path = "/api/tasks/{taskId}/log", tag = "tasks",
    params(("taskId" = jobsched::TaskId, Path, description = "The task's id"), LogQuery),
    responses((status = 200, body = LogView), (status = 404, body = ErrorBody)))]
pub async fn log(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<LogView>, ApiError> {
    let all = attempts(&s, &caller, &id).await?;
    let latest = all.last().expect("a task has an attempt");
    Ok(Json(read(&s, latest, q.offset.unwrap_or(0))))
}

/// `attempt:offset` of a `Last-Event-ID`.
fn resume_point(headers: &HeaderMap) -> Option<(u32, u64)> {
    let v = headers.get("last-event-id")?.to_str().ok()?;
    let (a, o) = v.split_once(':')?;
    Some((a.parse().ok()?, o.parse().ok()?))
}

/// How often a stream looks at the task's status while no output arrives.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How long a stream waits for chunks still on their way after the task ended.
const LATE_CHUNKS: Duration = Duration::from_millis(300);

/// A task's output as Server-Sent Events: `chunk` events (`{attempt, offset, skipped, text}`, id
/// `attempt:next_offset`) as it is written, then one `end` event (`{status, code, exit_code}`: the status
/// by name and code) when the task
/// has ended. Reconnecting with `Last-Event-ID` (or `?offset=`) resumes where the stream was.
#[utoipa::path(get, path = "/api/tasks/{taskId}/log/stream", tag = "tasks",
    params(("taskId" = jobsched::TaskId, Path, description = "The task's id"), LogQuery),
    responses((status = 200, description = "An event stream (text/event-stream): each event as described",
            content_type = "text/event-stream", body = LogStreamEvent),
        (status = 404, body = ErrorBody)))]
pub async fn stream(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut all = attempts(&s, &caller, &id).await?;
    let mut latest = all.pop().expect("a task has an attempt");
    let task_id = latest.task_id.clone();
    let (mut attempt, mut offset) =
        resume_point(&headers).unwrap_or((latest.attempt, q.offset.unwrap_or(0)));
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        let mut changed = s.output.subscribe();
        let mut ended_at: Option<tokio::time::Instant> = None;
        let mut checked = tokio::time::Instant::now();
        loop {
            // The status is read at most every STATUS_EVERY (new output of any task wakes the stream).
            if checked.elapsed() >= STATUS_EVERY {
                checked = tokio::time::Instant::now();
                match s.scheduler.task(&task_id).await {
                    Ok(mut a) => latest = a.pop().expect("a task has an attempt"),
                    Err(e) => {
                        tracing::debug!(error = %e, %task_id, "a log stream could not read its task")
                    }
                }
            }
            if latest.attempt != attempt {
                (attempt, offset) = (latest.attempt, 0);
            }
            let view = if latest.status.is_terminal() {
                // Late chunks first; if none was ever kept, the recorded output.
                match s.output.read(&task_id, attempt, offset) {
                    Some(r) if r.attempt == attempt => LogView {
                        live: true,
                        offset: r.offset,
                        skipped: r.skipped,
                        next_offset: r.next,
                        text: r.text,
                        ..read(&s, &latest, 0)
                    },
                    _ if offset == 0 => read(&s, &latest, 0),
                    _ => LogView {
                        text: String::new(),
                        next_offset: offset,
                        ..read(&s, &latest, 0)
                    },
                }
            } else {
                read(&s, &latest, offset)
            };
            if !view.text.is_empty() || view.skipped > 0 {
                offset = view.next_offset;
                let ev = Event::default()
                    .event("chunk")
                    .id(format!("{attempt}:{offset}"))
                    .json_data(serde_json::json!({
                        "attempt": attempt,
                        "offset": view.offset,
                        "skipped": view.skipped,
                        "text": view.text,
                    }))
                    .expect("JSON serialises");
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            if latest.status.is_terminal() {
                let since = *ended_at.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= LATE_CHUNKS || !view.live {
                    let ev = Event::default()
                        .event("end")
                        .json_data(serde_json::json!({
                            "status": latest.status.as_str(),
                            "code": latest.status.code(),
                            "exit_code": latest.exit_code,
                        }))
                        .expect("JSON serialises");
                    let _ = tx.send(ev).await;
                    return;
                }
                let _ = tokio::time::timeout(LATE_CHUNKS, changed.changed()).await;
                continue;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(checked + STATUS_EVERY) => {}
                _ = tx.closed() => return,
            }
        }
    });
    let events = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok(Sse::new(tokio_stream::StreamExt::map(events, Ok)).keep_alive(KeepAlive::default()))
}
