//! Leader election and locks: one recipe. A candidate creates an ephemeral sequential znode
//! `<dir>/c-<seq>` (data: its name); the lowest sequence holds, the others each watch the node just
//! before theirs (no herd). The fencing token is the holder's sequence + 1: sequences grow with every
//! candidate under a directory, which is never deleted, so every later holder has a larger token.
//!
//! A holder gives up as soon as it is disconnected (it can no longer know whether its session will
//! expire before it reconnects), and its node is then deleted once the session is reachable again, so
//! that it does not block the next holder while the session survives.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use jobsched::coord::{Leadership, LockGuard};
use jobsched::{Error, Result};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zookeeper_client::CreateMode;

use crate::error::zk;
use crate::members::ensure_dir;
use crate::paths::sequence;
use crate::session::Inner;

/// A held place at the head of a queue.
pub(crate) struct Held {
    inner: Weak<Inner>,
    generation: u64,
    path: String,
    token: u64,
    lost: CancellationToken,
}

impl Held {
    async fn give_up(self) -> Result<()> {
        self.lost.cancel();
        delete_node(&self.inner, self.generation, &self.path).await
    }
}

/// Deletes a node of session `generation` if that session is still the live one (otherwise the node went with
/// its session).
async fn delete_node(inner: &Weak<Inner>, generation: u64, path: &str) -> Result<()> {
    let Some(inner) = inner.upgrade() else {
        return Ok(());
    };
    let Some(sess) = inner.session_if(generation).await else {
        return Ok(());
    };
    match sess.client.delete(path, None).await {
        Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
        Err(e) => Err(zk(e, &format!("deleting {path}"))),
    }
}

/// Deletes the candidate node unless disarmed: a campaign abandoned (its future dropped) or failed must
/// not leave a node that would hold the election.
struct Cleanup {
    inner: Weak<Inner>,
    generation: u64,
    path: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let (inner, generation) = (self.inner.clone(), self.generation);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = delete_node(&inner, generation, &path).await;
                });
            }
        }
    }
}

/// After the holder's connected period ends, deletes its node once the session is reachable again.
fn release_on_disconnect(
    inner: Weak<Inner>,
    generation: u64,
    path: String,
    lost: CancellationToken,
) {
    tokio::spawn(async move {
        lost.cancelled().await;
        let mut pause = Duration::from_millis(100);
        for _ in 0..50 {
            match delete_node(&inner, generation, &path).await {
                Ok(()) => return,
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    });
}

/// Joins the queue under `dir` as `candidate` and waits until first (or until `deadline`: `Timeout`).
pub(crate) async fn acquire(
    inner: &Arc<Inner>,
    dir: &str,
    candidate: &str,
    deadline: Option<Instant>,
    what: &str,
) -> Result<Held> {
    let sess = inner.session().await?;
    ensure_dir(&sess, dir).await?;
    let options = CreateMode::EphemeralSequential.with_acls(sess.acls);
    let (_, seq) = sess
        .client
        .create(&format!("{dir}/c-"), candidate.as_bytes(), &options)
        .await
        .map_err(|e| zk(e, &format!("joining {what}")))?;
    let mine = seq.into_i64();
    let path = format!("{dir}/c-{seq}");
    let mut cleanup = Cleanup {
        inner: Arc::downgrade(inner),
        generation: sess.generation,
        path: Some(path.clone()),
    };
    loop {
        let mut children: Vec<(i64, String)> = sess
            .client
            .list_children(dir)
            .await
            .map_err(|e| zk(e, &format!("listing {what}")))?
            .into_iter()
            .filter_map(|c| sequence(&c).map(|s| (s, c)))
            .collect();
        children.sort();
        let Some(pos) = children.iter().position(|(s, _)| *s == mine) else {
            return Err(Error::unavailable(
                crate::error::BACKEND,
                format!("the candidate node of {what} vanished (session ended)"),
            ));
        };
        if pos == 0 {
            cleanup.path = None;
            let lost = sess.connected_period();
            release_on_disconnect(
                Arc::downgrade(inner),
                sess.generation,
                path.clone(),
                lost.clone(),
            );
            return Ok(Held {
                inner: Arc::downgrade(inner),
                generation: sess.generation,
                path,
                token: mine as u64 + 1,
                lost,
            });
        }
        let before = format!("{dir}/{}", children[pos - 1].1);
        let (stat, watcher) = sess
            .client
            .check_and_watch_stat(&before)
            .await
            .map_err(|e| zk(e, &format!("watching {what}")))?;
        if stat.is_none() {
            continue;
        }
        let wait_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        // The session's end before the watch (see `follow`: a watch of an ended session panics).
        tokio::select! {
            biased;
            _ = sess.lost.cancelled() => {
                return Err(Error::unavailable(crate::error::BACKEND, format!("the session ended while waiting for {what}")));
            }
            _ = watcher.changed() => {}
            _ = wait_deadline => {
                return Err(Error::Timeout {
                    operation: format!("taking {what}"),
                    after: deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default(),
                });
            }
        }
    }
}

/// The candidate at the head of the queue under `dir`, if any.
pub(crate) async fn head(inner: &Arc<Inner>, dir: &str) -> Result<Option<String>> {
    let sess = inner.session().await?;
    loop {
        let children = match sess.client.list_children(dir).await {
            Ok(c) => c,
            Err(zookeeper_client::Error::NoNode) => return Ok(None),
            Err(e) => return Err(zk(e, "listing candidates")),
        };
        let Some(first) = children
            .into_iter()
            .filter_map(|c| sequence(&c).map(|s| (s, c)))
            .min()
        else {
            return Ok(None);
        };
        match sess.client.get_data(&format!("{dir}/{}", first.1)).await {
            Ok((data, _)) => return Ok(Some(String::from_utf8_lossy(&data).into_owned())),
            // It left between the listing and the read: look again.
            Err(zookeeper_client::Error::NoNode) => continue,
            Err(e) => return Err(zk(e, "reading the leader")),
        }
    }
}

#[async_trait]
impl Leadership for Held {
    fn token(&self) -> u64 {
        self.token
    }

    fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    async fn resign(self: Box<Self>) -> Result<()> {
        (*self).give_up().await
    }
}

/// A held lock (the same recipe as leadership).
pub(crate) struct HeldLock(pub Held);

#[async_trait]
impl LockGuard for HeldLock {
    fn token(&self) -> u64 {
        self.0.token
    }

    fn lost(&self) -> CancellationToken {
        self.0.lost.clone()
    }

    async fn release(self: Box<Self>) -> Result<()> {
        self.0.give_up().await
    }
}
