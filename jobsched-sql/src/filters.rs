//! The `WHERE` clauses of the listing queries, built once for both databases. Every value is a bound
//! parameter; only fixed SQL text is pushed.

use chrono::NaiveDateTime;
use jobsched::PageRequest;
use jobsched::{ExecutionQuery, JobQuery};
use sqlx::{Database, QueryBuilder};

use crate::binds::Bind;

use crate::rows::naive;

/// Appends ` WHERE …` for a job listing: live jobs (not tombstones) matching every filter. `name` matches
/// jobs whose name contains the text (`INSTR`, so `%` and `_` are plain characters).
pub fn push_job_where<DB>(qb: &mut QueryBuilder<DB>, q: &JobQuery)
where
    DB: Database,
    String: Bind<DB>,
    bool: Bind<DB>,
    i64: Bind<DB>,
{
    qb.push(" WHERE deleted = 0");
    if let Some(name) = &q.name {
        qb.push(" AND INSTR(name, ")
            .push_bind(name.clone())
            .push(") > 0");
    }
    if let Some(enabled) = q.enabled {
        qb.push(" AND enabled = ").push_bind(enabled);
    }
    if let Some(owner) = &q.owner {
        qb.push(" AND owner = ").push_bind(owner.clone());
    }
    if let Some(t) = q.schedule_type {
        qb.push(" AND schedule_type = ")
            .push_bind(t.as_str().to_owned());
    }
    if !q.last_status.is_empty() {
        // The status of each job's newest record: one seek of the (job_id, id, status) index per job.
        qb.push(
            " AND (SELECT l.status FROM job_logs l WHERE l.job_id = jobs.job_id \
             ORDER BY l.id DESC LIMIT 1) IN (",
        );
        let mut list = qb.separated(", ");
        for s in &q.last_status {
            list.push_bind(i64::from(s.code()));
        }
        qb.push(")");
    }
}

/// Appends ` ORDER BY …` for a job listing (ties by `job_id`).
pub fn push_job_order<DB: Database>(qb: &mut QueryBuilder<DB>, q: &JobQuery) {
    let dir = if q.descending { "DESC" } else { "ASC" };
    let column = match q.order {
        jobsched::JobOrder::JobId => "",
        jobsched::JobOrder::Name => "name",
        jobsched::JobOrder::UpdateTime => "update_time",
    };
    if column.is_empty() {
        qb.push(format!(" ORDER BY job_id {dir}"));
    } else {
        qb.push(format!(" ORDER BY {column} {dir}, job_id {dir}"));
    }
}

/// Appends ` WHERE …` for a history listing (every filter combined with AND).
pub fn push_exec_where<DB>(qb: &mut QueryBuilder<DB>, q: &ExecutionQuery)
where
    DB: Database,
    String: Bind<DB>,
    i64: Bind<DB>,
    NaiveDateTime: Bind<DB>,
{
    qb.push(" WHERE 1 = 1");
    if let Some(job) = &q.job_id {
        qb.push(" AND job_id = ").push_bind(job.to_string());
    }
    if let Some(task) = &q.task_id {
        qb.push(" AND task_id = ").push_bind(task.to_string());
    }
    if !q.statuses.is_empty() {
        // With a job or task given, its index is the one to use: `+status` keeps SQLite's planner (which
        // has no statistics) from picking the status index, which holds a large share of all records.
        let narrowed = q.job_id.is_some() || q.task_id.is_some();
        qb.push(if narrowed {
            " AND +status IN ("
        } else {
            " AND status IN ("
        });
        let mut list = qb.separated(", ");
        for s in &q.statuses {
            list.push_bind(i64::from(s.code()));
        }
        qb.push(")");
    }
    if let Some(exec) = &q.executor_id {
        qb.push(" AND executor_id = ").push_bind(exec.to_string());
    }
    if let Some(from) = q.from {
        qb.push(" AND scheduled_time >= ").push_bind(naive(from));
    }
    if let Some(to) = q.to {
        qb.push(" AND scheduled_time < ").push_bind(naive(to));
    }
    if let Some(t) = q.created_from {
        qb.push(" AND create_time >= ").push_bind(naive(t));
    }
    if let Some(after) = q.after_id {
        qb.push(" AND id > ").push_bind(after);
    }
}

/// Appends ` LIMIT ? OFFSET ?` for a page.
pub fn push_page<DB>(qb: &mut QueryBuilder<DB>, page: PageRequest)
where
    DB: Database,
    i64: Bind<DB>,
{
    let limit = i64::try_from(page.limit()).unwrap_or(i64::MAX);
    let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
    qb.push(" LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
}

/// The status codes of active attempts, as an SQL list (`0, 5, 6`): fixed text, no input.
pub fn active_status_list() -> String {
    jobsched::TaskStatus::ACTIVE
        .iter()
        .map(|s| s.code().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status codes of ended attempts, as an SQL list: fixed text, no input.
pub fn terminal_status_list() -> String {
    jobsched::TaskStatus::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.code().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
