//! ZooKeeper ACLs on a real server: with digest credentials every node jobsched creates can be read
//! and changed by that identity only; without them the coordinator still works (nodes open to anyone).

use std::time::Duration;

use jobsched::coord::Coordinator;
use jobsched_zk::{ZkConfig, ZkCoordinator, ZkDigest};
use zookeeper_client::{Acls, Client, CreateMode};

fn hosts() -> String {
    std::env::var("JOBSCHED_TEST_ZOOKEEPER").unwrap_or_else(|_| "127.0.0.1:2181".to_owned())
}

fn config(root: &str) -> ZkConfig {
    ZkConfig::parse(&hosts())
        .unwrap()
        .with_root(root.to_owned())
        .with_session_timeout(Duration::from_secs(4))
}

/// A plain client on the whole tree, authenticated as `auth` (`user:password`) if given.
async fn outsider(auth: Option<&str>) -> Client {
    let mut c = Client::connector().with_session_timeout(Duration::from_secs(4));
    if let Some(a) = auth {
        c = c.with_auth("digest", a.as_bytes());
    }
    c.connect(&hosts()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_digest_credentials_nobody_else_can_change_or_read_jobsched_nodes() {
    let root = format!("/jobsched-acl-{:016x}", fastrand::u64(..));
    let digest = ZkDigest::parse("jobsched-acl:right-password").unwrap();
    let c = match ZkCoordinator::connect(config(&root).with_digest(digest.clone())).await {
        Ok(c) => c,
        Err(e) => {
            jobsched_testkit::unreachable::<()>(format!("ZooKeeper is unreachable ({e})"));
            return;
        }
    };
    let _member = c
        .register("executors", "exec-1", serde_json::json!({"capacity": 1}))
        .await
        .unwrap();
    c.put("config", b"{\"version\":1}", None).await.unwrap();
    let _lead = c.campaign("leader", "s1").await.unwrap();

    let mut children = outsider(Some("jobsched-acl:right-password"))
        .await
        .list_children(&root)
        .await
        .unwrap();
    children.sort();
    assert!(
        !children.is_empty(),
        "jobsched created its nodes under {root}"
    );
    for (who, client) in [
        ("an unauthenticated client", outsider(None).await),
        (
            "another identity",
            outsider(Some("intruder:wrong-password")).await,
        ),
    ] {
        // Reading, publishing a configuration, registering a fake executor, deleting election nodes.
        let read = client.get_data(&format!("{root}/kv/config")).await;
        assert_eq!(
            read.err(),
            Some(zookeeper_client::Error::NoAuth),
            "{who} reads the configuration"
        );
        let write = client
            .set_data(
                &format!("{root}/kv/config"),
                b"{\"version\":9223372036854775808}",
                None,
            )
            .await;
        assert_eq!(
            write.err(),
            Some(zookeeper_client::Error::NoAuth),
            "{who} publishes"
        );
        for dir in &children {
            let fake = client
                .create(
                    &format!("{root}/{dir}/fake"),
                    b"{}",
                    &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
                )
                .await;
            assert_eq!(
                fake.err(),
                Some(zookeeper_client::Error::NoAuth),
                "{who} creates in {dir}"
            );
            let list = client.list_children(&format!("{root}/{dir}")).await;
            assert_eq!(
                list.err(),
                Some(zookeeper_client::Error::NoAuth),
                "{who} lists {dir}"
            );
        }
        let grab = client
            .create(
                &format!("{root}/evil"),
                b"",
                &CreateMode::Persistent.with_acls(Acls::anyone_all()),
            )
            .await;
        assert_eq!(
            grab.err(),
            Some(zookeeper_client::Error::NoAuth),
            "{who} writes the root"
        );
    }
    // The coordinator itself keeps working under its identity.
    assert_eq!(c.members("executors").await.unwrap().borrow().len(), 1);
    assert_eq!(c.get("config").await.unwrap().unwrap().version, 1);
    c.put("config", b"{\"version\":2}", Some(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_the_coordinator_works_with_open_nodes() {
    let root = format!("/jobsched-open-{:016x}", fastrand::u64(..));
    let c = match ZkCoordinator::connect(config(&root)).await {
        Ok(c) => c,
        Err(e) => {
            jobsched_testkit::unreachable::<()>(format!("ZooKeeper is unreachable ({e})"));
            return;
        }
    };
    c.put("config", b"{}", None).await.unwrap();
    let read = outsider(None)
        .await
        .get_data(&format!("{root}/kv/config"))
        .await;
    assert_eq!(read.unwrap().0, b"{}");
}
