//! A sync against a fake infrastructure target and a real (SQLite) registry: what is written,
//! audited and removed. No Docker needed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifecycle_supervisor::config::Config;
use lifecycle_supervisor::Supervisor;
use racetrack_db::models::{Deployment, Fatman};
use racetrack_db::repo::{audit, deployments, fatmen, supervisor as repo};
use racetrack_db::Database;
use racetrack_infra::{DeployedFatman, FatmanSpec, InfraError, InfraStatus, InfrastructureTarget};

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

fn register(db: &Database, name: &str, status: &str) -> Fatman {
    let mut conn = db.get().unwrap();
    let (family, _) = fatmen::get_or_create_family(&mut conn, name).unwrap();
    let now = racetrack_db::now();
    let row = Fatman {
        id: racetrack_db::new_id(),
        family_id: family.id,
        name: name.into(),
        version: "1.0.0".into(),
        status: status.parse().expect("a fatman status"),
        create_time: now,
        update_time: now,
        manifest: Some(format!("name: {name}\nversion: 1.0.0\n")),
        internal_name: Some("127.0.0.1:1".into()),
        error: None,
        image_tag: Some("t".into()),
        deployed_by: Some("alice".into()),
        last_call_time: None,
        infrastructure_target: Some("docker".into()),
    };
    fatmen::insert(&mut conn, &row).unwrap();
    row
}

fn status(db: &Database, name: &str) -> Option<(String, Option<String>)> {
    fatmen::find(&mut db.get().unwrap(), name, "1.0.0")
        .unwrap()
        .map(|f| (f.status.to_string(), f.error))
}

fn events(db: &Database, name: &str) -> Vec<(String, Option<String>)> {
    audit::query(
        &mut db.get().unwrap(),
        &audit::EventFilter {
            fatman_name: Some(name),
            ..Default::default()
        },
    )
    .unwrap()
    .into_iter()
    .map(|e| (e.event_type.to_string(), e.username_subject))
    .collect()
}

type Parts = (tempfile::TempDir, Database, Arc<FakeTarget>, Supervisor);

fn supervisor(vars: &[(&str, &str)]) -> Parts {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("rt.db").display());
    supervisor_on(&url, vars, dir)
}

/// A fresh Postgres database, or `None` (skip) when Postgres is unavailable outside CI.
fn postgres_database() -> Option<String> {
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://racetrack:racetrack@127.0.0.1:5432/postgres".into());
    let name = format!("sup_sync_{}", uuid::Uuid::new_v4().simple());
    let created = std::process::Command::new("psql")
        .args([admin.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !created {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("Postgres (psql, TEST_POSTGRES_URL) is required under CI");
        }
        eprintln!("SKIPPED: Postgres unavailable");
        return None;
    }
    let (base, _) = admin.rsplit_once('/')?;
    Some(format!("{base}/{name}"))
}

fn supervisor_on(url: &str, vars: &[(&str, &str)], dir: tempfile::TempDir) -> Parts {
    let url = url.to_string();
    let mut map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.insert("DATABASE_URL".into(), url.clone());
    let config = Config::from_lookup(|k| map.get(k).cloned()).unwrap();
    let db = Database::connect(&url, 2).unwrap();
    db.migrate().unwrap();
    let target = Arc::new(FakeTarget::default());
    let mut targets: BTreeMap<String, Arc<dyn InfrastructureTarget>> = BTreeMap::new();
    targets.insert("docker".into(), target.clone());
    let sup = Supervisor::new(
        config,
        db.clone(),
        targets,
        racetrack_events::Publisher::disabled(),
    );
    (dir, db, target, sup)
}

#[tokio::test]
async fn sync_sets_statuses_audits_lost_and_spares_busy_fatmen() {
    let (_dir, db, target, sup) = supervisor(&[]);
    sync_scenario(db, target, sup).await;
}

#[tokio::test]
async fn sync_sets_statuses_audits_lost_and_spares_busy_fatmen_postgres() {
    let Some(url) = postgres_database() else {
        return;
    };
    let (_dir, db, target, sup) = supervisor_on(&url, &[], tempfile::tempdir().unwrap());
    sync_scenario(db, target, sup).await;
    let (admin, name) = url.rsplit_once('/').unwrap();
    let _ = std::process::Command::new("psql")
        .args([
            &format!("{admin}/postgres"),
            "-qc",
            &format!("DROP DATABASE {name} WITH (FORCE)"),
        ])
        .output();
}

async fn sync_scenario(db: Database, target: Arc<FakeTarget>, sup: Supervisor) {
    let address = healthy_fatman();
    register(&db, "healthy", "error");
    register(&db, "gone", "running");
    register(&db, "crashed", "running");
    register(&db, "deploying", "running");
    deployments::insert(
        &mut db.get().unwrap(),
        &Deployment {
            id: racetrack_db::new_id(),
            status: racetrack_model::DeploymentStatus::InProgress,
            create_time: racetrack_db::now(),
            update_time: racetrack_db::now(),
            manifest: String::new(),
            fatman_name: "deploying".into(),
            fatman_version: "1.0.0".into(),
            error: None,
            deployed_by: None,
            build_logs: None,
            phase: None,
            image_name: None,
            infrastructure_target: None,
        },
    )
    .unwrap();
    *target.running.lock().unwrap() = vec![
        found("healthy", InfraStatus::Running, &address),
        found("crashed", InfraStatus::Exited, ""),
    ];

    // Not the leader: nothing is written.
    let err = sup.sync_once().await.unwrap_err();
    assert!(err.contains("leadership"), "{err}");
    assert_eq!(status(&db, "gone").unwrap().0, "running");

    sup.leadership.set(true, Duration::from_secs(60));
    let report = sup.sync_once().await.unwrap();
    assert_eq!(report.health_checked, 1);
    assert_eq!(report.status_changes, 3, "{report:?}");
    assert_eq!(report.marked_lost, 1);
    assert_eq!(report.skipped_busy, 1);
    assert_eq!(status(&db, "healthy").unwrap(), ("running".into(), None));
    assert_eq!(
        status(&db, "gone").unwrap(),
        (
            "lost".into(),
            Some("not found in the infrastructure".into())
        )
    );
    let (crashed, error) = status(&db, "crashed").unwrap();
    assert_eq!(crashed, "error");
    assert!(error.unwrap().contains("exited with code 3"));
    assert_eq!(status(&db, "deploying").unwrap().0, "running");
    assert_eq!(
        events(&db, "gone"),
        [("fatman_lost".to_string(), Some("alice".to_string()))]
    );
    assert!(
        events(&db, "healthy").is_empty(),
        "status changes other than lost are logged only"
    );
    let mut conn = db.get().unwrap();
    assert!(repo::last_check_time(&mut conn, "healthy", "1.0.0")
        .unwrap()
        .is_some());
    assert!(repo::last_check_time(&mut conn, "deploying", "1.0.0")
        .unwrap()
        .is_none());
    drop(conn);
    assert_eq!(report.counts.get("running"), Some(&2));

    // A second sync changes nothing and audits nothing new.
    let again = sup.sync_once().await.unwrap();
    assert_eq!(again.status_changes, 0, "{again:?}");
    assert_eq!(events(&db, "gone").len(), 1);

    // A target that cannot be listed: no fatman is marked lost on half a picture.
    *target.fail_listing.lock().unwrap() = true;
    let err = sup.sync_once().await.unwrap_err();
    assert!(err.contains("engine down"), "{err}");
    assert_eq!(status(&db, "healthy").unwrap().0, "running");
    let health = sup.report();
    assert!(health.last_sync_error.is_some());
}

#[tokio::test]
async fn orphans_are_registered_then_removed_after_grace_or_kept_in_dry_run() {
    let (_dir, db, target, sup) = supervisor(&[("ORPHAN_GRACE_SECS", "1")]);
    sup.leadership.set(true, Duration::from_secs(60));
    *target.running.lock().unwrap() = vec![found("stray", InfraStatus::Running, "127.0.0.1:9")];
    let report = sup.sync_once().await.unwrap();
    assert_eq!(report.orphans_registered, 1);
    let row = fatmen::find(&mut db.get().unwrap(), "stray", "1.0.0")
        .unwrap()
        .unwrap();
    assert_eq!(row.status.as_str(), "orphaned");
    assert!(row.manifest.is_none());
    assert_eq!(row.image_tag.as_deref(), Some("2026-01-01T000000"));
    assert!(
        repo::last_check_time(&mut db.get().unwrap(), "stray", "1.0.0")
            .unwrap()
            .is_some()
    );
    assert_eq!(events(&db, "stray")[0].0, "fatman_orphaned");
    assert_eq!(sup.report().orphans[0].state, "waiting");

    // Within the grace period: kept, and still orphaned (not turned into running).
    let report = sup.sync_once().await.unwrap();
    assert_eq!(report.orphans_removed, 0);
    assert!(target.deleted.lock().unwrap().is_empty());
    assert_eq!(status(&db, "stray").unwrap().0, "orphaned");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = sup.sync_once().await.unwrap();
    assert_eq!(report.orphans_removed, 1);
    assert_eq!(*target.deleted.lock().unwrap(), ["stray 1.0.0"]);
    assert!(status(&db, "stray").is_none(), "registry entry dropped");
    assert_eq!(events(&db, "stray")[0].0, "fatman_orphan_removed");

    // Dry run: due but kept, reported as such.
    let (_dir2, db2, target2, dry) =
        supervisor(&[("ORPHAN_GRACE_SECS", "0"), ("ORPHAN_DRY_RUN", "true")]);
    dry.leadership.set(true, Duration::from_secs(60));
    *target2.running.lock().unwrap() = vec![found("stray", InfraStatus::Running, "127.0.0.1:9")];
    dry.sync_once().await.unwrap();
    let report = dry.sync_once().await.unwrap();
    assert_eq!(report.orphans_removed, 0);
    assert!(target2.deleted.lock().unwrap().is_empty());
    assert_eq!(status(&db2, "stray").unwrap().0, "orphaned");
    assert_eq!(dry.report().orphans[0].state, "kept (dry run)");
}

#[tokio::test]
async fn reconcile_reports_lifecycle_failures_and_audits_them() {
    // Lifecycle is not running at this address: the attempt fails, is counted and audited.
    let (_dir, db, _target, sup) = supervisor(&[
        ("LIFECYCLE_URL", "http://127.0.0.1:9"),
        ("LIFECYCLE_AUTH_TOKEN", "t"),
    ]);
    sup.leadership.set(true, Duration::from_secs(60));
    register(&db, "lost-one", "lost");
    register(&db, "lost-two", "lost");
    let mut no_manifest = register(&db, "lost-bare", "lost");
    no_manifest.manifest = None;
    fatmen::update(&mut db.get().unwrap(), &no_manifest).unwrap();
    let report = sup.reconcile_once().await;
    // One attempt: with Lifecycle unreachable the round stops; without a manifest no attempt.
    assert_eq!(report.attempted, 1, "{report:?}");
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].error.contains("unreachable"), "{report:?}");
    let failed = &report.failed[0].name;
    assert_eq!(
        events(&db, failed),
        [(
            "fatman_reconcile_failed".to_string(),
            Some("alice".to_string())
        )]
    );
    assert!(events(&db, "lost-bare").is_empty());
}

#[tokio::test]
async fn without_a_token_reconcile_stops_with_a_clear_error_and_signs_nothing() {
    // The supervisor holds no AUTH_KEY: with no LIFECYCLE_AUTH_TOKEN there is nothing to ask
    // Lifecycle with, and one failure (not one per fatman) says how to get a token.
    let (_dir, db, _target, sup) = supervisor(&[("LIFECYCLE_URL", "http://127.0.0.1:9")]);
    sup.leadership.set(true, Duration::from_secs(60));
    register(&db, "lost-one", "lost");
    register(&db, "lost-two", "lost");
    let err = sup.lifecycle_token().unwrap_err();
    assert!(err.contains("generate-auth lifecycle-supervisor"), "{err}");
    let report = sup.reconcile_once().await;
    assert_eq!(report.attempted, 1, "{report:?}");
    assert!(
        report.failed[0].error.contains("LIFECYCLE_AUTH_TOKEN"),
        "{report:?}"
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
    let (_dir, db, _target, sup) = supervisor(&[]);
    let sup = Supervisor::new(
        sup.config.clone(),
        db.clone(),
        {
            let mut targets: BTreeMap<String, Arc<dyn InfrastructureTarget>> = BTreeMap::new();
            targets.insert("docker".into(), Arc::new(FakeTarget::default()));
            targets
        },
        racetrack_events::Publisher::new(Some(&redis)).unwrap(),
    );
    sup.leadership.set(true, Duration::from_secs(60));
    let name = format!("gone-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    register(&db, &name, "running");
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
