//! Settings (`jobsched_settings`, versioned) and fencing tokens (`jobsched_fences`).

use jobsched::Error;
use jobsched::storage::Fence;
use sqlx::MySqlConnection;

use crate::store::Ctx;
use jobsched_sql::DbError;

/// Checks a fencing token inside a transaction. The newest token per scope is read with a shared lock,
/// so fenced writes of the current holder run concurrently; a newer holder's first write takes the
/// exclusive lock to raise the token, which waits for every in-flight write made under an older token to
/// commit. Afterwards those writers read the newer token and are refused. A writer whose token is older
/// than the stored one fails with `Fenced` (and the caller rolls back).
pub(crate) async fn check_fence(
    conn: &mut MySqlConnection,
    fence: Option<&Fence>,
) -> Result<(), DbError> {
    let Some(f) = fence else { return Ok(()) };
    let stored: Option<u64> =
        sqlx::query_scalar("SELECT token FROM jobsched_fences WHERE scope = ? LOCK IN SHARE MODE")
            .bind(&f.scope)
            .fetch_optional(&mut *conn)
            .await?;
    let current = match stored {
        Some(c) if c >= f.token => c,
        _ => {
            sqlx::query(
                "INSERT INTO jobsched_fences (scope, token) VALUES (?, ?) \
                 ON DUPLICATE KEY UPDATE token = GREATEST(token, VALUES(token))",
            )
            .bind(&f.scope)
            .bind(f.token)
            .execute(&mut *conn)
            .await?;
            sqlx::query_scalar("SELECT token FROM jobsched_fences WHERE scope = ?")
                .bind(&f.scope)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    if current > f.token {
        return Err(Error::Fenced {
            scope: f.scope.clone(),
            token: f.token,
            current,
        }
        .into());
    }
    Ok(())
}

pub(crate) async fn put(
    ctx: &Ctx,
    key: &str,
    value: &str,
    expected_version: Option<u64>,
    fence: Option<&Fence>,
) -> Result<u64, DbError> {
    let mut tx = ctx.pool.begin().await?;
    check_fence(&mut tx, fence).await?;
    let current: Option<i64> =
        sqlx::query_scalar("SELECT version FROM jobsched_settings WHERE name = ? FOR UPDATE")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
    let current = current.unwrap_or(0).max(0) as u64;
    if let Some(expected) = expected_version {
        if expected != current {
            return Err(Error::conflict(format!(
                "setting '{key}' is at version {current}, the write expected version {expected}"
            ))
            .into());
        }
    }
    let version = current + 1;
    sqlx::query(
        "INSERT INTO jobsched_settings (name, value, version) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE value = VALUES(value), version = VALUES(version)",
    )
    .bind(key)
    .bind(value)
    .bind(version as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(version)
}
