//! `GET /executors`: every executor with status, host, capacity, running count, group, labels,
//! handlers and last heartbeat; administrators enable and disable them.

use askama::Template;
use axum::extract::{Extension, State};
use jobsched::{ExecutorRecord, ExecutorStatus};

use super::format;
use super::page::{Chrome, Html, PageResult};
use crate::api::{Caller, SharedState};

struct Row {
    rec: ExecutorRecord,
    online: bool,
    labels: String,
    handlers: String,
    heartbeat: String,
    registered: String,
    load: u32,
}

#[derive(Template)]
#[template(path = "executors.html")]
struct ExecutorsPage {
    chrome: Chrome,
    rows: Vec<Row>,
}

/// `GET /executors`.
pub async fn list(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
) -> PageResult {
    let page = crate::api::executors::list(State(s.clone())).await?.0;
    let rows = page
        .items
        .into_iter()
        .map(|rec| Row {
            online: rec.status == ExecutorStatus::Online,
            labels: format::labels(&rec.labels, ", "),
            handlers: rec.handlers.join(", "),
            heartbeat: format::time(rec.last_heartbeat_time),
            registered: format::time(rec.register_time),
            load: (rec.running * 100)
                .checked_div(rec.capacity)
                .unwrap_or(0)
                .min(100),
            rec,
        })
        .collect();
    Html::of(&ExecutorsPage {
        chrome: Chrome::new(&caller, "executors", "Executors"),
        rows,
    })
}
