//! The central configuration as broadcast to every process under [`CONFIG_KEY`].
//!
//! Storage holds the record (`Storage::system_config`, versioned); the coordinator key carries a copy with
//! that storage version, so that every scheduler and executor learns of a change through a watch. A
//! process applies a value only if its version is newer than the one it applies, and a publisher never
//! replaces a newer copy with an older one, so two racing updates settle on the later one everywhere.

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{CONFIG_KEY, Coordinator};
use crate::error::{Error, Result};
use crate::model::SystemConfig;
use crate::storage::Versioned;

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

/// Publishes `config` unless the key already carries the same or a newer version.
pub(crate) async fn publish(
    coordinator: &dyn Coordinator,
    config: &Versioned<SystemConfig>,
) -> Result<()> {
    let bytes = encode(config);
    for _ in 0..16 {
        let current = coordinator.get(CONFIG_KEY).await?;
        let expected = match &current {
            None => 0,
            Some(raw) => {
                if decode(raw).is_some_and(|p| p.version >= config.version) {
                    return Ok(());
                }
                raw.version
            }
        };
        match coordinator.put(CONFIG_KEY, &bytes, Some(expected)).await {
            Ok(_) => return Ok(()),
            Err(Error::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::backend(
        "coordination",
        "publishing the system configuration kept conflicting with other writers",
    ))
}

/// The newer of what a process applies and a broadcast value, if the broadcast is newer.
pub(crate) fn newer(
    applied_version: u64,
    raw: Option<&Versioned<Vec<u8>>>,
) -> Option<Versioned<SystemConfig>> {
    raw.and_then(decode).filter(|p| p.version > applied_version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::LocalCoordinator;

    fn cfg(version: u64, kill_grace_secs: u32) -> Versioned<SystemConfig> {
        Versioned {
            value: SystemConfig {
                kill_grace_secs,
                ..SystemConfig::default()
            },
            version,
        }
    }

    #[tokio::test]
    async fn an_older_version_never_replaces_a_newer_one() {
        let c = LocalCoordinator::new();
        publish(&c, &cfg(2, 7)).await.unwrap();
        publish(&c, &cfg(1, 9)).await.unwrap();
        let got = decode(&c.get(CONFIG_KEY).await.unwrap().unwrap()).unwrap();
        assert_eq!((got.version, got.value.kill_grace_secs), (2, 7));
        publish(&c, &cfg(3, 1)).await.unwrap();
        let raw = c.get(CONFIG_KEY).await.unwrap();
        assert_eq!(newer(2, raw.as_ref()).map(|p| p.version), Some(3));
        assert!(newer(3, raw.as_ref()).is_none());
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
