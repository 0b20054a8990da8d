//! [`EtcdStore`] against a real etcd (the `etcd` binary from etcd-server, started per test on
//! free loopback ports): the behaviours the embedded store's tests check — guarded commits,
//! leases expiring and kept alive past their TTL, watches seeing puts and deletes, revisions
//! increasing — plus what only a network store has: a deployment prefix, an unreachable
//! cluster (Unavailable naming the registry, then recovery without a new store), one member of
//! three lost, and calls from inside an async runtime.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::etcd_store::EtcdStore;
use super::registry::{Change, Guard, LeaseId, Op, RegistryError, RegistryStore};
use super::registry_url::EtcdTarget;

#[path = "../../../tests/src/etcd.rs"]
mod test_etcd;
use test_etcd::TestEtcd;

fn store(etcd: &TestEtcd, prefix: &str) -> EtcdStore {
    let url = format!("{}/{prefix}", etcd.url());
    EtcdStore::connect(&EtcdTarget::parse(&url).unwrap()).unwrap()
}

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        lease: None,
    }
}

/// The next change, polled every 50 ms at most 200 times.
fn next_change(rx: &mut UnboundedReceiver<Change>, what: &str) -> Change {
    for _ in 0..200 {
        match rx.try_recv() {
            Ok(c) => return c,
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("watch for {what} ended: {e}"),
        }
    }
    panic!("no change seen for {what}");
}

/// Polls `f` every 100 ms at most 100 times until it is true.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gave up waiting for {what}");
}

#[test]
fn a_commit_is_all_or_nothing_guards_decide_it_and_revisions_increase() {
    let etcd = TestEtcd::single();
    let s = store(&etcd, "t1");
    let r0 = s.revision().unwrap();
    let r1 = s
        .commit(
            &[Guard::Absent("t/acme".into())],
            &[put("t/acme", "1"), put("t/x", "2")],
        )
        .unwrap()
        .expect("first create commits");
    assert!(r1 > r0, "revision {r1} after {r0}");
    let again = s
        .commit(
            &[Guard::Absent("t/acme".into())],
            &[put("t/acme", "9"), put("t/y", "9")],
        )
        .unwrap();
    assert_eq!(again, None, "a failed guard writes nothing");
    let acme = s.get("t/acme").unwrap().unwrap();
    assert_eq!((acme.value.as_slice(), acme.revision), (&b"1"[..], r1));
    assert!(s.get("t/y").unwrap().is_none());
    let r2 = s
        .commit(&[Guard::At("t/acme".into(), r1)], &[put("t/acme", "3")])
        .unwrap()
        .expect("compare-and-swap at the current revision commits");
    assert!(r2 > r1);
    assert_eq!(
        s.commit(&[Guard::At("t/acme".into(), r1)], &[put("t/acme", "4")])
            .unwrap(),
        None
    );
    assert_eq!(
        s.commit(&[Guard::At("t/none".into(), r1)], &[put("t/none", "4")])
            .unwrap(),
        None
    );
    let keys: Vec<String> = s.list("t/").unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["t/acme", "t/x"]);
    assert_eq!(s.revision().unwrap(), r2);
    assert!(s.create("t/new", b"v".to_vec()).unwrap());
    assert!(!s.create("t/new", b"w".to_vec()).unwrap());
    let r3 = s
        .commit(&[], &[Op::Delete { key: "t/x".into() }])
        .unwrap()
        .unwrap();
    assert!(r3 > r2 && s.get("t/x").unwrap().is_none());
}

#[test]
fn a_deployment_prefix_keeps_two_registries_apart_on_one_cluster() {
    let etcd = TestEtcd::single();
    let (a, b) = (store(&etcd, "strata/a"), store(&etcd, "strata/b"));
    a.commit(&[], &[put("k", "from a")]).unwrap();
    assert!(b.get("k").unwrap().is_none());
    assert!(b.create("k", b"from b".to_vec()).unwrap());
    assert_eq!(a.get("k").unwrap().unwrap().value, b"from a");
    assert_eq!(a.list("").unwrap().len(), 1);
}

#[test]
fn keys_under_an_expired_lease_disappear_and_keep_alive_extends_it_past_its_ttl() {
    let etcd = TestEtcd::single();
    let s = store(&etcd, "t3");
    let lease = s.grant_lease(Duration::from_secs(2)).unwrap();
    let mut changes = s.watch("alive/");
    let lease_put = |key: &str, lease: LeaseId| {
        s.commit(
            &[],
            &[Op::Put {
                key: key.into(),
                value: b"x".to_vec(),
                lease: Some(lease),
            }],
        )
    };
    lease_put("alive/s1", lease).unwrap();
    assert!(
        matches!(next_change(&mut changes, "the put"), Change::Put(e) if e.key == "alive/s1" && e.lease == Some(lease))
    );
    // Kept alive for twice its TTL, the key stays.
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(500));
        s.keep_alive(lease).unwrap();
    }
    assert!(
        s.get("alive/s1").unwrap().is_some(),
        "a key kept alive past its TTL stays"
    );
    // Left alone, it goes; watchers and keep-alive say so; puts under it are refused.
    assert!(
        matches!(next_change(&mut changes, "the expiry"), Change::Delete { key, .. } if key == "alive/s1")
    );
    assert!(s.get("alive/s1").unwrap().is_none());
    assert!(matches!(s.keep_alive(lease), Err(RegistryError::NoLease(_))));
    assert!(matches!(
        lease_put("alive/s1", lease),
        Err(RegistryError::NoLease(_))
    ));
}

#[test]
fn watchers_see_puts_and_deletes_under_their_prefix_with_increasing_revisions() {
    let etcd = TestEtcd::single();
    let s = store(&etcd, "t4");
    let mut w = s.watch("work/");
    let r1 = s
        .commit(&[], &[put("work/1", "a"), put("other/1", "b")])
        .unwrap()
        .unwrap();
    let r2 = s
        .commit(&[], &[Op::Delete { key: "work/1".into() }])
        .unwrap()
        .unwrap();
    match next_change(&mut w, "the put") {
        Change::Put(e) => assert_eq!(
            (e.key.as_str(), e.value.as_slice(), e.revision),
            ("work/1", &b"a"[..], r1)
        ),
        other => panic!("expected the put, got {other:?}"),
    }
    assert_eq!(
        next_change(&mut w, "the delete"),
        Change::Delete {
            key: "work/1".into(),
            revision: r2
        }
    );
    assert!(w.try_recv().is_err(), "nothing outside the prefix");
}

#[test]
fn an_unreachable_cluster_is_unavailable_naming_the_registry_and_the_same_store_recovers() {
    let mut etcd = TestEtcd::single();
    let s = store(&etcd, "t5");
    let mut w = s.watch("k");
    s.commit(&[], &[put("k", "before")]).unwrap();
    assert!(matches!(next_change(&mut w, "the first put"), Change::Put(_)));
    etcd.kill(0);
    let err = s.get("k").unwrap_err();
    assert!(matches!(err, RegistryError::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&etcd.url()) && text.contains("get k"), "{text}");
    assert!(matches!(
        s.commit(&[], &[put("k", "x")]),
        Err(RegistryError::Unavailable { .. })
    ));
    etcd.restart(0);
    eventually("the store to answer again", || s.get("k").is_ok());
    assert_eq!(s.get("k").unwrap().unwrap().value, b"before");
    s.commit(&[], &[put("k", "after")]).unwrap();
    // The watch was opened again by itself and sees the new write.
    assert!(
        matches!(next_change(&mut w, "the put after the restart"), Change::Put(e) if e.value == b"after")
    );
}

#[test]
fn with_one_member_of_three_down_everything_works_and_without_quorum_it_is_unavailable() {
    let mut etcd = TestEtcd::cluster(3);
    let s = store(&etcd, "t6");
    s.commit(&[], &[put("k", "1")]).unwrap();
    // A follower lost: every call succeeds (the client goes around the dead endpoint). (A
    // write in flight while the leader itself dies may time out, as etcd's own clients see.)
    let leader = etcd.wait_leader();
    let follower = (leader + 1) % 3;
    etcd.kill(follower);
    for i in 0..10 {
        s.commit(&[], &[put("k", &i.to_string())]).unwrap();
        assert_eq!(s.get("k").unwrap().unwrap().value, i.to_string().as_bytes());
    }
    etcd.kill(leader);
    eventually("Unavailable without quorum", || {
        matches!(
            s.commit(&[], &[put("k", "3")]),
            Err(RegistryError::Unavailable { .. })
        )
    });
    etcd.restart(leader);
    eventually("commits once quorum is back", || {
        s.commit(&[], &[put("k", "4")]).is_ok()
    });
    assert_eq!(s.get("k").unwrap().unwrap().value, b"4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_inside_an_async_runtime_work_and_dropping_there_is_safe() {
    let etcd = TestEtcd::single();
    let s = store(&etcd, "t7");
    // As the API's handlers do: straight from a task.
    assert!(s.create("k", b"v".to_vec()).unwrap());
    assert_eq!(s.get("k").unwrap().unwrap().value, b"v");
    drop(s);
}
