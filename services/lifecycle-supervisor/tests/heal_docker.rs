//! Event-driven healing against the real Docker engine (the local busybox test image of
//! `racetrack-infra`): a fatman container removed or killed behind the platform's back is in the
//! registry as `lost` / `error` within seconds (the targets are the bench's), and the supervisor
//! asks Lifecycle (a recording fake here, which runs the image again as Lifecycle's reprovision
//! does) to bring it back. The path
//! through the real Lifecycle is in integration-tests (`supervisor.rs`) and `bench/supervisor.py`.
//! Skipped (with a reason) without Docker and busybox-static, failed instead under CI=true.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use racetrack_infra::testing::{
    docker_test_env_or_skip, ensure_test_image, unique_name, ContainerGuard, TEST_IMAGE,
};
use racetrack_infra::{DockerTarget, FatmanSpec, InfrastructureTarget};

mod common;
use common::{config, fake_lifecycle_with, leading_supervisor, reprovisions, wait_for};

const NETWORK: &str = "racetrack-sup-heal-test";

fn target() -> DockerTarget {
    racetrack_infra::testing::docker_target(NETWORK)
}

fn spec(name: &str) -> FatmanSpec {
    FatmanSpec {
        name: name.into(),
        version: "1.0.0".into(),
        image: TEST_IMAGE.into(),
        env: BTreeMap::from([("FATMAN_NAME".to_string(), name.to_string())]),
        deployment_timestamp: 1000,
        ..Default::default()
    }
}

fn docker_cli(args: &[&str]) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "docker {args:?}: {out:?}");
}

fn container_running(resource: &str) -> bool {
    std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", resource])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_and_killed_containers_are_reported_at_once_and_reprovisioned() {
    if !docker_test_env_or_skip("removed_and_killed_containers_are_reported_at_once").await {
        return;
    }
    ensure_test_image().await.expect("building the test image");
    let name = unique_name("sup-heal");
    let resource = racetrack_model::names::resource_name(&name, "1.0.0");
    let _guard = ContainerGuard::new([resource.clone()]);
    let deployed = target().deploy(&spec(&name)).await.unwrap();

    // The fake Lifecycle runs the image again and answers once it is ready, as Lifecycle's
    // reprovision does.
    let db = fake_lifecycle_with(Arc::new(|redeploy_name: String| {
        Box::pin(
            async move {
                let target = target();
                let deployed = target.deploy(&spec(&redeploy_name)).await?;
                target
                    .wait_until_ready(&deployed, Duration::from_secs(15))
                    .await
            }
            .map(|r: Result<_, racetrack_infra::InfraError>| {
                r.expect("re-running the image");
            }),
        )
    }));
    let config = config(
        &db,
        &[
            ("DOCKER_NETWORK", NETWORK),
            ("SYNC_INTERVAL_SECS", "3600"),
            ("RECONCILE_INTERVAL_SECS", "3600"),
        ],
    );
    db.register(&name, "running", &deployed.internal_name);
    let (sup, stop) = leading_supervisor(config, Arc::new(target()));
    tokio::spawn(sup.clone().watch_loop(stop.clone()));
    // The stream is open once an event would be seen; give the first connection a moment.
    wait_for("the event stream", Duration::from_secs(5), || {
        sup.telemetry
            .render()
            .contains("supervisor_event_stream_connects_total 1")
            .then_some(())
    })
    .await;

    // 1. Removed: lost at once, re-provisioned, running again.
    docker_cli(&["rm", "-f", &resource]);
    let (error, took) = wait_for("lost", Duration::from_secs(10), || {
        let (s, e) = db.status(&name).unwrap();
        (s == "lost").then_some(e)
    })
    .await;
    eprintln!("removed → lost in {took:?}");
    assert_eq!(error.as_deref(), Some("not found in the infrastructure"));
    let (_, took) = wait_for("running again", Duration::from_secs(30), || {
        (reprovisions(&db, &name) == 1 && container_running(&resource)).then_some(())
    })
    .await;
    eprintln!("lost → container running again in {took:?}");
    // Lifecycle would now write `running`; a sync observes the same.
    sup.sync_once().await.unwrap();
    assert_eq!(db.status(&name).unwrap().0, "running");

    // 2. Killed: error with the exit code at once, re-provisioned (after the backoff).
    docker_cli(&["kill", &resource]);
    // (A check racing the kill may first write the failed health check; the exit follows.)
    let (error, took) = wait_for("error with the exit", Duration::from_secs(10), || {
        let (s, e) = db.status(&name).unwrap();
        let e = e.unwrap_or_default();
        (s == "error" && e.contains("exited with code 137")).then_some(e)
    })
    .await;
    eprintln!("killed → error in {took:?}: {error}");
    let (_, took) = wait_for("running again", Duration::from_secs(30), || {
        (reprovisions(&db, &name) == 2 && container_running(&resource)).then_some(())
    })
    .await;
    eprintln!("error → container running again in {took:?}");

    stop.store(true, Ordering::SeqCst);
    sup.stopping.notify_waiters();
}
