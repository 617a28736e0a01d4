//! The leadership loop: campaign, run the engine while leading, step down when leadership is lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::Event;
use super::actor::{Command, Engine, Exit, Shared};
use crate::coord::{Registration, SCHEDULER_LEADER, SCHEDULERS};
use crate::storage::Fence;

/// Where the handle finds the running engine of this process (if it leads).
pub(crate) type EngineSlot = Arc<Mutex<Option<mpsc::Sender<Command>>>>;

async fn pause(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Campaigns for leadership and runs the engine while leading, until `shutdown`.
pub(crate) async fn supervise(
    sh: Arc<Shared>,
    slot: EngineSlot,
    active: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let id = sh.config.scheduler_id.clone();
    let span = info_span!("scheduler", scheduler_id = %id);
    async move {
        let mut backoff = Duration::from_millis(200);
        let mut member: Option<Box<dyn Registration>> = None;
        loop {
            // Scheduler membership: every scheduler, active or standby, is listed while its session lives.
            if member.as_ref().is_none_or(|m| m.lost().is_cancelled()) {
                let data = serde_json::json!({
                    "scheduler_id": id,
                    "version": env!("CARGO_PKG_VERSION"),
                });
                match sh.coordinator.register(SCHEDULERS, &id, data).await {
                    Ok(m) => member = Some(m),
                    Err(e) => warn!(error = %e, "registering as a scheduler failed; will retry"),
                }
            }
            let campaign = tokio::select! {
                _ = shutdown.cancelled() => {
                    if let Some(m) = member.take() {
                        let _ = m.deregister().await;
                    }
                    return;
                }
                r = sh.coordinator.campaign(SCHEDULER_LEADER, &id) => r,
            };
            let leadership = match campaign {
                Ok(l) => l,
                Err(e) => {
                    warn!(error = %e, "campaigning for leadership failed; retrying");
                    if !pause(&shutdown, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let lost = leadership.lost();
            // The fencing token comes from the store, above every earlier one, and is taken before
            // anything is read: a predecessor that wakes up while this one loads is refused at once,
            // and a coordinator whose counters restarted (lost data, another root) cannot hand out a
            // token the store has seen.
            let take_over = async {
                let token = sh
                    .storage
                    .claim_fence(SCHEDULER_LEADER, leadership.token())
                    .await?;
                info!(
                    token,
                    election_token = leadership.token(),
                    "elected: loading state to become the active scheduler"
                );
                let fence = Fence {
                    scope: SCHEDULER_LEADER.to_owned(),
                    token,
                };
                Engine::load(sh.clone(), fence).await.map(|e| (token, e))
            };
            let taken = tokio::select! {
                _ = shutdown.cancelled() => { let _ = leadership.resign().await; return; }
                _ = lost.cancelled() => { warn!("leadership lost while taking over"); continue; }
                r = take_over => r,
            };
            let (token, engine) = match taken {
                Ok(t) => t,
                Err(e) => {
                    warn!(error = %e, "taking over (claiming the fence, loading state) failed; resigning and retrying");
                    let _ = leadership.resign().await;
                    if !pause(&shutdown, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            let (tx, rx) = mpsc::channel(65_536);
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
            active.send_replace(true);
            let _ = sh.events.send(Event::Leadership {
                active: true,
                token,
            });
            info!(token, "active scheduler");
            sh.metrics.leadership(Some(token));
            sh.term.store(token, std::sync::atomic::Ordering::Release);
            let exit = engine.run(rx, shutdown.clone(), lost).await;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
            active.send_replace(false);
            sh.metrics.leadership(None);
            sh.term.store(0, std::sync::atomic::Ordering::Release);
            let _ = sh.events.send(Event::Leadership {
                active: false,
                token,
            });
            match exit {
                Exit::Shutdown => {
                    let _ = leadership.resign().await;
                    if let Some(m) = member.take() {
                        let _ = m.deregister().await;
                    }
                    info!("scheduler stopped");
                    return;
                }
                Exit::Lost(reason) => {
                    warn!(%reason, "no longer the active scheduler; campaigning again");
                    let _ = leadership.resign().await;
                    if !pause(&shutdown, backoff).await {
                        return;
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}
