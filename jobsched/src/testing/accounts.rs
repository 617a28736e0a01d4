//! Conformance of the account and audit part of a store ([`Accounts`](crate::storage::Accounts)) and of
//! the audited writes ([`Storage::write_jobs`] and the `audit` arguments): users, API tokens, ended
//! sessions, the audit log, and that an audit entry commits — or rolls back — with its change.

use chrono::{DateTime, TimeDelta, Utc};

use super::{OpenStorage, sample_job, t0};
use crate::error::Error;
use crate::model::{
    ApiToken, AuditEntry, AuditOutcome, AuditQuery, ExecutorId, ExecutorInfo, ExecutorRecord,
    JobId, PageRequest, Role, User,
};
use crate::storage::{JobWrite, Storage};

/// A user named `name`.
pub fn sample_user(name: &str, role: Role) -> User {
    User {
        user_id: format!("id-{name}"),
        name: name.to_owned(),
        role,
        password_hash: format!("$argon2id$v=19$hash-of-{name}"),
        disabled: false,
        sessions_since: t0(),
        create_time: t0(),
        update_time: t0(),
        version: 0,
    }
}

/// An audit entry of `action` on `target` at `t0() + secs`.
pub fn sample_audit(action: &str, target: &str, secs: i64) -> AuditEntry {
    AuditEntry {
        id: 0,
        time: t0() + TimeDelta::seconds(secs),
        user: "alice".into(),
        role: Some(Role::Admin),
        client: "127.0.0.1".into(),
        action: action.into(),
        target: target.into(),
        outcome: AuditOutcome::Success,
        message: String::new(),
        detail: serde_json::json!({"after": {"name": "ünïcode 'quoted' \"x\""}}),
    }
}

fn token(id: &str, user: &User, created: DateTime<Utc>) -> ApiToken {
    ApiToken {
        token_id: id.into(),
        name: format!("ci {id}"),
        user_id: user.user_id.clone(),
        role: Role::ReadOnly,
        secret_hash: format!("{:064x}", id.len()),
        create_time: created,
        expire_time: Some(created + TimeDelta::days(30)),
        revoke_time: None,
    }
}

async fn audit_of(s: &dyn Storage, target: &str) -> Vec<AuditEntry> {
    s.list_audit(&AuditQuery {
        target: Some(target.into()),
        page: PageRequest::new(1, 1000).unwrap(),
        ..AuditQuery::default()
    })
    .await
    .unwrap()
    .items
}

/// Users: created once per name, found by id and name, updated at their version, listed by name, deleted
/// with their tokens.
pub async fn users_are_kept_by_unique_name(open: &dyn OpenStorage) {
    let s = open.open().await;
    // Another administrator, so that alice may stop being one.
    s.create_user(&sample_user("root", Role::Admin), &[])
        .await
        .unwrap();
    let alice = s
        .create_user(&sample_user("alice", Role::Admin), &[])
        .await
        .unwrap();
    assert_eq!(alice.version, 1);
    let mut twin = sample_user("alice", Role::User);
    twin.user_id = "another-id".into();
    assert!(
        matches!(
            s.create_user(&twin, &[]).await,
            Err(Error::AlreadyExists { .. })
        ),
        "a name is taken once"
    );
    s.create_user(&sample_user("bob", Role::ReadOnly), &[])
        .await
        .unwrap();
    assert_eq!(s.get_user("id-alice").await.unwrap(), alice);
    assert_eq!(s.find_user("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(s.find_user("carol").await.unwrap(), None);
    assert!(matches!(
        s.get_user("nobody").await,
        Err(Error::NotFound { .. })
    ));

    let mut changed = alice.clone();
    changed.role = Role::User;
    changed.disabled = true;
    changed.password_hash = "$argon2id$new".into();
    changed.sessions_since = t0() + TimeDelta::seconds(5);
    changed.name = "renamed".into();
    let stored = s.update_user(&changed, &[]).await.unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(
        (stored.role, stored.disabled, stored.name.as_str()),
        (Role::User, true, "alice"),
        "an update changes the role and flags, never the name"
    );
    assert_eq!(s.get_user("id-alice").await.unwrap(), stored);
    assert!(
        matches!(
            s.update_user(&changed, &[]).await,
            Err(Error::Conflict { .. })
        ),
        "an update against an old version is refused"
    );

    let page = s.list_users(PageRequest::new(1, 1).unwrap()).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items[0].name, "alice");
    let page = s.list_users(PageRequest::new(2, 1).unwrap()).await.unwrap();
    assert_eq!(page.items[0].name, "bob");

    s.create_token(&token("tok-alice", &stored, t0()), &[])
        .await
        .unwrap();
    s.delete_user("id-alice", &[]).await.unwrap();
    assert!(matches!(
        s.get_user("id-alice").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(s.find_user("alice").await.unwrap(), None);
    assert!(
        matches!(s.get_token("tok-alice").await, Err(Error::NotFound { .. })),
        "a deleted user's tokens are deleted with them"
    );
    assert!(matches!(
        s.delete_user("id-alice", &[]).await,
        Err(Error::NotFound { .. })
    ));
    // The name is free again.
    s.create_user(&sample_user("alice", Role::User), &[])
        .await
        .unwrap();
    // Concurrent creates of one name through separate handles: one wins, the others are told the name
    // is taken, and the stored user is the winner (no create overwrites another).
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..6 {
        let handle = open.open().await;
        let mut u = sample_user("dave", Role::User);
        u.user_id = format!("id-dave-{i}");
        racers.spawn(async move { (u.user_id.clone(), handle.create_user(&u, &[]).await) });
    }
    let results = racers.join_all().await;
    let winners: Vec<&String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one create of a name wins: {results:?}"
    );
    assert!(
        results
            .iter()
            .all(|(_, r)| r.is_ok() || matches!(r, Err(Error::AlreadyExists { .. }))),
        "the losers are told the name is taken: {results:?}"
    );
    let dave = s.find_user("dave").await.unwrap().expect("dave is stored");
    assert_eq!(&dave.user_id, winners[0]);
}

/// The last enabled administrator stays one: demoting, disabling or deleting them fails while no other
/// enabled administrator exists.
pub async fn the_last_enabled_admin_stays_one(open: &dyn OpenStorage) {
    let s = open.open().await;
    let a = s
        .create_user(&sample_user("admin-a", Role::Admin), &[])
        .await
        .unwrap();
    let b = s
        .create_user(&sample_user("admin-b", Role::Admin), &[])
        .await
        .unwrap();
    let mut demoted = a.clone();
    demoted.role = Role::User;
    let a = s.update_user(&demoted, &[]).await.unwrap();
    let refused = |r: crate::Result<User>| {
        assert!(
            matches!(r, Err(Error::Conflict { .. })),
            "the last admin must stay one: {r:?}"
        )
    };
    let mut c = b.clone();
    c.role = Role::ReadOnly;
    refused(s.update_user(&c, &[]).await);
    let mut c = b.clone();
    c.disabled = true;
    refused(s.update_user(&c, &[]).await);
    assert!(matches!(
        s.delete_user(&b.user_id, &[]).await,
        Err(Error::Conflict { .. })
    ));
    // Their other changes go through (a new password, say).
    let mut c = b.clone();
    c.password_hash = "$argon2id$changed".into();
    let b = s.update_user(&c, &[]).await.unwrap();
    // With another enabled admin, they may go.
    let mut promoted = a.clone();
    promoted.role = Role::Admin;
    s.update_user(&promoted, &[]).await.unwrap();
    let mut c = b.clone();
    c.disabled = true;
    s.update_user(&c, &[]).await.unwrap();
    s.delete_user(&b.user_id, &[]).await.unwrap();
}

/// API tokens: stored for an existing user, listed newest first, revoked once.
pub async fn tokens_are_listed_and_revoked_once(open: &dyn OpenStorage) {
    let s = open.open().await;
    let u = s
        .create_user(&sample_user("tok-user", Role::User), &[])
        .await
        .unwrap();
    let other = s
        .create_user(&sample_user("tok-other", Role::User), &[])
        .await
        .unwrap();
    let orphan = ApiToken {
        user_id: "no-such-user".into(),
        ..token("t-orphan", &u, t0())
    };
    assert!(matches!(
        s.create_token(&orphan, &[]).await,
        Err(Error::NotFound { .. })
    ));
    let t1 = s.create_token(&token("t-1", &u, t0()), &[]).await.unwrap();
    let t2 = token("t-2", &u, t0() + TimeDelta::seconds(1));
    s.create_token(&t2, &[]).await.unwrap();
    s.create_token(&token("t-3", &other, t0()), &[])
        .await
        .unwrap();
    assert!(matches!(
        s.create_token(&t2, &[]).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(s.get_token("t-1").await.unwrap(), t1);
    let all = PageRequest::new(1, 100).unwrap();
    let mine = s.list_tokens(Some(&u.user_id), all).await.unwrap();
    let ids: Vec<&str> = mine.items.iter().map(|t| t.token_id.as_str()).collect();
    assert_eq!(ids, ["t-2", "t-1"], "a user's tokens, newest first");
    assert_eq!(s.list_tokens(None, all).await.unwrap().total, 3);

    let at = t0() + TimeDelta::seconds(10);
    let revoked = s.revoke_token("t-1", at, &[]).await.unwrap();
    assert_eq!(revoked.revoke_time, Some(at));
    let again = s
        .revoke_token("t-1", at + TimeDelta::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(
        again.revoke_time,
        Some(at),
        "the first revocation time stays"
    );
    assert_eq!(s.get_token("t-1").await.unwrap().revoke_time, Some(at));
    assert!(s.get_token("t-2").await.unwrap().revoke_time.is_none());
    assert!(matches!(
        s.revoke_token("t-none", at, &[]).await,
        Err(Error::NotFound { .. })
    ));
}

/// Ended sessions are remembered until their tokens expire, then purged.
pub async fn ended_sessions_are_remembered_until_expiry(open: &dyn OpenStorage) {
    let s = open.open().await;
    assert!(!s.session_ended("sess-1").await.unwrap());
    s.end_session("sess-1", t0() + TimeDelta::hours(1), &[])
        .await
        .unwrap();
    s.end_session("sess-1", t0() + TimeDelta::hours(1), &[])
        .await
        .unwrap();
    s.end_session("sess-2", t0() + TimeDelta::hours(3), &[])
        .await
        .unwrap();
    assert!(s.session_ended("sess-1").await.unwrap());
    assert!(!s.session_ended("sess-3").await.unwrap());
    let n = s
        .purge_ended_sessions(t0() + TimeDelta::hours(2))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(!s.session_ended("sess-1").await.unwrap());
    assert!(s.session_ended("sess-2").await.unwrap());
}

/// The audit log: ids grow, newest first, filters by user, action (or action family), target and time,
/// pages with a total, keeps detail verbatim, purges old entries.
pub async fn audit_is_filtered_paged_and_purged(open: &dyn OpenStorage) {
    let s = open.open().await;
    let mut entries = vec![
        sample_audit("job.create", "job:a", 0),
        sample_audit("job.update", "job:a", 10),
        sample_audit("executor.disable", "executor:e1", 20),
        sample_audit("auth.login", "user:bob", 30),
    ];
    entries[3].user = "bob".into();
    entries[3].role = None;
    entries[3].outcome = AuditOutcome::Failed;
    entries[3].message = "wrong password".into();
    s.append_audit(&entries).await.unwrap();
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            page: PageRequest::new(1, 100).unwrap(),
            ..AuditQuery::default()
        };
        f(&mut q);
        q
    };
    let all = s.list_audit(&q(|_| {})).await.unwrap();
    assert_eq!(all.total, 4);
    let actions: Vec<&str> = all.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["auth.login", "executor.disable", "job.update", "job.create"],
        "newest first"
    );
    assert!(all.items[0].id > all.items[1].id && all.items[2].id > all.items[3].id);
    let login = &all.items[0];
    assert_eq!(
        (
            login.user.as_str(),
            login.role,
            login.outcome,
            login.message.as_str()
        ),
        ("bob", None, AuditOutcome::Failed, "wrong password")
    );
    let created = &all.items[3];
    assert_eq!(created.detail, entries[0].detail, "detail kept verbatim");
    assert_eq!(created.time, t0());
    let by = |q: &AuditQuery| {
        let s = s.clone();
        let q = q.clone();
        async move { s.list_audit(&q).await.unwrap().total }
    };
    assert_eq!(by(&q(|q| q.user = Some("bob".into()))).await, 1);
    assert_eq!(by(&q(|q| q.action = Some("job.".into()))).await, 2);
    assert_eq!(by(&q(|q| q.action = Some("job.update".into()))).await, 1);
    assert_eq!(by(&q(|q| q.target = Some("job:a".into()))).await, 2);
    assert_eq!(
        by(&q(|q| {
            q.from = Some(t0() + TimeDelta::seconds(10));
            q.to = Some(t0() + TimeDelta::seconds(30));
        }))
        .await,
        2
    );
    let page2 = s
        .list_audit(&AuditQuery {
            page: PageRequest::new(2, 3).unwrap(),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((page2.total, page2.items.len()), (4, 1));
    assert_eq!(page2.items[0].action, "job.create");

    let n = s
        .purge_audit(t0() + TimeDelta::seconds(15), 1000)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(s.list_audit(&q(|_| {})).await.unwrap().total, 2);
}

/// Job writes: a batch of creates, updates and deletes applies all or none, and its audit entries commit
/// with it — or not at all.
pub async fn job_writes_commit_with_their_audit(open: &dyn OpenStorage) {
    let s = open.open().await;
    let a = sample_job("jw-a");
    let b = sample_job("jw-b");
    s.create_jobs(std::slice::from_ref(&a)).await.unwrap();
    let stored_a = s.get_job(&a.job_id).await.unwrap();
    let mut a2 = stored_a.clone();
    a2.name = "changed".into();
    let c = sample_job("jw-c");
    let out = s
        .write_jobs(
            &[
                JobWrite::Update(&a2),
                JobWrite::Create(&b),
                JobWrite::Create(&c),
            ],
            &[
                sample_audit("job.update", "job:jw-a", 1),
                sample_audit("job.create", "job:jw-b", 1),
            ],
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!((out[0].version, out[0].name.as_str()), (2, "changed"));
    assert_eq!((out[1].version, out[2].version), (1, 1));
    assert_eq!(audit_of(s.as_ref(), "job:jw-a").await.len(), 1);
    assert_eq!(audit_of(s.as_ref(), "job:jw-b").await.len(), 1);
    let mut found = s
        .get_jobs(&[
            a.job_id.clone(),
            c.job_id.clone(),
            JobId::new("jw-none").unwrap(),
        ])
        .await
        .unwrap();
    found.sort_by(|x, y| x.job_id.cmp(&y.job_id));
    assert_eq!(found, vec![out[0].clone(), out[2].clone()]);

    // One failing write (a stale version) fails the batch: nothing of it, nor its audit, is stored.
    let d = sample_job("jw-d");
    let e = s
        .write_jobs(
            &[
                JobWrite::Create(&d),
                JobWrite::Delete {
                    job_id: &c.job_id,
                    expected_version: None,
                },
                JobWrite::Update(&a2),
            ],
            &[sample_audit("job.import", "job:jw-d", 2)],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "got {e:?}");
    assert!(matches!(
        s.get_job(&d.job_id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(s.get_job(&c.job_id).await.is_ok(), "the delete rolled back");
    assert!(
        audit_of(s.as_ref(), "job:jw-d").await.is_empty(),
        "the audit entry of a failed batch is not stored"
    );
    let e = s
        .write_jobs(&[JobWrite::Create(&d), JobWrite::Update(&out[2])], &[])
        .await;
    assert!(e.is_ok(), "{e:?}");
    let twice = s
        .write_jobs(
            &[
                JobWrite::Update(&out[0]),
                JobWrite::Delete {
                    job_id: &a.job_id,
                    expected_version: None,
                },
            ],
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(twice, Error::Invalid { .. }),
        "an id twice in a batch: {twice:?}"
    );
    s.write_jobs(
        &[JobWrite::Delete {
            job_id: &a.job_id,
            expected_version: Some(2),
        }],
        &[sample_audit("job.delete", "job:jw-a", 3)],
    )
    .await
    .unwrap();
    assert!(matches!(
        s.get_job(&a.job_id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(audit_of(s.as_ref(), "job:jw-a").await.len(), 2);
}

/// Executor, setting, user and token changes store their audit entries with them; a refused change stores
/// none.
pub async fn other_changes_commit_with_their_audit(open: &dyn OpenStorage) {
    let s = open.open().await;
    let info = ExecutorInfo {
        executor_id: ExecutorId::new("audited-exec").unwrap(),
        host: "h".into(),
        port: 1,
        capacity: 1,
        group: String::new(),
        labels: Default::default(),
        handlers: vec!["shell".into()],
        version: "x".into(),
    };
    s.upsert_executor(&ExecutorRecord::from_info(&info, t0()))
        .await
        .unwrap();
    s.set_executor_enabled(
        &info.executor_id,
        false,
        &[sample_audit("executor.disable", "executor:audited-exec", 1)],
    )
    .await
    .unwrap();
    assert_eq!(audit_of(s.as_ref(), "executor:audited-exec").await.len(), 1);
    assert!(
        s.set_executor_enabled(
            &ExecutorId::new("ghost-exec").unwrap(),
            true,
            &[sample_audit("executor.enable", "executor:ghost-exec", 1)],
        )
        .await
        .is_err()
    );
    assert!(audit_of(s.as_ref(), "executor:ghost-exec").await.is_empty());

    s.put_value(
        "audited-key",
        "1",
        Some(0),
        None,
        &[sample_audit("config.update", "config", 2)],
    )
    .await
    .unwrap();
    assert!(
        s.put_value(
            "audited-key",
            "2",
            Some(0),
            None,
            &[sample_audit("config.update", "config", 3)],
        )
        .await
        .is_err()
    );
    assert_eq!(audit_of(s.as_ref(), "config").await.len(), 1);

    let u = sample_user("audited", Role::User);
    s.create_user(&u, &[sample_audit("user.create", "user:audited", 4)])
        .await
        .unwrap();
    assert!(
        s.create_user(&u, &[sample_audit("user.create", "user:audited", 5)])
            .await
            .is_err()
    );
    let mut stale = s.get_user(&u.user_id).await.unwrap();
    stale.version = 7;
    assert!(
        s.update_user(&stale, &[sample_audit("user.update", "user:audited", 6)])
            .await
            .is_err()
    );
    assert_eq!(audit_of(s.as_ref(), "user:audited").await.len(), 1);

    let stored = s.get_user(&u.user_id).await.unwrap();
    s.create_token(
        &token("aud-tok", &stored, t0()),
        &[sample_audit("token.create", "token:aud-tok", 7)],
    )
    .await
    .unwrap();
    s.revoke_token(
        "aud-tok",
        t0(),
        &[sample_audit("token.revoke", "token:aud-tok", 8)],
    )
    .await
    .unwrap();
    s.end_session(
        "aud-sess",
        t0(),
        &[sample_audit("auth.logout", "session:aud-sess", 9)],
    )
    .await
    .unwrap();
    assert_eq!(audit_of(s.as_ref(), "token:aud-tok").await.len(), 2);
    assert_eq!(audit_of(s.as_ref(), "session:aud-sess").await.len(), 1);
}

/// Every behaviour of this suite, by function name (for the coverage check in backend tests).
pub fn behaviours() -> Vec<&'static str> {
    super::behaviours_in(include_str!("accounts.rs"))
}
