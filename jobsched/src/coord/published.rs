//! The central configuration as broadcast to every process under [`CONFIG_KEY`].
//!
//! Storage holds the record (`Storage::system_config`, versioned); the coordinator key carries a copy with
//! that storage version, so that every scheduler and executor learns of a change through a watch.
//!
//! * A publisher writes what storage holds, read just before: a copy that is missing, behind, or at a
//!   version storage does not have (written by someone else, or by a store that was restored) is
//!   replaced; a copy at storage's version is left alone.
//! * The active scheduler applies storage's record whenever the copy changes, never the copy itself,
//!   and writes storage's record back if the copy differs.
//! * Executors and standbys, which read no storage, apply the copy whenever its version changes (up or
//!   down): the copy is only ever written by publishers, so its current value is the latest record.
//!   A copy at a version storage does not have is therefore undone by the active scheduler at once,
//!   rather than blocking every later change.

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{CONFIG_KEY, Coordinator};
use crate::error::{Error, Result};
use crate::model::SystemConfig;
use crate::storage::{Storage, StorageExt, Versioned};

#[derive(Serialize, Deserialize)]
struct Published {
    version: u64,
    config: SystemConfig,
}

/// The broadcast form of a stored configuration.
pub(crate) fn encode(config: &Versioned<SystemConfig>) -> Vec<u8> {
    serde_json::to_vec(&Published {
        version: config.version,
        config: config.value.clone(),
    })
    .expect("configuration serialises")
}

/// Decodes a broadcast configuration; an undecodable or invalid one is logged and ignored.
pub(crate) fn decode(raw: &Versioned<Vec<u8>>) -> Option<Versioned<SystemConfig>> {
    match serde_json::from_slice::<Published>(&raw.value) {
        Ok(p) => match p.config.validate() {
            Ok(()) => Some(Versioned {
                value: p.config,
                version: p.version,
            }),
            Err(e) => {
                warn!(error = %e, "ignoring an invalid system configuration");
                None
            }
        },
        Err(e) => {
            warn!(error = %e, "ignoring an undecodable system configuration");
            None
        }
    }
}

/// Writes storage's configuration to the key unless the key already carries that version (see the
/// module's rules). Returns what storage holds.
pub(crate) async fn publish(
    coordinator: &dyn Coordinator,
    storage: &dyn Storage,
) -> Result<Versioned<SystemConfig>> {
    for _ in 0..16 {
        let stored = storage.system_config().await?;
        let current = coordinator.get(CONFIG_KEY).await?;
        let expected = match &current {
            None => 0,
            Some(raw) => match decode(raw) {
                Some(p) if p.version == stored.version => return Ok(stored),
                Some(p) if p.version > stored.version => {
                    warn!(
                        published = p.version,
                        stored = stored.version,
                        "the published system configuration has a version storage does not have; \
                         replacing it with the stored one"
                    );
                    raw.version
                }
                _ => raw.version,
            },
        };
        match coordinator
            .put(CONFIG_KEY, &encode(&stored), Some(expected))
            .await
        {
            Ok(_) => return Ok(stored),
            Err(Error::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::backend(
        "coordination",
        "publishing the system configuration kept conflicting with other writers",
    ))
}

/// The broadcast value if its version differs from the one a process applies.
pub(crate) fn changed(
    applied_version: u64,
    raw: Option<&Versioned<Vec<u8>>>,
) -> Option<Versioned<SystemConfig>> {
    raw.and_then(decode)
        .filter(|p| p.version != applied_version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::LocalCoordinator;

    fn cfg(kill_grace_secs: u32) -> SystemConfig {
        SystemConfig {
            kill_grace_secs,
            ..SystemConfig::default()
        }
    }

    async fn published(c: &LocalCoordinator) -> (u64, u32) {
        let got = decode(&c.get(CONFIG_KEY).await.unwrap().unwrap()).unwrap();
        (got.version, got.value.kill_grace_secs)
    }

    #[tokio::test]
    async fn the_key_carries_what_storage_holds_and_a_version_storage_lacks_is_replaced() {
        let c = LocalCoordinator::new();
        let store = crate::storage::MemoryStorage::new();
        let v1 = store.put_system_config(&cfg(7), None, &[]).await.unwrap();
        publish(&c, &store).await.unwrap();
        assert_eq!(published(&c).await, (v1, 7));
        // Someone writes a far newer version: a publisher puts storage's record back.
        let forged = Versioned {
            value: cfg(99),
            version: u64::MAX / 2,
        };
        c.put(CONFIG_KEY, &encode(&forged), None).await.unwrap();
        let raw = c.get(CONFIG_KEY).await.unwrap();
        assert_eq!(
            changed(v1, raw.as_ref()).map(|p| p.version),
            Some(u64::MAX / 2)
        );
        publish(&c, &store).await.unwrap();
        assert_eq!(published(&c).await, (v1, 7));
        // A follower that applied the forged copy follows the correction (a version change down).
        let raw = c.get(CONFIG_KEY).await.unwrap();
        assert_eq!(
            changed(u64::MAX / 2, raw.as_ref()).map(|p| p.version),
            Some(v1)
        );
        assert!(changed(v1, raw.as_ref()).is_none());
        // A later real change spreads.
        let v2 = store
            .put_system_config(&cfg(3), Some(v1), &[])
            .await
            .unwrap();
        publish(&c, &store).await.unwrap();
        assert_eq!(published(&c).await, (v2, 3));
    }

    #[test]
    fn undecodable_and_invalid_values_are_ignored() {
        let raw = |b: &[u8]| Versioned {
            value: b.to_vec(),
            version: 1,
        };
        assert!(decode(&raw(b"not json")).is_none());
        assert!(decode(&raw(br#"{"version":1,"config":{"max_output_bytes":5}}"#)).is_none());
        assert!(decode(&raw(br#"{"version":1,"config":{}}"#)).is_some());
    }
}
