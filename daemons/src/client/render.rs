//! Tables for people.

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use jobsched::{ExecutionRecord, ExecutorRecord, Job, Page, ScheduleType};
use serde_json::Value;

pub(super) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.iter().map(|h| h.to_uppercase()));
    t
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn schedule(j: &Job) -> String {
    match j.schedule_type {
        ScheduleType::Cron => format!(
            "cron {}{}",
            j.cron_expression.as_deref().unwrap_or(""),
            if j.time_zone.name() == "UTC" {
                String::new()
            } else {
                format!(" ({})", j.time_zone.name())
            }
        ),
        ScheduleType::FixedRate => format!("every {}s", j.interval.unwrap_or(0)),
        ScheduleType::FixedDelay => format!("{}s after each run", j.interval.unwrap_or(0)),
        ScheduleType::Once => format!("once at {}", time(j.start_time)),
        ScheduleType::Manual => "on request".to_owned(),
    }
}

fn page_footer<T>(p: &Page<T>) -> String {
    let shown = p.items.len() as u64;
    let first = u64::from(p.page.saturating_sub(1)) * u64::from(p.page_size);
    if p.total > shown {
        format!(
            "\n{}–{} of {}{} (page {}; --page for more)",
            first + 1,
            first + shown,
            p.total,
            if p.total_capped { "+" } else { "" },
            p.page
        )
    } else {
        String::new()
    }
}

/// `jobs list`.
pub fn jobs(p: &Page<Job>) -> String {
    let mut t = table(&["job_id", "name", "schedule", "type", "enabled", "owner"]);
    for j in &p.items {
        t.add_row(vec![
            j.job_id.to_string(),
            j.name.clone(),
            schedule(j),
            j.job_type.clone(),
            j.enabled.to_string(),
            j.owner.clone(),
        ]);
    }
    format!("{t}{}", page_footer(p))
}

/// `jobs get|create|update`.
pub fn job(j: &Job) -> String {
    let mut t = table(&["field", "value"]);
    let rows: Vec<(&str, String)> = vec![
        ("job_id", j.job_id.to_string()),
        ("name", j.name.clone()),
        ("command", j.command.clone()),
        ("type", j.job_type.clone()),
        ("schedule", schedule(j)),
        ("enabled", j.enabled.to_string()),
        ("priority", j.priority.to_string()),
        ("timeout", format!("{}s", j.timeout)),
        (
            "retries",
            format!(
                "{} every {}s ({})",
                j.retry_count, j.retry_interval, j.retry_backoff
            ),
        ),
        ("owner", j.owner.clone()),
        ("routing", j.routing_strategy.to_string()),
        ("misfire", j.misfire_policy.to_string()),
        ("overlap", j.overlap_policy.to_string()),
        ("created", time(Some(j.create_time))),
        ("updated", time(Some(j.update_time))),
        ("version", j.version.to_string()),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v]);
    }
    t.to_string()
}

/// `jobs history`.
pub fn history(p: &Page<ExecutionRecord>) -> String {
    let mut t = table(&[
        "task_id", "attempt", "status", "trigger", "fired", "started", "ended", "executor", "exit",
    ]);
    for r in &p.items {
        t.add_row(vec![
            r.task_id.to_string(),
            r.attempt.to_string(),
            r.status.to_string(),
            r.trigger.to_string(),
            time(Some(r.scheduled_time)),
            time(r.start_time),
            time(r.end_time),
            r.executor_id
                .as_ref()
                .map_or("-".to_owned(), |e| e.to_string()),
            r.exit_code.map_or("-".to_owned(), |c| c.to_string()),
        ]);
    }
    format!("{t}{}", page_footer(p))
}

/// `jobs next-fires`.
pub fn next_fires(v: &Value) -> String {
    v["next_fires"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// `tasks get`.
pub fn task(v: &crate::api::TaskView) -> String {
    let r = &v.latest;
    let mut t = table(&["field", "value"]);
    for (k, val) in [
        ("task_id", r.task_id.to_string()),
        ("job_id", r.job_id.to_string()),
        ("status", r.status.to_string()),
        ("attempt", format!("{} of {}", r.attempt, r.retry_count + 1)),
        ("fired", time(Some(r.scheduled_time))),
        ("started", time(r.start_time)),
        ("ended", time(r.end_time)),
        (
            "executor",
            r.executor_id
                .as_ref()
                .map_or("-".to_owned(), |e| e.to_string()),
        ),
        (
            "exit",
            r.exit_code.map_or("-".to_owned(), |c| c.to_string()),
        ),
        ("command", r.command.clone()),
    ] {
        t.add_row(vec![k.to_owned(), val]);
    }
    let mut out = t.to_string();
    if v.attempts.len() > 1 {
        let mut a = table(&["attempt", "status", "trigger", "ended", "executor"]);
        for r in &v.attempts {
            a.add_row(vec![
                r.attempt.to_string(),
                r.status.to_string(),
                r.trigger.to_string(),
                time(r.end_time),
                r.executor_id
                    .as_ref()
                    .map_or("-".to_owned(), |e| e.to_string()),
            ]);
        }
        out.push_str(&format!("\n\n{a}"));
    }
    out.push_str(&format!("\n\n{}", logs(r)));
    out
}

/// `tasks logs`.
pub fn logs(r: &ExecutionRecord) -> String {
    format!(
        "--- output ---\n{}\n--- error ---\n{}",
        r.output.trim_end(),
        r.error.trim_end()
    )
}

/// `executors list|get|enable|disable`.
pub fn executors(list: &[ExecutorRecord]) -> String {
    let mut t = table(&[
        "executor_id",
        "host",
        "port",
        "status",
        "enabled",
        "capacity",
        "running",
        "group",
        "last_heartbeat",
    ]);
    for e in list {
        t.add_row(vec![
            e.executor_id.to_string(),
            e.host.clone(),
            e.port.to_string(),
            e.status.to_string(),
            e.enabled.to_string(),
            e.capacity.to_string(),
            e.running.to_string(),
            e.group.clone(),
            time(Some(e.last_heartbeat_time)),
        ]);
    }
    t.to_string()
}

/// A JSON object as `key  value` rows (nested objects flattened with dots).
pub fn key_values(v: &Value) -> String {
    fn walk(prefix: &str, v: &Value, rows: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, rows);
                }
            }
            Value::String(s) => rows.push((prefix.to_owned(), s.clone())),
            Value::Null => rows.push((prefix.to_owned(), "-".to_owned())),
            other => rows.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut rows = Vec::new();
    walk("", v, &mut rows);
    let mut t = table(&["field", "value"]);
    for (k, val) in rows {
        t.add_row(vec![k, val]);
    }
    t.to_string()
}

/// `system config get|set`.
pub fn config(v: &Value) -> String {
    let mut out = format!("version {}\n", v["version"]);
    if let Some(m) = v["config"].as_object() {
        for (k, val) in m {
            out.push_str(&format!("{k} = {val}\n"));
        }
    }
    out
}

/// `users list`.
pub fn users(list: &[crate::api::UserView]) -> String {
    let mut t = table(&["name", "role", "disabled", "created", "user_id"]);
    for u in list {
        t.add_row(vec![
            u.name.clone(),
            u.role.to_string(),
            u.disabled.to_string(),
            time(Some(u.create_time)),
            u.user_id.clone(),
        ]);
    }
    t.to_string()
}

/// `tokens list`.
pub fn tokens(list: &[crate::api::TokenView]) -> String {
    let mut t = table(&["token_id", "name", "user", "role", "expires", "revoked"]);
    for k in list {
        t.add_row(vec![
            k.token_id.clone(),
            k.name.clone(),
            k.user.clone(),
            k.role.to_string(),
            time(k.expire_time),
            time(k.revoke_time),
        ]);
    }
    t.to_string()
}

/// `audit`.
pub fn audit(p: &Page<jobsched::AuditEntry>) -> String {
    let mut t = table(&[
        "time", "user", "client", "action", "target", "outcome", "message",
    ]);
    for e in &p.items {
        t.add_row(vec![
            time(Some(e.time)),
            e.user.clone(),
            e.client.clone(),
            e.action.clone(),
            e.target.clone(),
            e.outcome.as_str().to_owned(),
            e.message.chars().take(80).collect(),
        ]);
    }
    t.to_string() + &page_footer(p)
}
