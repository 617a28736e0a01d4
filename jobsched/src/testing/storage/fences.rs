//! Claiming fencing tokens.

use crate::error::Error;
use crate::model::Trigger;
use crate::storage::Fence;
use crate::testing::{OpenStorage, sample_job, sample_record, t0};

/// **Claims**: a claimed token exceeds every token stored or used before (even when the candidate is
/// lower, as after a coordinator lost its data), and writes under any older token are refused from then on.
pub async fn claimed_tokens_exceed_every_earlier_one(open: &dyn OpenStorage) {
    let s = open.open().await;
    let scope = "claim-leader";
    assert_eq!(s.claim_fence(scope, 7).await.unwrap(), 8);
    // A coordinator that restarted its counters offers 1: the store still goes up.
    assert_eq!(s.claim_fence(scope, 1).await.unwrap(), 9);
    assert_eq!(s.claim_fence(scope, 20).await.unwrap(), 21);
    let job = sample_job("claimed");
    let old = Fence {
        scope: scope.into(),
        token: 20,
    };
    let rec = sample_record(&job, Trigger::Schedule, t0());
    let e = s
        .insert_executions(std::slice::from_ref(&rec), Some(&old))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Fenced { current: 21, .. }), "got {e:?}");
    let current = Fence {
        scope: scope.into(),
        token: 21,
    };
    s.insert_executions(std::slice::from_ref(&rec), Some(&current))
        .await
        .unwrap();
    // Two claimants offering the same candidate (two coordinators both starting at 1) get distinct tokens.
    let other = "claim-other";
    let a = s.claim_fence(other, 1).await.unwrap();
    let b = s.claim_fence(other, 1).await.unwrap();
    assert!(b > a, "{a} then {b}");
}
