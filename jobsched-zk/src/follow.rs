//! The loop behind every watched value (a setting, a group's members): read with a one-shot watch,
//! publish, wait for the watch or a new session, read again.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use jobsched::Result;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client::OneshotWatcher;

use crate::error::BACKEND;
use crate::session::Inner;

/// What one read gives: the value, the watch left on it, and the token of the session it was read in.
pub(crate) type Read<V> = (V, OneshotWatcher, CancellationToken);

/// Keeps `tx` current until the coordinator closes or every receiver is gone: `read` reads the value and
/// leaves a watch; `set` puts a read value into `tx`'s slot and says whether it changed (receivers are
/// told only then). The value is read again when the watch fires or the session ends; a failed read is
/// retried with backoff (50 ms, doubling to 2 s). `what` names the value in the log.
pub(crate) async fn follow<T, V, F, Fut>(
    inner: Weak<Inner>,
    what: String,
    tx: watch::Sender<T>,
    mut read: F,
    mut set: impl FnMut(&mut T, V) -> bool,
) where
    F: FnMut(Arc<Inner>) -> Fut,
    Fut: Future<Output = Result<Read<V>>>,
{
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if strong.is_closed() {
            return;
        }
        let closing = strong.closing.clone();
        let outcome = read(strong).await;
        match outcome {
            Ok((value, watcher, lost)) => {
                backoff = Duration::from_millis(50);
                tx.send_if_modified(|cur| set(cur, value));
                // The watch last: its future panics (zookeeper-client unwraps a cancelled channel) when
                // polled after its client is gone, which happens only after `closing` or `lost` fired.
                tokio::select! {
                    biased;
                    _ = closing.cancelled() => return,
                    _ = tx.closed() => return,
                    _ = lost.cancelled() => {}
                    _ = watcher.changed() => {}
                }
            }
            Err(e) => {
                tracing::debug!(backend = BACKEND, what = %what, error = %e, "reading a watched value failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = closing.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
