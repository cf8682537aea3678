//! The lifecycle supervisor end to end: real binaries (lifecycle, image-builder, supervisor), the
//! Docker engine, the local registry and base images.

mod harness;

use std::time::Duration;

use harness::supervisor::*;
use harness::*;
use serde_json::json;

fn docker_prerequisites() -> bool {
    require("the Docker engine", docker_ok())
        && require(
            "the base image racetrack/python-base:bookworm",
            image_exists("racetrack/python-base:bookworm"),
        )
}

async fn status_of(p: &Platform, name: &str, version: &str) -> Option<String> {
    listed_fatman(p, name, version)
        .await
        .map(|f| f["status"].as_str().unwrap_or("").to_string())
}

/// Deploys the python-class sample as a new `<prefix>-…` fatman: its name, its container and the
/// container's cleanup.
async fn deploy_sample(
    p: &Platform,
    prefix: &str,
    version: &str,
) -> (String, String, DockerCleanup) {
    let name = unique(prefix);
    let resource = format!("fatman-{name}-v-{}", version.replace('.', "-"));
    let cleanup = DockerCleanup {
        containers: vec![resource.clone()],
        networks: vec![],
    };
    let sample = workspace_root().join("sample/python-class");
    let d = p
        .deploy(json!({"manifest": sample_manifest("python-class", &name, version), "build_context": build_context(&sample)}))
        .await;
    assert_eq!(d["status"], "done", "{d}");
    (name, resource, cleanup)
}

/// Starts a supervisor and waits until it leads.
async fn leading_supervisor(label: &str, env: &[(String, String)]) -> SupervisorProc {
    let sup = SupervisorProc::start(label, env).await;
    wait_until(
        "the supervisor to lead",
        Duration::from_secs(10),
        || async { sup.is_leader().await },
    )
    .await;
    sup
}

/// Lost → reported within one sync → reconciled back to running; then restarts of Lifecycle and
/// of the supervisor change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_fatman_is_reported_and_reconciled_and_restarts_lose_nothing() {
    if !(docker_prerequisites() && require("the local registry at 127.0.0.1:5000", registry_ok())) {
        return;
    }
    let mut p = Platform::start().await;
    let version = "0.0.1";
    let (name, resource, _cleanup) = deploy_sample(&p, "sup-adder", version).await;

    let sync_interval = Duration::from_secs(1);
    let env = with(platform_env(&p), "RECONCILE_INTERVAL_SECS", "4");
    let sup = leading_supervisor("supervisor", &env).await;
    sup.wait_syncs(1, Duration::from_secs(20)).await;
    assert_eq!(
        status_of(&p, &name, version).await.as_deref(),
        Some("running")
    );
    let health = sup.health().await;
    assert!(
        health["last_sync"]["counts"]["running"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{health}"
    );
    assert!(
        health["last_sync"]["health_checked"].as_u64().unwrap_or(0) >= 1,
        "{health}"
    );
    let seen = sup
        .fatman(&name, version)
        .await
        .expect("listed by the supervisor");
    let first_check = seen["last_check_time"].as_i64().expect("checked");
    assert_eq!(seen["status"], "running", "{seen}");
    sup.wait_syncs(1, Duration::from_secs(10)).await;
    let seen = sup.fatman(&name, version).await.unwrap();
    assert!(
        seen["last_check_time"].as_i64().unwrap() >= first_check,
        "{seen}"
    );

    // 1. The container disappears: lost within one sync interval (plus one sync's own time).
    let (ok, out) = docker(&["rm", "-f", &resource]);
    assert!(ok, "{out}");
    let took = wait_until("status lost", Duration::from_secs(10), || async {
        status_of(&p, &name, version).await.as_deref() == Some("lost")
    })
    .await;
    assert!(
        took <= sync_interval * 2 + Duration::from_secs(1),
        "lost only after {took:?}"
    );
    let f = listed_fatman(&p, &name, version).await.unwrap();
    assert_eq!(f["error"], "not found in the infrastructure", "{f}");
    let events = audit_events(&p, &name).await;
    let lost = events
        .iter()
        .find(|(t, _)| t == "fatman_lost")
        .unwrap_or_else(|| panic!("no fatman_lost event: {events:?}"));
    assert_eq!(lost.1["username_executor"], "racetrack");
    assert!(
        lost.1["description"]
            .as_str()
            .unwrap_or("")
            .contains("marked lost"),
        "{}",
        lost.1
    );

    // 2. Reconcile re-provisions it from its image: running again, deployed by `racetrack`.
    wait_until("reconciled to running", Duration::from_secs(90), || async {
        status_of(&p, &name, version).await.as_deref() == Some("running")
    })
    .await;
    assert!(container_exists(&resource), "container is back");
    let f = listed_fatman(&p, &name, version).await.unwrap();
    assert_eq!(f["deployed_by"], "racetrack", "{f}");
    let internal = f["internal_name"].as_str().unwrap().to_string();
    assert_eq!(
        perform(&internal, json!({"numbers": [40, 2]})).await,
        (200, json!(42))
    );
    let events = audit_events(&p, &name).await;
    assert!(
        events
            .iter()
            .any(|(t, e)| t == "fatman_deployed" && e["username_executor"] == "racetrack"),
        "{events:?}"
    );
    assert!(sup.metric("supervisor_reconcile_attempts_total").await >= 1.0);
    assert_eq!(sup.metric("supervisor_reconcile_failures_total").await, 0.0);

    // 3. Lifecycle restarts: the fatman stays running and unchanged.
    restart_lifecycle(&mut p).await;
    sup.wait_syncs(2, Duration::from_secs(20)).await;
    let after = listed_fatman(&p, &name, version).await.unwrap();
    assert_eq!(after["status"], "running", "{after}");
    assert_eq!(after["internal_name"], f["internal_name"]);

    // 4. The supervisor restarts (killed): a new one picks up the same state, changes nothing.
    let events_before = audit_events(&p, &name).await.len();
    drop(sup);
    let sup = SupervisorProc::start("supervisor-2", &env).await;
    wait_until(
        "the new supervisor to lead",
        Duration::from_secs(15),
        || async { sup.is_leader().await },
    )
    .await;
    sup.wait_syncs(2, Duration::from_secs(20)).await;
    let again = listed_fatman(&p, &name, version).await.unwrap();
    assert_eq!(again["status"], "running", "{again}");
    assert_eq!(again["internal_name"], f["internal_name"]);
    assert_eq!(
        audit_events(&p, &name).await.len(),
        events_before,
        "no new audit events"
    );
    let health = sup.health().await;
    assert_eq!(health["last_sync"]["status_changes"], 0, "{health}");
}

/// Event-driven healing through the real Lifecycle: with the periodic sync and reconcile far
/// away (60 s, 600 s), a fatman container removed, then killed, behind the platform's back is
/// `lost` / `error` (with the exit code) and `running` again within seconds, long before either
/// period (the 2 s / 15 s targets are measured by bench/supervisor.py, not asserted here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_or_killed_fatman_is_reported_at_once_and_restored_within_seconds() {
    if !(docker_prerequisites() && require("the local registry at 127.0.0.1:5000", registry_ok())) {
        return;
    }
    let p = Platform::start().await;
    let version = "0.0.1";
    let (name, resource, _cleanup) = deploy_sample(&p, "sup-heal", version).await;
    let env = with(platform_env(&p), "SYNC_INTERVAL_SECS", "60");
    let env = with(env, "RECONCILE_INTERVAL_SECS", "600");
    let sup = leading_supervisor("supervisor-heal", &env).await;
    wait_until("the first sync", Duration::from_secs(20), || async {
        sup.health().await["syncs_completed"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    wait_until("following events", Duration::from_secs(10), || async {
        sup.metric("supervisor_event_stream_connects_total").await >= 1.0
    })
    .await;

    // Removed: `lost`; killed: `error` with the exit code. Each time back to `running`.
    let removed: &[&str] = &["rm", "-f", &resource];
    let killed: &[&str] = &["kill", &resource];
    for (action, down, reason) in [
        (removed, "lost", "not found in the infrastructure"),
        (killed, "error", "exited with code 137"),
    ] {
        let (ok, out) = docker(action);
        assert!(ok, "{out}");
        let took = wait_until(down, Duration::from_secs(10), || async {
            listed_fatman(&p, &name, version).await.is_some_and(|f| {
                f["status"] == down && f["error"].as_str().is_some_and(|e| e.contains(reason))
            })
        })
        .await;
        eprintln!("{} → {down} in {took:?}", action[0]);
        let took = wait_until("running again", Duration::from_secs(30), || async {
            status_of(&p, &name, version).await.as_deref() == Some("running")
        })
        .await;
        eprintln!("{down} → running in {took:?}");
        let f = listed_fatman(&p, &name, version).await.unwrap();
        assert_eq!(f["deployed_by"], "racetrack", "{f}");
        let internal = f["internal_name"].as_str().unwrap().to_string();
        assert_eq!(
            perform(&internal, json!({"numbers": [40, 2]})).await,
            (200, json!(42))
        );
    }
    assert_eq!(sup.metric("supervisor_reconcile_failures_total").await, 0.0);
    assert_eq!(
        sup.health().await["syncs_completed"],
        1,
        "the periodic sync did not do it"
    );
}

/// An unowned container with racetrack labels is reported as an orphan; dry-run keeps it; past
/// the grace period a supervisor without dry-run removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_is_reported_kept_in_dry_run_and_removed_after_grace() {
    if !docker_prerequisites() {
        return;
    }
    let p = Platform::start().await;
    let network = unique("rt-orphans");
    let name = unique("orphan");
    let version = "1.0.0";
    let resource = start_unowned_fatman(&name, version, &network);
    let _cleanup = DockerCleanup {
        containers: vec![resource.clone()],
        networks: vec![network.clone()],
    };
    let grace = 3;
    let env = platform_env(&p);
    let env = with(env, "DOCKER_NETWORK", &network);
    let env = with(env, "DOCKER_NETWORK_ONLY", "true");
    let env = with(env, "ORPHAN_GRACE_SECS", &grace.to_string());

    // Dry run: reported (API, audit, /health), never removed.
    let dry = SupervisorProc::start(
        "supervisor-dry",
        &with(env.clone(), "ORPHAN_DRY_RUN", "true"),
    )
    .await;
    wait_until("orphan reported", Duration::from_secs(15), || async {
        status_of(&p, &name, version).await.as_deref() == Some("orphaned")
    })
    .await;
    let f = listed_fatman(&p, &name, version).await.unwrap();
    assert!(f["manifest"].is_null(), "{f}");
    let events = audit_events(&p, &name).await;
    assert!(
        events.iter().any(|(t, _)| t == "fatman_orphaned"),
        "{events:?}"
    );
    wait_until(
        "dry run to keep the due orphan",
        Duration::from_secs(grace + 10),
        || async {
            dry.health().await["orphans"].as_array().is_some_and(|o| {
                o.iter()
                    .any(|o| o["name"] == name.as_str() && o["state"] == "kept (dry run)")
            })
        },
    )
    .await;
    dry.wait_syncs(2, Duration::from_secs(10)).await;
    assert!(container_exists(&resource), "dry run must not remove it");
    assert_eq!(dry.metric("supervisor_orphans_removed_total").await, 0.0);
    assert!(dry.metric("supervisor_orphans_pending").await >= 1.0);
    drop(dry);

    // Without dry run: the grace period has passed (it counts from registration, across
    // restarts), so the container goes, and the registry entry with it.
    let sup = SupervisorProc::start("supervisor", &env).await;
    wait_until("orphan removed", Duration::from_secs(20), || async {
        !container_exists(&resource)
    })
    .await;
    wait_until("orphan unlisted", Duration::from_secs(5), || async {
        listed_fatman(&p, &name, version).await.is_none()
    })
    .await;
    let events = audit_events(&p, &name).await;
    let removed = events
        .iter()
        .find(|(t, _)| t == "fatman_orphan_removed")
        .unwrap_or_else(|| panic!("no fatman_orphan_removed event: {events:?}"));
    assert_eq!(removed.1["username_executor"], "racetrack");
    assert_eq!(sup.metric("supervisor_orphans_removed_total").await, 1.0);

    // A fresh orphan is not removed before its grace period ends.
    let second = unique("orphan");
    let resource2 = start_unowned_fatman(&second, version, &network);
    let _cleanup2 = DockerCleanup {
        containers: vec![resource2.clone()],
        networks: vec![],
    };
    let seen = wait_until(
        "second orphan reported",
        Duration::from_secs(10),
        || async { status_of(&p, &second, version).await.as_deref() == Some("orphaned") },
    )
    .await;
    if seen < Duration::from_secs(grace - 1) {
        assert!(
            container_exists(&resource2),
            "removed before its grace period"
        );
    }
    wait_until(
        "second orphan removed",
        Duration::from_secs(grace + 10),
        || async { !container_exists(&resource2) },
    )
    .await;
}

/// Two supervisors of one Lifecycle (on `database_url`): exactly one acts, under the lease
/// Lifecycle grants; when it is killed the other takes over within one lease period.
async fn one_leader_and_takeover(database_url: &str, label: &str) {
    let network = unique("rt-lease");
    let lease = Duration::from_secs(3);
    let retry = Duration::from_millis(500);
    let lifecycle = BareLifecycle::start(database_url).await;
    let env = test_env(&lifecycle.grpc_url, &lifecycle.supervisor_token, &network);
    let env = with(env, "DOCKER_NETWORK_ONLY", "true");
    let env = with(env, "LEASE_SECS", &lease.as_secs().to_string());
    let env = with(env, "LEASE_RETRY_SECS", "0.5");
    let a = SupervisorProc::start(&format!("supervisor-a-{label}"), &env).await;
    wait_until("a to lead", Duration::from_secs(10), || async {
        a.is_leader().await
    })
    .await;
    let b = SupervisorProc::start(&format!("supervisor-b-{label}"), &env).await;
    a.wait_syncs(3, Duration::from_secs(15)).await;
    // Exactly one acts: a leads and syncs, b serves probes but does nothing.
    assert!(a.is_leader().await);
    let hb = b.health().await;
    assert_eq!(hb["leader"], false, "{hb}");
    assert_eq!(hb["syncs_completed"], 0, "{hb}");
    assert_eq!(b.metric("supervisor_leader").await, 0.0);
    assert_eq!(a.metric("supervisor_leader").await, 1.0);

    // a is killed (no chance to release): b takes over within one lease period (+ one retry).
    drop(a);
    let took = wait_until("b to take over", lease * 3, || async {
        b.is_leader().await
    })
    .await;
    assert!(
        took <= lease + retry + Duration::from_millis(500),
        "{label}: takeover took {took:?}"
    );
    b.wait_syncs(1, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_supervisors_exactly_one_acts_sqlite() {
    if !require("the Docker engine", docker_ok()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("rt.db").display());
    one_leader_and_takeover(&url, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_supervisors_exactly_one_acts_postgres() {
    if !require("the Docker engine", docker_ok()) {
        return;
    }
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://racetrack:racetrack@127.0.0.1:5432/postgres".into());
    let db = format!("sup_{}", uuid::Uuid::new_v4().simple());
    let created = std::process::Command::new("psql")
        .args([admin.as_str(), "-qc", &format!("CREATE DATABASE {db}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !require("Postgres (psql, TEST_POSTGRES_URL)", created) {
        return;
    }
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => panic!("TEST_POSTGRES_URL has no database part: {admin}"),
    };
    one_leader_and_takeover(&url, "postgres").await;
    let _ = std::process::Command::new("psql")
        .args([
            admin.as_str(),
            "-qc",
            &format!("DROP DATABASE {db} WITH (FORCE)"),
        ])
        .output();
}
