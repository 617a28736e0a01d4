//! `GET /system` (status, version, the central configuration: everyone reads it, administrators edit
//! it), `GET /system/audit` and `GET /system/users` (administrators: the audit log, users and tokens;
//! everyone else sees their own tokens there).

use askama::Template;
use axum::extract::{Extension, Query, State};
use jobsched::Role;
use serde::Deserialize;

use super::format::{self, Pager};
use super::page::{Chrome, Html, PageResult};
use crate::api::{Caller, SharedState, TokenView, UserView};

struct Setting {
    name: String,
    value: String,
    help: String,
}

#[derive(Template)]
#[template(path = "system.html")]
struct SystemPage {
    chrome: Chrome,
    status: crate::api::StatusView,
    config_version: u64,
    settings: Vec<Setting>,
}

/// The descriptions of the configuration's fields, from the OpenAPI document (their doc comments).
fn setting_help() -> &'static serde_json::Value {
    static HELP: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    HELP.get_or_init(|| {
        let doc = serde_json::to_value(crate::api::openapi()).unwrap_or_default();
        doc.pointer("/components/schemas/SystemConfig/properties")
            .cloned()
            .unwrap_or_default()
    })
}

/// `GET /system`.
pub async fn page(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
) -> PageResult {
    let status = crate::api::system::status(State(s.clone())).await?.0;
    let config = crate::api::system::get_config(State(s.clone())).await?.0;
    let help = setting_help();
    let settings = serde_json::to_value(&config.config)
        .unwrap_or_default()
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| Setting {
                    name: k.clone(),
                    value: v.to_string(),
                    help: help
                        .pointer(&format!("/{k}/description"))
                        .and_then(|d| d.as_str())
                        .unwrap_or("")
                        .to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    Html::of(&SystemPage {
        chrome: Chrome::new(&caller, "system", "System"),
        status,
        config_version: config.version,
        settings,
    })
}

/// Filters of the audit page, as given.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQueryForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    page: Option<u32>,
}

struct AuditRow {
    time: String,
    user: String,
    role: String,
    client: String,
    action: String,
    target: String,
    outcome: &'static str,
    outcome_class: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    q: AuditQueryForm,
    rows: Vec<AuditRow>,
    pager: Pager,
}

/// `GET /system/audit`.
pub async fn audit(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQueryForm>,
) -> PageResult {
    let page = crate::api::audit::list(
        State(s.clone()),
        Extension(caller.clone()),
        crate::api::error::ApiQuery(crate::api::audit::AuditFilter {
            user: format::nonempty(&q.user),
            action: format::nonempty(&q.action),
            target: format::nonempty(&q.target),
            page: q.page,
            page_size: Some(50),
            ..Default::default()
        }),
    )
    .await?
    .0;
    let rows = page
        .items
        .into_iter()
        .map(|e| {
            let outcome = e.outcome.as_str();
            AuditRow {
                time: format::time(e.time),
                user: e.user,
                role: e.role.map(|r| r.as_str().to_owned()).unwrap_or_default(),
                client: e.client,
                action: e.action,
                target: e.target,
                outcome_class: match outcome {
                    "success" => "ok",
                    "denied" => "wait",
                    _ => "bad",
                },
                outcome,
                message: e.message,
            }
        })
        .collect();
    let keep = vec![
        ("user", q.user.clone()),
        ("action", q.action.clone()),
        ("target", q.target.clone()),
    ];
    let pager = Pager::new(
        "/system/audit",
        &keep,
        page.page,
        page.page_size,
        page.total,
    );
    Html::of(&AuditPage {
        chrome: Chrome::new(&caller, "system", "Audit log"),
        q,
        rows,
        pager,
    })
}

struct TokenRow {
    view: TokenView,
    created: String,
    expires: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<(UserView, String)>,
    tokens: Vec<TokenRow>,
    roles: Vec<&'static str>,
}

/// `GET /system/users`.
pub async fn users(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
) -> PageResult {
    let paging = || crate::api::jobs::Paging {
        page: Some(1),
        page_size: Some(200),
    };
    let users = if caller.role == Role::Admin {
        crate::api::users::list(
            State(s.clone()),
            Extension(caller.clone()),
            crate::api::error::ApiQuery(paging()),
        )
        .await?
        .0
        .items
        .into_iter()
        .map(|u| {
            let created = format::time(u.create_time);
            (u, created)
        })
        .collect()
    } else {
        Vec::new()
    };
    let tokens = crate::api::tokens::list(
        State(s.clone()),
        Extension(caller.clone()),
        crate::api::error::ApiQuery(crate::api::tokens::TokenFilter {
            user: None,
            page: Some(1),
            page_size: Some(200),
        }),
    )
    .await?
    .0
    .items
    .into_iter()
    .map(|t| TokenRow {
        created: format::time(t.create_time),
        expires: t
            .expire_time
            .map_or_else(|| "never".to_owned(), format::time),
        revoked: t.revoke_time.is_some(),
        view: t,
    })
    .collect();
    Html::of(&UsersPage {
        chrome: Chrome::new(&caller, "system", "Users and tokens"),
        users,
        tokens,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
    })
}
