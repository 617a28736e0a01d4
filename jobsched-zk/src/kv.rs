//! Watched settings: a key is a persistent znode `/kv/<key>`; its version is the znode's data version
//! + 1 (1 for the first write, as the trait wants).

use std::sync::{Arc, Weak};

use jobsched::storage::Versioned;
use jobsched::{Error, Result};
use tokio::sync::watch;
use zookeeper_client::CreateMode;

use crate::error::zk;
use crate::follow::follow;
use crate::members::ensure_dir;
use crate::paths::kv_path;
use crate::session::Inner;

fn version(stat: &zookeeper_client::Stat) -> u64 {
    stat.version as u64 + 1
}

pub(crate) async fn get(inner: &Inner, key: &str) -> Result<Option<Versioned<Vec<u8>>>> {
    let sess = inner.session().await?;
    match sess.client.get_data(&kv_path(key)).await {
        Ok((value, stat)) => Ok(Some(Versioned {
            value,
            version: version(&stat),
        })),
        Err(zookeeper_client::Error::NoNode) => Ok(None),
        Err(e) => Err(zk(e, &format!("reading {key}"))),
    }
}

fn conflict(key: &str, expected: u64) -> Error {
    Error::conflict(format!(
        "setting '{key}' is not at version {expected} (changed meanwhile)"
    ))
}

pub(crate) async fn put(
    inner: &Inner,
    key: &str,
    value: &[u8],
    expected: Option<u64>,
) -> Result<u64> {
    let sess = inner.session().await?;
    let client = &sess.client;
    ensure_dir(&sess, "/kv").await?;
    let path = kv_path(key);
    let create = CreateMode::Persistent.with_acls(sess.acls);
    match expected {
        Some(0) => match client.create(&path, value, &create).await {
            Ok((stat, _)) => Ok(version(&stat)),
            Err(zookeeper_client::Error::NodeExists) => Err(conflict(key, 0)),
            Err(e) => Err(zk(e, &format!("writing {key}"))),
        },
        Some(v) => {
            let zk_version = i32::try_from(v - 1).map_err(|_| conflict(key, v))?;
            match client.set_data(&path, value, Some(zk_version)).await {
                Ok(stat) => Ok(version(&stat)),
                Err(zookeeper_client::Error::BadVersion | zookeeper_client::Error::NoNode) => {
                    Err(conflict(key, v))
                }
                Err(e) => Err(zk(e, &format!("writing {key}"))),
            }
        }
        None => loop {
            match client.set_data(&path, value, None).await {
                Ok(stat) => return Ok(version(&stat)),
                Err(zookeeper_client::Error::NoNode) => {
                    match client.create(&path, value, &create).await {
                        Ok((stat, _)) => return Ok(version(&stat)),
                        // Created meanwhile: write over it.
                        Err(zookeeper_client::Error::NodeExists) => continue,
                        Err(e) => return Err(zk(e, &format!("writing {key}"))),
                    }
                }
                Err(e) => return Err(zk(e, &format!("writing {key}"))),
            }
        },
    }
}

/// Keeps `tx` current with the value of `key` until the coordinator closes.
pub(crate) async fn follow_key(
    inner: Weak<Inner>,
    key: String,
    tx: watch::Sender<Option<Versioned<Vec<u8>>>>,
) {
    let path = kv_path(&key);
    let read = |strong: Arc<Inner>| {
        let (path, key) = (path.clone(), key.clone());
        async move {
            let sess = strong.session().await?;
            let (client, lost) = (sess.client.clone(), sess.lost.clone());
            drop(sess);
            match client.get_and_watch_data(&path).await {
                Ok((value, stat, watcher)) => Ok((
                    Some(Versioned {
                        value,
                        version: version(&stat),
                    }),
                    watcher,
                    lost,
                )),
                Err(zookeeper_client::Error::NoNode) => {
                    // Watch for its creation.
                    let (stat, watcher) = client
                        .check_and_watch_stat(&path)
                        .await
                        .map_err(|e| zk(e, &format!("watching {key}")))?;
                    if stat.is_some() {
                        return Err(Error::unavailable(
                            crate::error::BACKEND,
                            "created meanwhile; read again",
                        ));
                    }
                    Ok((None, watcher, lost))
                }
                Err(e) => Err(zk(e, &format!("watching {key}"))),
            }
        }
    };
    let what = format!("setting {key}");
    follow(inner, what, tx, read, |cur, value| {
        let changed = *cur != value;
        *cur = value;
        changed
    })
    .await
}
