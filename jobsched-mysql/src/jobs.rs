//! The `jobs` table: definitions with optimistic versions, and the change feed.
//!
//! Every job write first takes the next revisions from `jobsched_counters` (an exclusive row lock held
//! until commit), so job writes are serialised and their revisions become visible in order — what
//! [`Storage::job_changes`](jobsched::storage::Storage::job_changes) promises. A deleted job stays as a
//! tombstone row (`deleted = 1`) so the feed can report the deletion; creating the id again replaces it.

use std::collections::HashSet;

use jobsched::{Error, Job, JobId};
use jobsched_sql::{DbError, JOB_COLUMNS, JobRow, assignments, column_names, push_job_values};
use sqlx::{MySql, MySqlConnection, QueryBuilder};

use crate::store::Ctx;

/// Takes `n` revisions; returns the first.
async fn take_revisions(conn: &mut MySqlConnection, n: usize) -> Result<i64, DbError> {
    let n = n as i64;
    sqlx::query("UPDATE jobsched_counters SET value = value + ? WHERE name = 'job_revision'")
        .bind(n)
        .execute(&mut *conn)
        .await?;
    let last: i64 =
        sqlx::query_scalar("SELECT value FROM jobsched_counters WHERE name = 'job_revision'")
            .fetch_one(&mut *conn)
            .await?;
    Ok(last - n + 1)
}

/// Writes whole rows, inserting new ids and replacing existing rows (tombstones, or the row of an update
/// whose version was checked under the revision lock).
async fn write_rows(
    ctx: &Ctx,
    conn: &mut MySqlConnection,
    rows: Vec<JobRow>,
) -> Result<(), DbError> {
    let sizes: Vec<usize> = rows
        .iter()
        .map(|r| 512 + r.command.len() + r.params.len() + r.description.len())
        .collect();
    let ranges = jobsched_sql::chunks(
        &sizes,
        ctx.limits.max_batch_rows,
        ctx.limits.max_statement_bytes,
        |s| *s,
    );
    let update = assignments(column_names(JOB_COLUMNS).skip(1), false);
    let mut rows = rows.into_iter();
    for range in ranges {
        let mut qb = QueryBuilder::<MySql>::new(format!("INSERT INTO jobs ({JOB_COLUMNS}) "));
        qb.push_values(rows.by_ref().take(range.len()), |mut v, r| {
            push_job_values(&mut v, r)
        });
        qb.push(format!(" ON DUPLICATE KEY UPDATE {update}"));
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The live versions of the given ids (locked).
async fn live_versions(
    conn: &mut MySqlConnection,
    ids: &[&JobId],
) -> Result<Vec<(String, i64)>, DbError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(1000) {
        let mut qb = QueryBuilder::<MySql>::new(
            "SELECT job_id, version FROM jobs WHERE deleted = 0 AND job_id IN (",
        );
        let mut list = qb.separated(", ");
        for id in chunk {
            list.push_bind(id.as_str());
        }
        qb.push(") FOR UPDATE");
        out.extend(
            qb.build_query_as::<(String, i64)>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(out)
}

pub(crate) async fn create(ctx: &Ctx, jobs: &[Job]) -> Result<Vec<Job>, DbError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = HashSet::new();
    if let Some(dup) = jobs.iter().find(|j| !seen.insert(&j.job_id)) {
        return Err(already_exists(&dup.job_id));
    }
    let mut tx = ctx.pool.begin().await?;
    let first = take_revisions(&mut tx, jobs.len()).await?;
    let ids: Vec<&JobId> = jobs.iter().map(|j| &j.job_id).collect();
    let taken: HashSet<String> = live_versions(&mut tx, &ids)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if let Some(j) = jobs.iter().find(|j| taken.contains(j.job_id.as_str())) {
        return Err(already_exists(&j.job_id));
    }
    let mut stored = Vec::with_capacity(jobs.len());
    let mut rows = Vec::with_capacity(jobs.len());
    for (i, j) in jobs.iter().enumerate() {
        let mut job = j.clone();
        job.version = 1;
        let mut row = JobRow::from_job(&job);
        row.revision = first + i as i64;
        rows.push(row);
        stored.push(job);
    }
    write_rows(ctx, &mut tx, rows).await?;
    tx.commit().await?;
    Ok(stored)
}

fn already_exists(id: &JobId) -> DbError {
    Error::AlreadyExists {
        kind: "job",
        id: id.to_string(),
    }
    .into()
}

pub(crate) async fn update(ctx: &Ctx, job: &Job) -> Result<Job, DbError> {
    let mut tx = ctx.pool.begin().await?;
    let revision = take_revisions(&mut tx, 1).await?;
    let stored = live_versions(&mut tx, &[&job.job_id]).await?;
    let Some((_, version)) = stored.first() else {
        return Err(Error::not_found("job", job.job_id.as_str()).into());
    };
    let version = *version as u64;
    if version != job.version {
        return Err(Error::conflict(format!(
            "job '{}' is at version {version}, the update was made against version {}",
            job.job_id, job.version
        ))
        .into());
    }
    let mut new = job.clone();
    new.version = version + 1;
    let mut row = JobRow::from_job(&new);
    row.revision = revision;
    write_rows(ctx, &mut tx, vec![row]).await?;
    tx.commit().await?;
    Ok(new)
}

pub(crate) async fn delete(ctx: &Ctx, id: &JobId, expected: Option<u64>) -> Result<(), DbError> {
    let mut tx = ctx.pool.begin().await?;
    let revision = take_revisions(&mut tx, 1).await?;
    let stored = live_versions(&mut tx, &[id]).await?;
    let Some((_, version)) = stored.first() else {
        return Err(Error::not_found("job", id.as_str()).into());
    };
    let version = *version as u64;
    if let Some(v) = expected {
        if v != version {
            return Err(Error::conflict(format!(
                "job '{id}' is at version {version}, the delete was made against version {v}"
            ))
            .into());
        }
    }
    sqlx::query("UPDATE jobs SET deleted = 1, revision = ? WHERE job_id = ?")
        .bind(revision)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
