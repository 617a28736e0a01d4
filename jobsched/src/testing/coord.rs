//! Conformance of [`Coordinator`] implementations. Each `open()` is a separate session (process).
//!
//! [`Coordinator`]: crate::coord::Coordinator

use std::time::Duration;

use tokio::sync::watch;

use super::{OpenCoordinator, WAIT};
use crate::coord::Members;
use crate::error::Error;

async fn wait_members(
    rx: &mut watch::Receiver<Members>,
    what: &str,
    ok: impl Fn(&Members) -> bool,
) {
    let seen = matches!(
        tokio::time::timeout(WAIT, rx.wait_for(|m| ok(m))).await,
        Ok(Ok(_))
    );
    assert!(seen, "membership never showed {what} within {WAIT:?}");
}

/// **Membership** sees a member join, and sees it leave when its session ends (a dead process).
pub async fn membership_sees_join_and_dead_member_leave(open: &dyn OpenCoordinator) {
    let a = open.open().await;
    let b = open.open().await;
    let mut rx = b.members("conf-group").await.unwrap();
    let reg = a
        .register("conf-group", "member-a", serde_json::json!({"capacity": 3}))
        .await
        .unwrap();
    wait_members(&mut rx, "member-a joining", |m| {
        m.iter().any(|x| x.id == "member-a")
    })
    .await;
    let seen = rx
        .borrow()
        .iter()
        .find(|x| x.id == "member-a")
        .cloned()
        .unwrap();
    assert_eq!(seen.data["capacity"], 3, "the payload is visible");
    assert_eq!(seen.epoch, reg.epoch(), "the epoch is visible");
    let lost = reg.lost();
    a.close().await.unwrap();
    wait_members(&mut rx, "member-a leaving", |m| {
        m.iter().all(|x| x.id != "member-a")
    })
    .await;
    assert!(
        lost.is_cancelled(),
        "the registration's lost token fires when its session ends"
    );
    drop(reg);
}

/// A member id is unique in a group: another session cannot take it while the first lives; a new
/// registration after the first ends gets a larger epoch.
pub async fn member_ids_are_unique_and_epochs_grow(open: &dyn OpenCoordinator) {
    let a = open.open().await;
    let b = open.open().await;
    let first = a
        .register("conf-unique", "same-id", serde_json::json!({}))
        .await
        .unwrap();
    let e = b
        .register("conf-unique", "same-id", serde_json::json!({}))
        .await
        .err();
    assert!(matches!(e, Some(Error::AlreadyExists { .. })), "got {e:?}");
    let epoch = first.epoch();
    first.deregister().await.unwrap();
    let second = b
        .register("conf-unique", "same-id", serde_json::json!({}))
        .await
        .unwrap();
    assert!(
        second.epoch() > epoch,
        "epochs grow: {} then {}",
        epoch,
        second.epoch()
    );
    let mut rx = a.members("conf-unique").await.unwrap();
    wait_members(&mut rx, "the new registration", |m| {
        m.iter()
            .any(|x| x.id == "same-id" && x.epoch == second.epoch())
    })
    .await;
    second.deregister().await.unwrap();
}

/// **One leader at a time**; when it goes, the next candidate leads with a larger fencing token.
pub async fn one_leader_at_a_time(open: &dyn OpenCoordinator) {
    let a = open.open().await;
    let b = open.open().await;
    let c = open.open().await;
    let lead_a = a.campaign("conf-election", "a").await.unwrap();
    let lost_a = lead_a.lost();
    let b2 = b.clone();
    let mut waiting_b = tokio::spawn(async move { b2.campaign("conf-election", "b").await });
    let r = tokio::time::timeout(Duration::from_millis(300), &mut waiting_b).await;
    assert!(r.is_err(), "b must not lead while a leads");
    assert_eq!(
        c.leader("conf-election").await.unwrap().as_deref(),
        Some("a")
    );
    let token_a = lead_a.token();
    lead_a.resign().await.unwrap();
    let lead_b = tokio::time::timeout(WAIT, waiting_b)
        .await
        .expect("b leads after a resigns")
        .unwrap()
        .unwrap();
    assert!(
        lost_a.is_cancelled(),
        "a's lost token fires when it resigns"
    );
    assert!(
        lead_b.token() > token_a,
        "fencing tokens grow: {token_a} then {}",
        lead_b.token()
    );
    // b's session dies: c takes over with a larger token.
    let lost_b = lead_b.lost();
    let c2 = c.clone();
    let waiting_c = tokio::spawn(async move { c2.campaign("conf-election", "c").await });
    b.close().await.unwrap();
    let lead_c = tokio::time::timeout(WAIT, waiting_c)
        .await
        .expect("c leads after b's session ends")
        .unwrap()
        .unwrap();
    assert!(lost_b.is_cancelled(), "b learns it lost leadership");
    assert!(
        lead_c.token() > lead_b.token(),
        "fencing tokens grow: {} then {}",
        lead_b.token(),
        lead_c.token()
    );
    assert_eq!(
        a.leader("conf-election").await.unwrap().as_deref(),
        Some("c")
    );
    lead_c.resign().await.unwrap();
}

/// Abandoning a campaign (dropping its future) withdraws the candidacy: it never holds leadership.
pub async fn abandoned_campaign_does_not_block(open: &dyn OpenCoordinator) {
    let a = open.open().await;
    let b = open.open().await;
    let c = open.open().await;
    let lead_a = a.campaign("conf-abandon", "a").await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(200), b.campaign("conf-abandon", "b")).await;
    assert!(r.is_err(), "b waits while a leads");
    let c2 = c.clone();
    let waiting_c = tokio::spawn(async move { c2.campaign("conf-abandon", "c").await });
    lead_a.resign().await.unwrap();
    let lead_c = tokio::time::timeout(WAIT, waiting_c)
        .await
        .expect("c leads: the abandoned candidacy of b must not hold the election")
        .unwrap()
        .unwrap();
    assert_eq!(
        a.leader("conf-abandon").await.unwrap().as_deref(),
        Some("c")
    );
    lead_c.resign().await.unwrap();
}

/// **A lock excludes**, a waiter times out with `Timeout`, and its fencing token grows per holder.
pub async fn lock_excludes_and_token_grows(open: &dyn OpenCoordinator) {
    let a = open.open().await;
    let b = open.open().await;
    let held = a.lock("conf-lock", WAIT).await.unwrap();
    let e = b.lock("conf-lock", Duration::from_millis(200)).await.err();
    assert!(matches!(e, Some(Error::Timeout { .. })), "got {e:?}");
    let first = held.token();
    let b2 = b.clone();
    let waiting = tokio::spawn(async move { b2.lock("conf-lock", WAIT).await });
    held.release().await.unwrap();
    let second = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        second.token() > first,
        "tokens grow: {first} then {}",
        second.token()
    );
    // The holder's session ending frees the lock too.
    b.close().await.unwrap();
    let third = a.lock("conf-lock", WAIT).await.unwrap();
    assert!(third.token() > second.token());
    third.release().await.unwrap();
}

/// **Watched values** reach other sessions; writes are compare-and-set on the version.
pub async fn watched_values_propagate(open: &dyn OpenCoordinator) {
    let a = open.open().await;
    let b = open.open().await;
    let mut rx = b.watch("conf-key").await.unwrap();
    let v1 = a.put("conf-key", b"one", Some(0)).await.unwrap();
    let seen = matches!(
        tokio::time::timeout(
            WAIT,
            rx.wait_for(|v| v.as_ref().is_some_and(|v| v.value == b"one"))
        )
        .await,
        Ok(Ok(_))
    );
    assert!(seen, "b sees a's write");
    let e = b.put("conf-key", b"two", Some(v1 + 5)).await.err();
    assert!(
        matches!(e, Some(Error::Conflict { .. })),
        "a write against a wrong version conflicts: {e:?}"
    );
    let v2 = b.put("conf-key", b"two", Some(v1)).await.unwrap();
    assert!(v2 > v1);
    let got = a.get("conf-key").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.version), (b"two".as_slice(), v2));
    a.put("conf-key", b"three", None).await.unwrap();
    let seen = matches!(
        tokio::time::timeout(
            WAIT,
            rx.wait_for(|v| v.as_ref().is_some_and(|v| v.value == b"three"))
        )
        .await,
        Ok(Ok(_))
    );
    assert!(seen, "b sees the unconditional write");
    assert!(a.get("conf-missing").await.unwrap().is_none());
}

/// Every behaviour of this suite, by function name (for the coverage check in backend tests).
pub fn behaviours() -> Vec<&'static str> {
    super::behaviours_in(include_str!("coord.rs"))
}
