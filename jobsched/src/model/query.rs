//! Paged, filtered queries over jobs and execution records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ExecutorId, JobId, TaskId};
use super::status::TaskStatus;
use crate::error::{Error, Result};

/// Largest page size a store returns.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Highest page number asked for: with [`MAX_PAGE_SIZE`], no query skips more than 999,000 rows (deeper
/// history is reached by narrowing the filter, e.g. by time).
pub const MAX_PAGE: u32 = 1000;
/// Stores stop counting a query's matches past this many: a page's `total` is then this number and
/// `total_capped` is set, so that listing a huge history never counts all of it.
pub const COUNT_CAP: u64 = 100_000;

/// Which page to return (1-based) and how large pages are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Page number, from 1.
    pub page: u32,
    /// Items per page, 1..=1000.
    pub page_size: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            page: 1,
            page_size: 50,
        }
    }
}

impl PageRequest {
    /// A page request, checked.
    pub fn new(page: u32, page_size: u32) -> Result<Self> {
        if page == 0 || page > MAX_PAGE {
            return Err(Error::invalid(
                "page",
                format!("pages are numbered from 1 to {MAX_PAGE}, got {page}"),
            ));
        }
        if page_size == 0 || page_size > MAX_PAGE_SIZE {
            return Err(Error::invalid(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}, got {page_size}"),
            ));
        }
        Ok(PageRequest { page, page_size })
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.page_size)
    }

    /// Rows to return.
    pub fn limit(&self) -> u64 {
        u64::from(self.page_size.clamp(1, MAX_PAGE_SIZE))
    }
}

/// One page of results and the total count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Items matching the query on all pages (at most [`COUNT_CAP`]; see `total_capped`).
    pub total: u64,
    /// True if more than [`COUNT_CAP`] items match: `total` is then a lower bound.
    #[serde(default)]
    pub total_capped: bool,
    /// This page's number.
    pub page: u32,
    /// The page size asked for.
    pub page_size: u32,
}

impl<T> Page<T> {
    /// A page of `items` for `req`, of `counted` matches (counted up to past [`COUNT_CAP`]).
    ///
    /// ```
    /// use jobsched::{COUNT_CAP, Page, PageRequest};
    /// let p = Page::counted(vec![1, 2], COUNT_CAP + 1, PageRequest::new(1, 2).unwrap());
    /// assert_eq!((p.total, p.total_capped), (COUNT_CAP, true));
    /// ```
    pub fn counted(items: Vec<T>, counted: u64, req: PageRequest) -> Page<T> {
        Page {
            items,
            total: counted.min(COUNT_CAP),
            total_capped: counted > COUNT_CAP,
            page: req.page,
            page_size: req.page_size,
        }
    }

    /// Maps the items.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            total_capped: self.total_capped,
            page: self.page,
            page_size: self.page_size,
        }
    }
}

/// Filters for listing jobs (all optional, combined with AND), in the order of `order` (by `job_id` by
/// default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobQuery {
    /// Jobs whose name contains this text.
    pub name: Option<String>,
    /// Only enabled or only disabled jobs.
    pub enabled: Option<bool>,
    /// Only jobs of this owner.
    pub owner: Option<String>,
    /// Only jobs scheduled this way.
    pub schedule_type: Option<super::ScheduleType>,
    /// Only jobs whose newest execution record is in one of these statuses (empty: any, including jobs
    /// that never ran).
    pub last_status: Vec<TaskStatus>,
    /// The order of the list (ties by `job_id`).
    pub order: JobOrder,
    /// Reverse the order.
    pub descending: bool,
    /// Which page.
    pub page: PageRequest,
}

/// What a job list is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobOrder {
    /// By id.
    #[default]
    JobId,
    /// By name.
    Name,
    /// By the time of the last change.
    UpdateTime,
}

impl JobOrder {
    /// Every order.
    pub const ALL: &'static [JobOrder] = &[JobOrder::JobId, JobOrder::Name, JobOrder::UpdateTime];

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobOrder::JobId => "job_id",
            JobOrder::Name => "name",
            JobOrder::UpdateTime => "update_time",
        }
    }
}

/// Filters for listing execution records (all optional, combined with AND). Newest first (by `id`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionQuery {
    /// Only this job's records.
    pub job_id: Option<JobId>,
    /// Only this task's attempts.
    pub task_id: Option<TaskId>,
    /// Only records in one of these statuses (empty: any).
    pub statuses: Vec<TaskStatus>,
    /// Only records given to this executor.
    pub executor_id: Option<ExecutorId>,
    /// Only records with `scheduled_time >= from`.
    pub from: Option<DateTime<Utc>>,
    /// Only records with `scheduled_time < to`.
    pub to: Option<DateTime<Utc>>,
    /// Only records with `id > after_id` (for incremental scans).
    pub after_id: Option<i64>,
    /// Only records created at or after this time (a job's own runs, not those of an earlier job that had
    /// its id).
    pub created_from: Option<DateTime<Utc>>,
    /// Which page.
    pub page: PageRequest,
}

/// How many attempts ended in one status during one UTC hour: a bar of the dashboard's chart (from
/// [`Storage::outcome_hours`](crate::storage::Storage::outcome_hours)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeHour {
    /// The start of the hour (UTC).
    pub hour: DateTime<Utc>,
    /// The status the attempts ended in.
    pub status: TaskStatus,
    /// How many ended so in that hour.
    pub count: u64,
}

/// `t` rounded down to its hour.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(3600), 0).unwrap_or(t)
}
