//! Fencing tokens: every write of a fenced component (the active scheduler) checks its token against the
//! newest one stored for its scope, in the write's own transaction.
//!
//! The newest token per scope is read with a shared lock (MySQL), so fenced writes of the current holder
//! run concurrently; a newer holder's first write raises the token under an exclusive lock, which waits for
//! every in-flight write made under an older token to end; afterwards those writers read the newer token
//! and are refused with [`Error::Fenced`]. (SQLite's write transactions are serial, so the same statements
//! are enough there.)
//!
//! A previous holder that stopped in the middle of such a transaction — frozen (SIGSTOP, a long pause) or
//! cut off from the network — would keep the new holder waiting until the server's lock wait timeout.
//! Where the dialect knows how ([`StaleHolders`]), the raise therefore looks every [`STALE_HOLDER_GRACE`]
//! for connections that hold the lock it waits for and have been idle for a second or more, and ends
//! them: their transactions roll back (they were made
//! under an older token, which the raise refuses from then on anyway) and the raise goes on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jobsched::Error;
use jobsched::storage::Fence;
use sqlx::{AssertSqlSafe, ConnectOptions};

use crate::dialect::StaleHolders;
use crate::error::DbError;

/// How often a waiting token raise looks for stale holders: connections that hold the lock it waits for
/// and have sent nothing for a second or more (fenced writes hold the lock for milliseconds).
pub const STALE_HOLDER_GRACE: Duration = Duration::from_millis(500);

/// Whether the "cannot see lock waits" warning was logged (once per process is enough).
static BLIND_WARNED: AtomicBool = AtomicBool::new(false);

sql_methods! {
    /// Checks a fencing token inside the caller's transaction (see the module documentation); raises the
    /// stored token when `fence` is newer, ending stale holders that keep the raise waiting.
    pub(crate) async fn check_fence(
        &self,
        conn: &mut DB::Connection,
        fence: Option<&Fence>,
    ) -> Result<(), DbError> {
        let Some(f) = fence else { return Ok(()) };
        let token = i64::try_from(f.token)
            .map_err(|_| DbError::Domain(Error::invalid("fence.token", "must be below 2^63")))?;
        let stored: Option<(i64,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT token FROM jobsched_fences WHERE scope = ?{}",
            self.dialect.for_share
        )))
        .bind(f.scope.clone())
        .fetch_optional(&mut *conn)
        .await?;
        let current = match stored {
            Some((c,)) if c >= token => c,
            _ => {
                self.raise_fence(&mut *conn, &f.scope, token).await?;
                let (c,): (i64,) =
                    sqlx::query_as("SELECT token FROM jobsched_fences WHERE scope = ?")
                        .bind(f.scope.clone())
                        .fetch_one(&mut *conn)
                        .await?;
                c
            }
        };
        if current > token {
            return Err(Error::Fenced {
                scope: f.scope.clone(),
                token: f.token,
                current: current as u64,
            }
            .into());
        }
        Ok(())
    }

    /// Claims a token above every stored one (see `Storage::claim_fence`): raises the stored token to
    /// `candidate` under the exclusive lock (waiting out, or ending, stale holders), then one above.
    pub(crate) async fn claim_fence(
        &self,
        conn: &mut DB::Connection,
        scope: &str,
        candidate: u64,
    ) -> Result<u64, DbError> {
        let token = i64::try_from(candidate)
            .map_err(|_| DbError::Domain(Error::invalid("fence.token", "must be below 2^63")))?;
        self.raise_fence(&mut *conn, scope, token).await?;
        sqlx::query("UPDATE jobsched_fences SET token = token + 1 WHERE scope = ?")
            .bind(scope.to_owned())
            .execute(&mut *conn)
            .await?;
        let (c,): (i64,) = sqlx::query_as("SELECT token FROM jobsched_fences WHERE scope = ?")
            .bind(scope.to_owned())
            .fetch_one(&mut *conn)
            .await?;
        Ok(c as u64)
    }

    /// Raises the stored token of `scope` to at least `token` (an upsert under an exclusive lock); where
    /// the dialect allows, a watchdog on another connection ends stale holders the upsert waits for.
    async fn raise_fence(
        &self,
        conn: &mut DB::Connection,
        scope: &str,
        token: i64,
    ) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO jobsched_fences (scope, token) VALUES (?, ?){}",
            self.dialect.upsert("scope", ["token"]).replace(
                &format!("token = {}", self.dialect.new_value("token")),
                &format!(
                    "token = {}(token, {})",
                    self.dialect.greatest,
                    self.dialect.new_value("token")
                ),
            )
        );
        let raise = sqlx::query(AssertSqlSafe(sql))
            .bind(scope.to_owned())
            .bind(token);
        let Some(holders) = self.dialect.stale_holders else {
            raise.execute(&mut *conn).await?;
            return Ok(());
        };
        let (me,): (i64,) = sqlx::query_as(holders.connection_id)
            .fetch_one(&mut *conn)
            .await?;
        tokio::select! {
            r = raise.execute(&mut *conn) => { r?; }
            never = self.end_stale_holders(holders, scope, me) => match never {},
        }
        Ok(())
    }

    /// Every [`STALE_HOLDER_GRACE`], ends the long-idle connections whose transactions connection `waiter`
    /// waits for. Never returns; the caller drops it when the wait is over. When the server does not
    /// show lock waits (no `PROCESS` privilege), warns once and leaves the wait to the server's timeout.
    async fn end_stale_holders(
        &self,
        holders: StaleHolders,
        scope: &str,
        waiter: i64,
    ) -> std::convert::Infallible {
        let mut own: Option<DB::Connection> = None;
        loop {
            tokio::time::sleep(STALE_HOLDER_GRACE).await;
            // A connection of its own, not the pool's: the pool may be all taken by writes waiting on
            // the same lock.
            let conn = match &mut own {
                Some(c) => c,
                None => match self.write.connect_options().connect().await {
                    Ok(c) => own.insert(c),
                    Err(e) => {
                        tracing::warn!(scope, error = %e, "cannot open a connection to look for stale fencing-token holders; will retry");
                        continue;
                    }
                },
            };
            let mut found = None;
            let mut last_error = None;
            for query in holders.blockers {
                match sqlx::query_as::<_, (i64,)>(*query)
                    .bind(waiter)
                    .fetch_all(&mut *conn)
                    .await
                {
                    Ok(rows) => {
                        found = Some(rows);
                        break;
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            let Some(rows) = found else {
                if !BLIND_WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        scope,
                        error = %last_error.map(|e| e.to_string()).unwrap_or_default(),
                        "a fencing token raise waits on a lock and the server does not show who holds \
                         it; it waits for the server's lock wait timeout instead (grant the store's \
                         user PROCESS so a new holder can end a frozen previous one's transaction)"
                    );
                }
                return std::future::pending().await;
            };
            for (id,) in rows {
                let kill = format!("{} {id}", holders.kill);
                match sqlx::raw_sql(AssertSqlSafe(kill)).execute(&mut *conn).await {
                    Ok(_) => tracing::warn!(
                        scope,
                        connection = id,
                        "ended a stale fencing-token holder: its transaction under an older token was \
                         idle and kept the new holder waiting (a frozen or cut-off previous holder); \
                         the transaction rolled back"
                    ),
                    Err(e) => tracing::warn!(
                        scope,
                        connection = id,
                        error = %e,
                        "could not end a stale fencing-token holder; the raise keeps waiting"
                    ),
                }
            }
        }
    }
}
