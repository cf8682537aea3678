//! The supervisor on Kubernetes, through its binary: `INFRASTRUCTURE_TARGET=kubernetes` against
//! the fake API server (`racetrack_infra::testing::fake_kube`, found through a kubeconfig file in
//! `KUBECONFIG`) and a recording fake Lifecycle whose re-provisioning applies the fatman again.
//! The periodic sync and reconcile are an hour apart, so what happens after the first sync comes
//! from the watch of Deployments and pods: a deleted Deployment is lost and re-provisioned, a
//! crash-looping pod is an error (not restarted: the kubelet does), a Ready one running again.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use racetrack_infra::testing::fake_kube::FakeKube;
use racetrack_infra::{FatmanSpec, InfrastructureTarget, KubernetesTarget, KubernetesTargetConfig};
use serde_json::json;

mod common;
use common::{fake_lifecycle_with, reprovisions, wait_for};

const NS: &str = "fatmen";
const OBJECT: &str = "fatman-adder-v-1-0-0";

fn spec(name: &str) -> FatmanSpec {
    FatmanSpec {
        name: name.into(),
        version: "1.0.0".into(),
        image: "registry.local/fatman/adder:1".into(),
        deployment_timestamp: 1_700_000_000,
        ..Default::default()
    }
}

/// Its pod as the Deployment's ReplicaSet makes it, Ready.
fn ready_pod(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "racetrack",
                "app.kubernetes.io/name": OBJECT,
                "racetrack/fatman": OBJECT,
                "racetrack/fatman-name": "adder",
                "racetrack/fatman-version": "1.0.0",
                "racetrack/resource": "fatman",
            },
            "annotations": {
                "racetrack-deployment-date": "1700000000",
                "racetrack/fatman-name": "adder",
                "racetrack/fatman-version": "1.0.0",
            },
            "creationTimestamp": "2026-12-03T12:00:05Z",
        },
        "spec": {"containers": [{"name": OBJECT, "image": "x"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

fn kubeconfig(fake: &FakeKube) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "racetrack-supervisor-kubeconfig-{}-{}",
        std::process::id(),
        fake.url.rsplit(':').next().unwrap()
    ));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {NS}\n\
         current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
        fake.url
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The supervisor process; killed when the test ends.
struct Supervisor(Child);

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_deployment_is_marked_lost_and_reprovisioned_from_the_watch() {
    let fake = FakeKube::start().await;
    let config = KubernetesTargetConfig {
        namespace: NS.into(),
        ..Default::default()
    };
    // Lifecycle's side: the fatman was deployed, and re-provisioning applies it again.
    let lifecycle_target =
        Arc::new(KubernetesTarget::with_kube_config(fake.client_config(), config).unwrap());
    lifecycle_target.deploy(&spec("adder")).await.unwrap();
    let pod = format!("{OBJECT}-5d4f-abcde");
    fake.put("pods", NS, &pod, ready_pod(&pod));
    let redeploy = lifecycle_target.clone();
    let db = fake_lifecycle_with(Arc::new(move |name: String| {
        let target = redeploy.clone();
        Box::pin(async move {
            target.deploy(&spec(&name)).await.unwrap();
        })
    }));
    // Registered in error: the first sync must find it healthy from its Ready pod alone (the
    // address is a cluster DNS name nothing here could call).
    db.register("adder", "error", "stale:7000");
    db.update("adder", |r| {
        r.infrastructure_target = Some("kubernetes".into());
    });

    let kubeconfig = kubeconfig(&fake);
    let env: BTreeMap<&str, String> = BTreeMap::from([
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("LIFECYCLE_GRPC_URL", db.url.clone()),
        ("LIFECYCLE_AUTH_TOKEN", "sup-token".into()),
        ("INFRASTRUCTURE_TARGET", "kubernetes".into()),
        ("FATMAN_K8S_NAMESPACE", NS.into()),
        ("HTTP_ADDR", "127.0.0.1:0".into()),
        ("SYNC_INTERVAL_SECS", "3600".into()),
        ("RECONCILE_INTERVAL_SECS", "3600".into()),
        // A second restart would not wait long (a crash must not cause one at all).
        ("HEAL_BACKOFF_SECS", "0.1".into()),
        ("RUST_LOG", "info".into()),
    ]);
    let _supervisor = Supervisor(
        Command::new(env!("CARGO_BIN_EXE_lifecycle-supervisor"))
            .env_clear()
            .envs(&env)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let within = Duration::from_secs(60);
    let (internal_name, _) = wait_for("the first sync: running", within, || {
        let row = db.row("adder")?;
        (db.status("adder")?.0 == "running").then_some(row.internal_name)
    })
    .await;
    assert_eq!(
        internal_name.as_deref(),
        Some(format!("{OBJECT}.{NS}.svc:7000").as_str())
    );
    wait_for("the watches", within, || {
        (fake.watching("deployments") == 1 && fake.watching("pods") == 1).then_some(())
    })
    .await;

    // Deleted behind the platform's back.
    fake.remove("deployments", NS, OBJECT);
    let (error, _) = wait_for("lost", within, || {
        let (status, error) = db.status("adder")?;
        (status == "lost").then_some(error)
    })
    .await;
    assert_eq!(error.as_deref(), Some("not found in the infrastructure"));
    assert_eq!(
        db.events("adder").first().map(|(kind, _)| kind.as_str()),
        Some("fatman_lost")
    );
    wait_for("re-provisioned", within, || {
        (reprovisions(&db, "adder") == 1 && fake.object("deployments", NS, OBJECT).is_some())
            .then_some(())
    })
    .await;

    // Its pod crash-loops: shown in error with Kubernetes' reason, and not restarted by the
    // supervisor (the kubelet does that); Ready again: running.
    let mut crashing = ready_pod(&pod);
    crashing["status"] = json!({"phase": "Running", "containerStatuses": [{
        "name": OBJECT, "image": "x", "imageID": "", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
    }]});
    fake.put("pods", NS, &pod, crashing);
    let (error, _) = wait_for("error", within, || {
        let (status, error) = db.status("adder")?;
        (status == "error").then_some(error)
    })
    .await;
    assert_eq!(
        error.as_deref(),
        Some("CrashLoopBackOff: the fatman keeps crashing (3 restarts); last exit code 1 (Error)")
    );
    // Time for a restart the supervisor should not make (the Docker path makes it by now).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        reprovisions(&db, "adder"),
        1,
        "a crash is the kubelet's to restart"
    );
    fake.put("pods", NS, &pod, ready_pod(&pod));
    wait_for("running again", within, || {
        (db.status("adder")?.0 == "running").then_some(())
    })
    .await;
    assert_eq!(
        reprovisions(&db, "adder"),
        1,
        "a crash is the kubelet's to restart"
    );

    // No second sync: the watches never broke (a reconnect would have asked for one), and each
    // kind was listed once by the sync and once by its watch.
    let requests = fake.requests();
    let count = |what: &str| requests.iter().filter(|r| r.contains(what)).count();
    assert_eq!(count("watch=true"), 2, "{requests:#?}");
    let deployment_lists = requests
        .iter()
        .filter(|r| r.starts_with("GET /apis/apps/v1/namespaces/fatmen/deployments?"))
        .filter(|r| !r.contains("watch=true"))
        .count();
    assert_eq!(deployment_lists, 2, "{requests:#?}");

    // The API server's history is compacted while the watches are down: they cannot resume, so
    // events may have been missed, and the supervisor syncs in full at once (nothing else would
    // ask Lifecycle for the whole registry within the hour).
    let full_listings = || {
        db.registry
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(method, _)| method == "ListFatmen")
            .count()
    };
    let before = full_listings();
    fake.expire_history();
    wait_for(
        "a full sync after the watches listed afresh",
        within,
        || (full_listings() > before).then_some(()),
    )
    .await;
    let _ = std::fs::remove_file(kubeconfig);
}
