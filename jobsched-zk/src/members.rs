//! Membership: a member is an ephemeral znode `/groups/<group>/<id>` carrying its announced data; its
//! epoch is the znode's creation zxid, which grows with every registration anywhere in the ensemble.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use jobsched::coord::{Member, Members, Registration};
use jobsched::{Error, Result};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client::CreateMode;

use crate::error::zk;
use crate::follow::{Read, follow};
use crate::paths::{decode, encode, group_dir};
use crate::session::{Inner, Sess};

/// Creates `dir` and its parents if missing, with the session's ACL.
pub(crate) async fn ensure_dir(sess: &Sess, dir: &str) -> Result<()> {
    sess.client
        .mkdir(dir, &CreateMode::Persistent.with_acls(sess.acls))
        .await
        .map_err(|e| zk(e, &format!("creating {dir}")))
}

pub(crate) struct ZkRegistration {
    pub inner: Weak<Inner>,
    pub generation: u64,
    pub path: String,
    pub epoch: u64,
    pub lost: CancellationToken,
}

#[async_trait]
impl Registration for ZkRegistration {
    fn epoch(&self) -> u64 {
        self.epoch
    }

    fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    async fn deregister(self: Box<Self>) -> Result<()> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(());
        };
        let Some(sess) = inner.session_if(self.generation).await else {
            return Ok(());
        };
        match sess.client.delete(&self.path, None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => {
                self.lost.cancel();
                Ok(())
            }
            Err(e) => Err(zk(e, "deregistering")),
        }
    }
}

pub(crate) async fn register(
    inner: &Arc<Inner>,
    group: &str,
    id: &str,
    data: serde_json::Value,
) -> Result<Box<dyn Registration>> {
    let sess = inner.session().await?;
    let dir = group_dir(group);
    ensure_dir(&sess, &dir).await?;
    let path = format!("{dir}/{}", encode(id));
    let bytes = serde_json::to_vec(&data).expect("JSON serialises");
    let ephemeral = CreateMode::Ephemeral.with_acls(sess.acls);
    match sess.client.create(&path, &bytes, &ephemeral).await {
        Ok((stat, _)) => Ok(Box::new(ZkRegistration {
            inner: Arc::downgrade(inner),
            generation: sess.generation,
            path,
            epoch: stat.czxid as u64,
            lost: sess.lost.child_token(),
        })),
        Err(zookeeper_client::Error::NodeExists) => Err(Error::AlreadyExists {
            kind: "member",
            id: format!("{group}/{id} (another live session holds it)"),
        }),
        Err(e) => Err(zk(e, &format!("registering {group}/{id}"))),
    }
}

/// Reads the group once and leaves a watch on its children.
async fn read_group(inner: &Inner, dir: &str) -> Result<Read<Vec<Member>>> {
    let sess = inner.session().await?;
    ensure_dir(&sess, dir).await?;
    let client = sess.client.clone();
    let lost = sess.lost.clone();
    drop(sess);
    let (children, watcher) = client
        .list_and_watch_children(dir)
        .await
        .map_err(|e| zk(e, &format!("listing {dir}")))?;
    let mut members = Vec::with_capacity(children.len());
    for child in children {
        match client.get_data(&format!("{dir}/{child}")).await {
            Ok((data, stat)) => match serde_json::from_slice(&data) {
                Ok(data) => members.push(Member {
                    id: decode(&child),
                    epoch: stat.czxid as u64,
                    data,
                }),
                Err(e) => {
                    tracing::warn!(member = %child, error = %e, "member data is not JSON; ignored")
                }
            },
            // Left between the listing and the read.
            Err(zookeeper_client::Error::NoNode) => {}
            Err(e) => return Err(zk(e, "reading a member")),
        }
    }
    members.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((members, watcher, lost))
}

/// The members of `group` now.
pub(crate) async fn current(inner: &Inner, group: &str) -> Result<Vec<Member>> {
    read_group(inner, &group_dir(group))
        .await
        .map(|(m, _, _)| m)
}

/// Keeps `tx` current with the members of `group` until the coordinator closes: one watch at a time,
/// re-read on every change and after a new session.
pub(crate) async fn follow_group(inner: Weak<Inner>, group: String, tx: watch::Sender<Members>) {
    let dir = group_dir(&group);
    let read = |strong: Arc<Inner>| {
        let dir = dir.clone();
        async move { read_group(&strong, &dir).await }
    };
    follow(inner, format!("group {group}"), tx, read, |cur, members| {
        let changed = **cur != members;
        if changed {
            *cur = Arc::new(members);
        }
        changed
    })
    .await
}
