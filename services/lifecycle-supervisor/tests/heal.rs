//! Event-driven healing against a fake target whose event stream the test drives and a recording
//! fake Lifecycle (the `Supervision` gRPC API over an in-memory registry). No Docker needed (see
//! `heal_docker.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifecycle_supervisor::Supervisor;
use racetrack_infra::{
    DeployedFatman, FatmanSpec, InfraError, InfraEvent, InfraEventKind, InfraEventStream,
    InfraStatus, InfrastructureTarget,
};
use tokio::sync::mpsc;

mod common;
use common::{config, fake_lifecycle, leading_supervisor, reprovisions, wait_for, FakeLifecycle};

/// A target whose containers and events the test sets.
#[derive(Default)]
struct FakeTarget {
    running: Mutex<Vec<DeployedFatman>>,
    /// Receivers handed out by `events()`, one per (re)connection.
    feeds: Mutex<Vec<mpsc::UnboundedReceiver<InfraEvent>>>,
    connects: AtomicUsize,
}

impl FakeTarget {
    fn set(&self, name: &str, status: Option<InfraStatus>) {
        let mut running = self.running.lock().unwrap();
        running.retain(|f| f.name != name);
        if let Some(status) = status {
            running.push(DeployedFatman {
                name: name.into(),
                version: "1.0.0".into(),
                resource_name: racetrack_model::names::resource_name(name, "1.0.0"),
                // Nothing listens there: a running one fails its health check, which is fine
                // here (only dead or gone fatmen are restarted).
                internal_name: "127.0.0.1:9".into(),
                status,
                error: (status == InfraStatus::Exited)
                    .then(|| "exited with code 3\nLast log lines:\nboom".into()),
                create_time: 0,
                image: None,
                labels: BTreeMap::new(),
            });
        }
    }

    /// A new feed for the next `events()` call; the sender drives it.
    fn feed(&self) -> mpsc::UnboundedSender<InfraEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.feeds.lock().unwrap().push(rx);
        tx
    }
}

#[async_trait::async_trait]
impl InfrastructureTarget for FakeTarget {
    fn name(&self) -> &str {
        "docker"
    }
    async fn deploy(&self, _: &FatmanSpec) -> Result<DeployedFatman, InfraError> {
        Err(InfraError::Invalid("not in this test".into()))
    }
    async fn delete(&self, name: &str, _: &str) -> Result<(), InfraError> {
        self.set(name, None);
        Ok(())
    }
    async fn exists(&self, name: &str, _: &str) -> Result<bool, InfraError> {
        Ok(self.running.lock().unwrap().iter().any(|f| f.name == name))
    }
    async fn list(&self) -> Result<Vec<DeployedFatman>, InfraError> {
        Ok(self.running.lock().unwrap().clone())
    }
    async fn logs(&self, _: &str, _: &str, _: usize) -> Result<String, InfraError> {
        Ok(String::new())
    }
    async fn events(&self) -> Result<InfraEventStream, InfraError> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        let rx = {
            let mut feeds = self.feeds.lock().unwrap();
            (!feeds.is_empty()).then(|| feeds.remove(0))
        };
        let Some(rx) = rx else {
            return Err(InfraError::Unavailable("no feed prepared".into()));
        };
        Ok(Box::pin(futures_util::stream::unfold(rx, |mut rx| async {
            rx.recv().await.map(|event| (Ok(event), rx))
        })))
    }
}

fn event(name: &str, kind: InfraEventKind) -> InfraEvent {
    InfraEvent {
        name: name.into(),
        version: "1.0.0".into(),
        kind,
        exit_code: (kind == InfraEventKind::Died).then_some(3),
        reason: None,
    }
}

struct Parts {
    db: FakeLifecycle,
    target: Arc<FakeTarget>,
    sup: Arc<Supervisor>,
    stop: Arc<AtomicBool>,
}

/// A leading supervisor following the fake target's events, with long sync/reconcile intervals
/// (so what happens within a test is the reaction to events); the fake Lifecycle brings a
/// re-provisioned fatman back `running` on the target.
fn start(vars: &[(&str, &str)]) -> Parts {
    let target = Arc::new(FakeTarget::default());
    let on_target = target.clone();
    let db = fake_lifecycle(move |name| on_target.set(name, Some(InfraStatus::Running)));
    let mut all = vec![
        ("SYNC_INTERVAL_SECS", "3600"),
        ("RECONCILE_INTERVAL_SECS", "3600"),
    ];
    all.extend_from_slice(vars);
    let (sup, stop) = leading_supervisor(config(&db, &all), target.clone());
    Parts {
        db,
        target,
        sup,
        stop,
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.sup.stopping.notify_waiters();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_fatman_is_marked_lost_and_reprovisioned_at_once() {
    let p = start(&[]);
    let feed = p.target.feed();
    p.db.register("gone", "running", "127.0.0.1:9");
    p.db.register("bystander", "running", "127.0.0.1:9");
    p.target.set("gone", Some(InfraStatus::Running));
    p.target.set("bystander", Some(InfraStatus::Running));
    tokio::spawn(p.sup.clone().watch_loop(p.stop.clone()));

    // `docker rm -f`: kill, die, removed, in one burst.
    p.target.set("gone", None);
    for kind in [
        InfraEventKind::Killed,
        InfraEventKind::Died,
        InfraEventKind::Removed,
    ] {
        feed.send(event("gone", kind)).unwrap();
    }
    let (error, took) = wait_for("lost", Duration::from_secs(10), || {
        let (s, e) = p.db.status("gone").unwrap();
        (s == "lost").then_some(e)
    })
    .await;
    eprintln!("removed → lost in {took:?}");
    assert_eq!(error.as_deref(), Some("not found in the infrastructure"));
    wait_for("reprovision call", Duration::from_secs(10), || {
        (reprovisions(&p.db, "gone") > 0).then_some(())
    })
    .await;
    // One burst of events, one restart; the bystander is untouched.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reprovisions(&p.db, "gone"), 1);
    assert_eq!(reprovisions(&p.db, "bystander"), 0);
    assert_eq!(p.db.status("bystander").unwrap().0, "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_fatman_shows_its_exit_and_a_crash_loop_is_left_in_error() {
    let p = start(&[("CRASH_LOOP_RESTARTS", "2"), ("HEAL_BACKOFF_SECS", "0.2")]);
    let feed = p.target.feed();
    p.db.register("crashy", "running", "127.0.0.1:9");
    p.target.set("crashy", Some(InfraStatus::Running));
    tokio::spawn(p.sup.clone().watch_loop(p.stop.clone()));

    for round in 1..=2 {
        p.target.set("crashy", Some(InfraStatus::Exited));
        feed.send(event("crashy", InfraEventKind::Died)).unwrap();
        let (error, took) = wait_for("error", Duration::from_secs(10), || {
            let (s, e) = p.db.status("crashy").unwrap();
            (s == "error").then_some(e)
        })
        .await;
        eprintln!("crash {round} → error in {took:?}");
        let error = error.unwrap_or_default();
        assert!(
            error.contains("exited with code 3") && error.contains("boom"),
            "{error}"
        );
        wait_for("restart", Duration::from_secs(10), || {
            (reprovisions(&p.db, "crashy") == round).then_some(())
        })
        .await;
        // Back up (as Lifecycle writes it after the reprovision).
        p.db.set_status("crashy", "running", None);
    }

    // Third crash within the window: left in error with the reason, not restarted.
    p.target.set("crashy", Some(InfraStatus::Exited));
    feed.send(event("crashy", InfraEventKind::Died)).unwrap();
    let (error, _) = wait_for("crash loop hold", Duration::from_secs(10), || {
        let (s, e) = p.db.status("crashy").unwrap();
        (s == "error" && e.as_deref().is_some_and(|e| e.contains("crash loop"))).then_some(e)
    })
    .await;
    let error = error.unwrap();
    assert!(error.contains("restarted 2 times"), "{error}");
    assert!(error.contains("exited with code 3"), "{error}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reprovisions(&p.db, "crashy"), 2, "no third restart");
    // Gone meanwhile: a full sync keeps it in error (not lost, which reconcile would restart).
    p.target.set("crashy", None);
    p.sup.sync_once().await.unwrap();
    assert_eq!(
        p.db.status("crashy").unwrap(),
        ("error".to_string(), Some(error))
    );
    assert_eq!(p.sup.reconcile_once().await.attempted, 0);
    let metrics = p.sup.telemetry.render();
    assert!(
        metrics.contains("supervisor_crash_loops_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_event_stream_reconnects_and_syncs_at_once() {
    let p = start(&[]);
    let first = p.target.feed();
    let _second = p.target.feed();
    p.db.register("missed", "running", "127.0.0.1:9");
    p.target.set("missed", Some(InfraStatus::Running));
    tokio::spawn(p.sup.clone().sync_loop(p.stop.clone()));
    tokio::spawn(p.sup.clone().watch_loop(p.stop.clone()));
    wait_for("first sync", Duration::from_secs(5), || {
        (p.sup.report().syncs_completed == 1).then_some(())
    })
    .await;
    // The fatman vanishes while the stream is down: no event will tell.
    p.target.set("missed", None);
    drop(first);
    let (_, took) = wait_for(
        "a sync after the reconnect",
        Duration::from_secs(10),
        || (p.sup.report().syncs_completed >= 2).then_some(()),
    )
    .await;
    eprintln!("reconnect → sync in {took:?}");
    assert!(p.target.connects.load(Ordering::SeqCst) >= 2);
    assert_eq!(p.db.status("missed").unwrap().0, "lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_lost_the_leadership_does_not_react() {
    let p = start(&[]);
    let feed = p.target.feed();
    p.db.register("quiet", "running", "127.0.0.1:9");
    p.target.set("quiet", Some(InfraStatus::Running));
    tokio::spawn(p.sup.clone().watch_loop(p.stop.clone()));
    wait_for("the event stream", Duration::from_secs(10), || {
        (p.target.connects.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    p.sup.leadership.set(false, Duration::from_secs(600));
    p.target.set("quiet", None);
    let _ = feed.send(event("quiet", InfraEventKind::Removed));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        p.db.status("quiet").unwrap().0,
        "running",
        "nothing written"
    );
    assert_eq!(reprovisions(&p.db, "quiet"), 0);
}
