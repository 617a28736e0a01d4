//! `/api/alerts…`: the alerting configuration (rules, channels, silences; one versioned document, secrets
//! answered as `***`), the alerts firing now and the history of notifications. Administrators change it;
//! administrators and read-only users read it (alerts name every user's jobs).

use axum::Json;
use axum::extract::{Extension, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::audit;
use super::error::{ApiJson, ApiQuery};
use super::system::ExpectedVersion;
use super::{ApiError, Caller, ErrorBody, SharedState};
use crate::alerts::config;
use crate::alerts::model::{AlertEvent, AlertsConfig, Firing};

/// The alerting configuration with its version.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertsConfigView {
    /// Increases with every change (0: never set).
    pub version: u64,
    /// The rules.
    pub rules: Vec<crate::alerts::model::AlertRule>,
    /// Where notifications go (secrets as `***`).
    pub channels: Vec<crate::alerts::model::Channel>,
    /// The silences.
    pub silences: Vec<crate::alerts::model::Silence>,
}

impl AlertsConfigView {
    fn of(version: u64, c: AlertsConfig) -> Self {
        let c = config::redacted(c);
        AlertsConfigView {
            version,
            rules: c.rules,
            channels: c.channels,
            silences: c.silences,
        }
    }
}

/// Alerts firing now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FiringView {
    /// Oldest first.
    pub items: Vec<Firing>,
}

/// The newest notifications.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    /// Newest first.
    pub items: Vec<AlertEvent>,
}

/// Filters of the history.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this rule's.
    #[param(nullable = false)]
    pub rule_id: Option<String>,
    /// At most this many (default 100, 1–1000).
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

fn may_read(caller: &Caller) -> Result<(), ApiError> {
    match caller.owner_scope() {
        None => Ok(()),
        Some(_) => Err(ApiError::forbidden(format!(
            "user '{}' sees only its own jobs; alerts cover all of them",
            caller.user
        ))),
    }
}

/// The alerting configuration (secrets as `***`).
#[utoipa::path(get, path = "/api/alerts/config", tag = "alerts",
    responses((status = 200, body = AlertsConfigView), (status = 403, body = ErrorBody)))]
pub async fn get_config(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<AlertsConfigView>, ApiError> {
    may_read(&caller)?;
    let v = config::load(s.scheduler.storage()).await?;
    Ok(Json(AlertsConfigView::of(v.version, v.value)))
}

/// Replace the alerting configuration. A channel secret given as `***` keeps the stored one.
#[utoipa::path(put, path = "/api/alerts/config", tag = "alerts", request_body = AlertsConfig,
    params(ExpectedVersion),
    responses((status = 200, body = AlertsConfigView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Changed since `expected_version`")))]
pub async fn put_config(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<ExpectedVersion>,
    ApiJson(mut new): ApiJson<AlertsConfig>,
) -> Result<Json<AlertsConfigView>, ApiError> {
    let mut entry = caller.audit("alerts.update", "alerts");
    let result = async {
        caller.may_administer()?;
        config::validate(&new)?;
        let storage = s.scheduler.storage();
        let stored = config::load(storage).await?;
        let expected = q.expected_version.unwrap_or(stored.version);
        config::seal(s.keyring.as_deref(), &mut new, &stored.value)?;
        entry.detail = serde_json::json!({
            "before": config::redacted(stored.value),
            "after": config::redacted(new.clone()),
        });
        Ok(config::store(storage, &new, expected, std::slice::from_ref(&entry)).await?)
    }
    .await;
    audit::on_failure(&s, &entry, &result).await;
    Ok(Json(AlertsConfigView::of(result?, new)))
}

/// Alerts firing now.
#[utoipa::path(get, path = "/api/alerts/firing", tag = "alerts",
    responses((status = 200, body = FiringView), (status = 403, body = ErrorBody)))]
pub async fn firing(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<FiringView>, ApiError> {
    may_read(&caller)?;
    let state = config::load_state(s.scheduler.storage()).await?;
    let mut items: Vec<Firing> = state.value.firing.into_values().collect();
    items.sort_by_key(|f| f.since);
    Ok(Json(FiringView { items }))
}

/// The newest notifications (sent, failed, or quiet with the reason).
#[utoipa::path(get, path = "/api/alerts/history", tag = "alerts", params(HistoryQuery),
    responses((status = 200, body = HistoryView), (status = 403, body = ErrorBody)))]
pub async fn history(
    State(s): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryView>, ApiError> {
    may_read(&caller)?;
    let state = config::load_state(s.scheduler.storage()).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1–1000, got {limit}"),
        ));
    }
    let items = state
        .value
        .history
        .into_iter()
        .rev()
        .filter(|e| q.rule_id.as_ref().is_none_or(|r| *r == e.rule_id))
        .take(limit)
        .collect();
    Ok(Json(HistoryView { items }))
}
