//! A sync against a fake infrastructure target and a fake Lifecycle (the real `Supervision` gRPC
//! API over an in-memory registry that writes and audits reports as Lifecycle does): what is
//! reported, written, audited and removed. No Docker, no database (Lifecycle's side of the same
//! reports, on both database backends, is tested in `services/lifecycle/tests/supervision.rs`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifecycle_supervisor::Supervisor;
use racetrack_infra::{DeployedFatman, FatmanSpec, InfraError, InfraStatus, InfrastructureTarget};

mod common;
use common::{config, fake_lifecycle, FakeLifecycle};

#[derive(Default)]
struct FakeTarget {
    running: Mutex<Vec<DeployedFatman>>,
    deleted: Mutex<Vec<String>>,
    fail_listing: Mutex<bool>,
}

#[async_trait::async_trait]
impl InfrastructureTarget for FakeTarget {
    fn name(&self) -> &str {
        "docker"
    }
    async fn deploy(&self, _: &FatmanSpec) -> Result<DeployedFatman, InfraError> {
        Err(InfraError::Invalid("not in this test".into()))
    }
    async fn delete(&self, name: &str, version: &str) -> Result<(), InfraError> {
        self.running
            .lock()
            .unwrap()
            .retain(|f| !(f.name == name && f.version == version));
        self.deleted
            .lock()
            .unwrap()
            .push(format!("{name} {version}"));
        Ok(())
    }
    async fn exists(&self, name: &str, version: &str) -> Result<bool, InfraError> {
        Ok(self
            .running
            .lock()
            .unwrap()
            .iter()
            .any(|f| f.name == name && f.version == version))
    }
    async fn list(&self) -> Result<Vec<DeployedFatman>, InfraError> {
        if *self.fail_listing.lock().unwrap() {
            return Err(InfraError::Unavailable("engine down".into()));
        }
        Ok(self.running.lock().unwrap().clone())
    }
    async fn logs(&self, _: &str, _: &str, _: usize) -> Result<String, InfraError> {
        Ok(String::new())
    }
}

/// Answers every request with 200 `{}` (a healthy fatman), on a thread of its own.
fn healthy_fatman() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    addr
}

fn found(name: &str, status: InfraStatus, address: &str) -> DeployedFatman {
    DeployedFatman {
        name: name.into(),
        version: "1.0.0".into(),
        resource_name: racetrack_model::names::resource_name(name, "1.0.0"),
        internal_name: address.into(),
        status,
        error: (status == InfraStatus::Exited).then(|| "exited with code 3\nboom".into()),
        create_time: 0,
        image: Some("127.0.0.1:5000/racetrack/fatman/x:2026-01-01T000000".into()),
        labels: BTreeMap::new(),
    }
}

type Parts = (FakeLifecycle, Arc<FakeTarget>, Supervisor);

/// A supervisor on a fake target and a fake Lifecycle (within the test's runtime).
fn supervisor(vars: &[(&str, &str)]) -> Parts {
    let fake = fake_lifecycle(|_| {});
    let config = config(&fake, vars);
    let target = Arc::new(FakeTarget::default());
    let mut targets: BTreeMap<String, Arc<dyn InfrastructureTarget>> = BTreeMap::new();
    targets.insert("docker".into(), target.clone());
    let sup = Supervisor::new(config, targets, racetrack_events::Publisher::disabled()).unwrap();
    (fake, target, sup)
}

#[tokio::test]
async fn sync_sets_statuses_audits_lost_and_spares_busy_fatmen() {
    let (db, target, sup) = supervisor(&[]);
    let address = healthy_fatman();
    db.register("healthy", "error", "127.0.0.1:1");
    db.register("gone", "running", "127.0.0.1:1");
    db.register("crashed", "running", "127.0.0.1:1");
    db.register("deploying", "running", "127.0.0.1:1");
    // A deployment of it is in progress.
    db.registry
        .lock()
        .unwrap()
        .deploying
        .push(("deploying".into(), "1.0.0".into()));
    *target.running.lock().unwrap() = vec![
        found("healthy", InfraStatus::Running, &address),
        found("crashed", InfraStatus::Exited, ""),
    ];

    // Not the leader: nothing is written.
    let err = sup.sync_once().await.unwrap_err();
    assert!(err.contains("leadership"), "{err}");
    assert_eq!(db.status("gone").unwrap().0, "running");

    sup.leadership.set(true, Duration::from_secs(60));
    let report = sup.sync_once().await.unwrap();
    assert_eq!(report.health_checked, 1);
    assert_eq!(report.status_changes, 3, "{report:?}");
    assert_eq!(report.marked_lost, 1);
    assert_eq!(report.skipped_busy, 1);
    assert_eq!(db.status("healthy").unwrap(), ("running".into(), None));
    assert_eq!(
        db.status("gone").unwrap(),
        (
            "lost".into(),
            Some("not found in the infrastructure".into())
        )
    );
    let (crashed, error) = db.status("crashed").unwrap();
    assert_eq!(crashed, "error");
    assert!(error.unwrap().contains("exited with code 3"));
    assert_eq!(db.status("deploying").unwrap().0, "running");
    assert_eq!(
        db.events("gone"),
        [("fatman_lost".to_string(), Some("alice".to_string()))]
    );
    assert!(
        db.events("healthy").is_empty(),
        "status changes other than lost are logged only"
    );
    assert!(db.last_check("healthy").is_some());
    assert!(db.last_check("deploying").is_none());
    // The supervisor wrote nothing itself: one report carried the three changes.
    let reports = db.registry.lock().unwrap().reports.clone();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].changes.len(), 3);
    assert!(!reports[0].holder.is_empty() && reports[0].lease == "lifecycle-supervisor");
    assert_eq!(report.counts.get("running"), Some(&2));

    // A second sync changes nothing and audits nothing new.
    let again = sup.sync_once().await.unwrap();
    assert_eq!(again.status_changes, 0, "{again:?}");
    assert_eq!(db.events("gone").len(), 1);

    // A target that cannot be listed: no fatman is marked lost on half a picture.
    *target.fail_listing.lock().unwrap() = true;
    let err = sup.sync_once().await.unwrap_err();
    assert!(err.contains("engine down"), "{err}");
    assert_eq!(db.status("healthy").unwrap().0, "running");
    let health = sup.report();
    assert!(health.last_sync_error.is_some());
}

#[tokio::test]
async fn orphans_are_registered_then_removed_after_grace_or_kept_in_dry_run() {
    let (db, target, sup) = supervisor(&[("ORPHAN_GRACE_SECS", "1")]);
    sup.leadership.set(true, Duration::from_secs(60));
    *target.running.lock().unwrap() = vec![found("stray", InfraStatus::Running, "127.0.0.1:9")];
    let report = sup.sync_once().await.unwrap();
    assert_eq!(report.orphans_registered, 1);
    let row = db.row("stray").unwrap();
    assert_eq!(db.status("stray").unwrap().0, "orphaned");
    assert!(!row.has_manifest);
    // The container's image goes to Lifecycle, which keeps its tag (tested there).
    let reported = db.registry.lock().unwrap().reports[0].new_orphans.clone();
    assert_eq!(
        reported[0].image.as_deref(),
        Some("127.0.0.1:5000/racetrack/fatman/x:2026-01-01T000000")
    );
    assert_eq!(reported[0].container_status, "running");
    assert!(db.last_check("stray").is_some());
    assert_eq!(db.events("stray")[0].0, "fatman_orphaned");
    assert_eq!(sup.report().orphans[0].state, "waiting");

    // Within the grace period: kept, and still orphaned (not turned into running).
    let report = sup.sync_once().await.unwrap();
    assert_eq!(report.orphans_removed, 0);
    assert!(target.deleted.lock().unwrap().is_empty());
    assert_eq!(db.status("stray").unwrap().0, "orphaned");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = sup.sync_once().await.unwrap();
    assert_eq!(report.orphans_removed, 1);
    assert_eq!(*target.deleted.lock().unwrap(), ["stray 1.0.0"]);
    assert!(db.status("stray").is_none(), "registry entry dropped");
    assert_eq!(db.events("stray")[0].0, "fatman_orphan_removed");

    // Dry run: due but kept, reported as such.
    let (db2, target2, dry) = supervisor(&[("ORPHAN_GRACE_SECS", "0"), ("ORPHAN_DRY_RUN", "true")]);
    dry.leadership.set(true, Duration::from_secs(60));
    *target2.running.lock().unwrap() = vec![found("stray", InfraStatus::Running, "127.0.0.1:9")];
    dry.sync_once().await.unwrap();
    let report = dry.sync_once().await.unwrap();
    assert_eq!(report.orphans_removed, 0);
    assert!(target2.deleted.lock().unwrap().is_empty());
    assert_eq!(db2.status("stray").unwrap().0, "orphaned");
    assert_eq!(dry.report().orphans[0].state, "kept (dry run)");
}

#[tokio::test]
async fn reconcile_reports_lifecycle_failures_and_audits_them() {
    // Lifecycle cannot re-provision (unavailable): the attempt fails, is counted and reported,
    // and Lifecycle audits it.
    let (db, _target, sup) = supervisor(&[]);
    *db.reprovision_error.lock().unwrap() =
        Some(tonic::Status::unavailable("Lifecycle is restarting"));
    sup.leadership.set(true, Duration::from_secs(60));
    db.register("lost-one", "lost", "127.0.0.1:1");
    db.register("lost-two", "lost", "127.0.0.1:1");
    db.register("lost-bare", "lost", "127.0.0.1:1");
    db.update("lost-bare", |r| r.has_manifest = false);
    let report = sup.reconcile_once().await;
    // One attempt: with Lifecycle unreachable the round stops; without a manifest no attempt.
    assert_eq!(report.attempted, 1, "{report:?}");
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].error.contains("unreachable"), "{report:?}");
    let failed = &report.failed[0].name;
    assert_eq!(
        db.events(failed),
        [(
            "fatman_reconcile_failed".to_string(),
            Some("alice".to_string())
        )]
    );
    assert!(db.events("lost-bare").is_empty());

    // A refusal (e.g. no built image) fails that fatman only: the round goes on.
    *db.reprovision_error.lock().unwrap() = Some(tonic::Status::failed_precondition(
        "fatman has no built image to reprovision",
    ));
    let report = sup.reconcile_once().await;
    assert_eq!(report.attempted, 2, "{report:?}");
    assert!(
        report.failed[0].error.contains("no built image"),
        "{report:?}"
    );
}

#[tokio::test]
async fn without_a_token_nothing_is_asked_and_the_error_says_how_to_get_one() {
    // The supervisor holds no AUTH_KEY: with no LIFECYCLE_AUTH_TOKEN there is nothing to ask
    // Lifecycle with; it refuses to start, and a supervisor without one fails once (not once per
    // fatman) with how to get a token.
    let fake = fake_lifecycle(|_| {});
    let mut config = config(&fake, &[("INFRASTRUCTURE_TARGET", "none")]);
    config.lifecycle_auth_token = None;
    let err = Supervisor::prepare(config.clone()).await.err().unwrap();
    assert!(err.contains("generate-auth lifecycle-supervisor"), "{err}");
    let sup = Supervisor::new(
        config,
        BTreeMap::new(),
        racetrack_events::Publisher::disabled(),
    )
    .unwrap();
    sup.leadership.set(true, Duration::from_secs(60));
    fake.register("lost-one", "lost", "127.0.0.1:1");
    fake.register("lost-two", "lost", "127.0.0.1:1");
    let err = sup.lifecycle_token().unwrap_err();
    assert!(err.contains("generate-auth lifecycle-supervisor"), "{err}");
    let report = sup.reconcile_once().await;
    assert_eq!(report.attempted, 0, "{report:?}");
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("LIFECYCLE_AUTH_TOKEN")),
        "{report:?}"
    );
    let err = sup.sync_once().await.unwrap_err();
    assert!(err.contains("LIFECYCLE_AUTH_TOKEN"), "{err}");
    assert!(
        fake.registry.lock().unwrap().calls.is_empty(),
        "nothing sent without a token"
    );
}

#[tokio::test]
async fn status_changes_are_published_for_pub_caches() {
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis_up = std::net::TcpStream::connect_timeout(
        &racetrack_events::RedisAddr::parse(&redis)
            .unwrap()
            .socket()
            .parse()
            .unwrap(),
        Duration::from_secs(1),
    )
    .is_ok();
    if !redis_up {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("Redis is required under CI");
        }
        eprintln!("SKIPPED: Redis unavailable at {redis}");
        return;
    }
    let mut events = racetrack_events::subscribe(&redis).unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(racetrack_events::Notification::Connected)) => break,
            Ok(Some(_)) => continue,
            other => panic!("no subscription: {other:?}"),
        }
    }
    let (db, _target, sup) = supervisor(&[]);
    let sup = Supervisor::new(
        sup.config.clone(),
        {
            let mut targets: BTreeMap<String, Arc<dyn InfrastructureTarget>> = BTreeMap::new();
            targets.insert("docker".into(), Arc::new(FakeTarget::default()));
            targets
        },
        racetrack_events::Publisher::new(Some(&redis)).unwrap(),
    )
    .unwrap();
    sup.leadership.set(true, Duration::from_secs(60));
    let name = format!("gone-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    db.register(&name, "running", "127.0.0.1:1");
    sup.sync_once().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let next = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("no event for the lost fatman within 5 s");
        if let Some(racetrack_events::Notification::Event(racetrack_events::Event::Fatman {
            name: got,
        })) = next
        {
            if got == name {
                break;
            }
        }
    }
}
