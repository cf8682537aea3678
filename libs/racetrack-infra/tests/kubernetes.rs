//! The Kubernetes target against an in-process fake API server (`racetrack_infra::testing::fake_kube`): the objects it
//! applies, idempotence, statuses from pod conditions, secrets across a reprovision, deletion,
//! logs, and how API failures surface.
#![cfg(feature = "kubernetes")]

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use hyper::Method;
use racetrack_infra::testing::fake_kube::FakeKube;
use racetrack_infra::{
    FatmanSpec, InfraError, InfraStatus, InfrastructureTarget, KubernetesTarget,
    KubernetesTargetConfig, LABEL_DEPLOYMENT_TIMESTAMP, NETWORK_POLICY_NAME,
};
use serde_json::{json, Value};

const NS: &str = "fatmen";
const OBJECT: &str = "fatman-adder-v-1-2-3";

async fn setup() -> (FakeKube, KubernetesTarget) {
    let fake = FakeKube::start().await;
    let config = KubernetesTargetConfig {
        namespace: NS.into(),
        pub_selector: BTreeMap::from([("app.kubernetes.io/name".into(), "pub".into())]),
        image_pull_secret: Some("registry-read".into()),
        poll_interval: Duration::from_millis(20),
        ..Default::default()
    };
    let target = KubernetesTarget::with_kube_config(fake.client_config(), config).unwrap();
    (fake, target)
}

fn sample_spec() -> FatmanSpec {
    FatmanSpec {
        name: "adder".into(),
        version: "1.2.3".into(),
        image: "registry.local/fatman/adder:7f3a".into(),
        env: BTreeMap::from([
            ("DEBUG".into(), "1".into()),
            ("FATMAN_DEPLOYMENT_TIMESTAMP".into(), "1700000000".into()),
            ("FATMAN_NAME".into(), "adder".into()),
            ("PUB_URL".into(), "http://pub.racetrack.svc:7105/pub".into()),
            (
                "REQUEST_TRACING_HEADER".into(),
                "X-Request-Tracing-Id".into(),
            ),
        ]),
        secret_env: BTreeMap::from([
            ("API_KEY".into(), "k3y-s3cret".into()),
            ("AUTH_TOKEN".into(), "family-token-123".into()),
        ]),
        replicas: 2,
        memory_max_bytes: Some(2 << 30),
        cpu_max: Some(0.5),
        deployment_timestamp: 1_700_000_000,
        ..Default::default()
    }
}

/// The object as applied: without what the server adds.
fn applied(fake: &FakeKube, resource: &str, name: &str) -> Value {
    let mut o = fake
        .object(resource, NS, name)
        .unwrap_or_else(|| panic!("{resource}/{name} missing"));
    let meta = o["metadata"].as_object_mut().unwrap();
    for field in ["resourceVersion", "uid", "creationTimestamp"] {
        meta.remove(field);
    }
    o
}

fn rv(fake: &FakeKube, resource: &str, name: &str) -> String {
    fake.object(resource, NS, name).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

fn labels() -> Value {
    json!({
        "app.kubernetes.io/managed-by": "racetrack",
        "app.kubernetes.io/name": OBJECT,
        "racetrack/fatman": OBJECT,
        "racetrack/fatman-name": "adder",
        "racetrack/fatman-version": "1.2.3",
    })
}

#[tokio::test]
async fn deploy_applies_the_exact_objects() {
    let (fake, target) = setup().await;
    let deployed = target.deploy(&sample_spec()).await.unwrap();

    assert_eq!(deployed.name, "adder");
    assert_eq!(deployed.version, "1.2.3");
    assert_eq!(deployed.resource_name, OBJECT);
    assert_eq!(deployed.internal_name, format!("{OBJECT}.{NS}.svc:7000"));
    assert_eq!(deployed.status, InfraStatus::Starting);
    assert_eq!(deployed.deployment_timestamp(), Some(1_700_000_000));
    assert_eq!(
        deployed.image.as_deref(),
        Some("registry.local/fatman/adder:7f3a")
    );

    let annotations = json!({
        "racetrack-deployment-date": "1700000000",
        "racetrack/fatman-name": "adder",
        "racetrack/fatman-version": "1.2.3",
    });
    let mut pod_labels = labels();
    pod_labels["racetrack/resource"] = json!("fatman");
    let probe = |path: &str, period: u32, failures: u32| {
        json!({"httpGet": {"path": path, "port": "http"}, "periodSeconds": period,
               "timeoutSeconds": 3, "failureThreshold": failures})
    };
    let secret_ref = |key: &str| json!({"name": key, "valueFrom": {"secretKeyRef": {"name": OBJECT, "key": key}}});
    assert_eq!(
        applied(&fake, "deployments", OBJECT),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": OBJECT, "namespace": NS, "labels": labels(), "annotations": annotations},
            "spec": {
                "replicas": 2,
                "revisionHistoryLimit": 2,
                "selector": {"matchLabels": {"racetrack/fatman": OBJECT}},
                "template": {
                    "metadata": {"labels": pod_labels, "annotations": annotations},
                    "spec": {
                        "automountServiceAccountToken": false,
                        "imagePullSecrets": [{"name": "registry-read"}],
                        "securityContext": {
                            "runAsNonRoot": true, "runAsUser": 100000, "runAsGroup": 100000,
                            "fsGroup": 200000, "supplementalGroups": [200000],
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [{
                            "name": OBJECT,
                            "image": "registry.local/fatman/adder:7f3a",
                            "imagePullPolicy": "Always",
                            "ports": [{"name": "http", "containerPort": 7000, "protocol": "TCP"}],
                            "env": [
                                {"name": "DEBUG", "value": "1"},
                                {"name": "FATMAN_DEPLOYMENT_TIMESTAMP", "value": "1700000000"},
                                {"name": "FATMAN_NAME", "value": "adder"},
                                {"name": "PUB_URL", "value": "http://pub.racetrack.svc:7105/pub"},
                                {"name": "REQUEST_TRACING_HEADER", "value": "X-Request-Tracing-Id"},
                                secret_ref("API_KEY"),
                                secret_ref("AUTH_TOKEN"),
                            ],
                            // Memory request raised to a quarter of the 2Gi limit; CPU request
                            // the default 10m.
                            "resources": {
                                "requests": {"memory": "512Mi", "cpu": "10m"},
                                "limits": {"memory": "2Gi", "cpu": "500m"},
                            },
                            "startupProbe": probe("/live", 5, 72),
                            "livenessProbe": probe("/live", 10, 3),
                            "readinessProbe": probe("/ready", 5, 3),
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }],
                    },
                },
            },
        })
    );

    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(
        applied(&fake, "secrets", OBJECT),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": OBJECT, "namespace": NS, "labels": labels(), "annotations": {
                "racetrack/fatman-name": "adder", "racetrack/fatman-version": "1.2.3"}},
            "type": "Opaque",
            "data": {"API_KEY": b64("k3y-s3cret"), "AUTH_TOKEN": b64("family-token-123")},
        })
    );
    assert_eq!(
        applied(&fake, "services", OBJECT),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": OBJECT, "namespace": NS, "labels": labels(), "annotations": {
                "racetrack/fatman-name": "adder", "racetrack/fatman-version": "1.2.3"}},
            "spec": {
                "type": "ClusterIP",
                "selector": {"racetrack/fatman": OBJECT},
                "ports": [{"name": "http", "port": 7000, "targetPort": "http", "protocol": "TCP"}],
            },
        })
    );
    assert_eq!(
        applied(&fake, "networkpolicies", NETWORK_POLICY_NAME),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": NETWORK_POLICY_NAME, "namespace": NS,
                         "labels": {"app.kubernetes.io/managed-by": "racetrack"}},
            "spec": {
                "podSelector": {"matchLabels": {"racetrack/resource": "fatman"}},
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "pub"}}}],
                    "ports": [{"protocol": "TCP", "port": 7000}],
                }],
            },
        })
    );

    // Every write was a forced server-side apply by the `racetrack` field manager.
    let patches: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH"))
        .collect();
    assert_eq!(patches.len(), 4, "{patches:?}");
    for p in &patches {
        assert!(p.ends_with(" application/apply-patch+yaml"), "{p}");
        assert!(p.contains("fieldManager=racetrack"), "{p}");
        assert!(p.contains("force=true"), "{p}");
    }
    // No secret value in anything but the Secret.
    let deployment = fake.object("deployments", NS, OBJECT).unwrap().to_string();
    assert!(!deployment.contains("k3y-s3cret") && !deployment.contains("family-token-123"));
}

#[tokio::test]
async fn reapplying_the_same_fatman_is_a_no_op() {
    let (fake, target) = setup().await;
    let spec = sample_spec();
    target.deploy(&spec).await.unwrap();
    let before: Vec<String> = ["deployments", "services", "secrets"]
        .iter()
        .map(|r| rv(&fake, r, OBJECT))
        .collect();
    target.deploy(&spec).await.unwrap();
    let after: Vec<String> = ["deployments", "services", "secrets"]
        .iter()
        .map(|r| rv(&fake, r, OBJECT))
        .collect();
    assert_eq!(before, after);
    // The NetworkPolicy is applied once per target.
    let policy_applies = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("PATCH") && r.contains("networkpolicies"))
        .count();
    assert_eq!(policy_applies, 1);

    // A new deployment (new timestamp) changes the pod template only: the pods roll.
    let redeploy = FatmanSpec {
        deployment_timestamp: 1_700_000_500,
        ..spec
    };
    target.deploy(&redeploy).await.unwrap();
    assert_ne!(rv(&fake, "deployments", OBJECT), before[0]);
    assert_eq!(rv(&fake, "services", OBJECT), before[1]);
    assert_eq!(rv(&fake, "secrets", OBJECT), before[2]);
}

fn pod(name: &str, timestamp: i64, status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name,
            "creationTimestamp": "2026-12-03T12:00:05Z",
            "labels": {"racetrack/fatman": OBJECT, "racetrack/resource": "fatman"},
            "annotations": {"racetrack-deployment-date": timestamp.to_string()},
        },
        "spec": {"containers": [{"name": OBJECT, "image": "x"}]},
        "status": status,
    })
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"phase": "Pending", "containerStatuses": [{
        "name": OBJECT, "image": "x", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": reason, "message": message}},
    }]})
}

#[tokio::test]
async fn status_comes_from_pod_conditions() {
    let (fake, target) = setup().await;
    let deployed = target.deploy(&sample_spec()).await.unwrap();
    let pod_name = format!("{OBJECT}-5d4f-abcde");

    let cases = [
        (
            json!({"phase": "Running", "containerStatuses": [{
                "name": OBJECT, "image": "x", "imageID": "", "ready": false, "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }]}),
            InfraStatus::Exited,
            "CrashLoopBackOff: the fatman keeps crashing (5 restarts); last exit code 1 (Error)",
        ),
        (
            waiting(
                "ImagePullBackOff",
                "Back-off pulling image \"registry.local/fatman/adder:7f3a\"",
            ),
            InfraStatus::Error,
            "ImagePullBackOff: Back-off pulling image \"registry.local/fatman/adder:7f3a\"",
        ),
        (
            waiting("ErrImagePull", "manifest unknown"),
            InfraStatus::Error,
            "ErrImagePull: manifest unknown",
        ),
        (
            json!({"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory.",
            }]}),
            InfraStatus::Error,
            "Unschedulable: the pod cannot be placed on any node: 0/3 nodes are available: 3 Insufficient memory.",
        ),
    ];
    fake.set_log(NS, &pod_name, "loading model\nTraceback: boom\n");
    for (status, expected_status, expected_error) in cases {
        fake.put("pods", NS, &pod_name, pod(&pod_name, 1_700_000_000, status));
        let got = target.get("adder", "1.2.3").await.unwrap().unwrap();
        assert_eq!(got.status, expected_status, "{expected_error}");
        assert_eq!(got.error.as_deref(), Some(expected_error));
        let listed = target.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, expected_status);
        // Waiting for readiness fails at once with the reason and the last log lines.
        let e = target
            .wait_until_ready(&deployed, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(matches!(e, InfraError::Unhealthy(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("fatman failed to start: {expected_error}\nFatman logs:\nloading model\nTraceback: boom")
        );
    }

    // Ready: running, and the wait succeeds.
    fake.put(
        "pods",
        NS,
        &pod_name,
        pod(
            &pod_name,
            1_700_000_000,
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        ),
    );
    let got = target.get("adder", "1.2.3").await.unwrap().unwrap();
    assert_eq!((got.status, got.error), (InfraStatus::Running, None));
    target
        .wait_until_ready(&deployed, Duration::from_secs(5))
        .await
        .unwrap();

    // A ready pod of an older deployment does not count for the new one.
    let mut newer = deployed.clone();
    newer
        .labels
        .insert(LABEL_DEPLOYMENT_TIMESTAMP.into(), "1700000999".into());
    let e = target
        .wait_until_ready(&newer, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(e, InfraError::Timeout(_)), "{e:?}");
}

#[tokio::test]
async fn secrets_survive_a_reprovision() {
    let (fake, target) = setup().await;
    let spec = sample_spec();
    target.deploy(&spec).await.unwrap();
    let secret_before = applied(&fake, "secrets", OBJECT);

    // The fatman is lost (its Deployment and Service are gone), the Secret is kept: a
    // reprovision reads the secret env back and runs the fatman with it again.
    fake.remove("deployments", NS, OBJECT);
    fake.remove("services", NS, OBJECT);
    assert!(!target.exists("adder", "1.2.3").await.unwrap());
    let saved = target
        .saved_secret_env("adder", "1.2.3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved, spec.secret_env);
    let rv_before = rv(&fake, "secrets", OBJECT);
    let reprovision = FatmanSpec {
        secret_env: saved,
        ..spec.clone()
    };
    target.deploy(&reprovision).await.unwrap();
    assert_eq!(applied(&fake, "secrets", OBJECT), secret_before);
    assert_eq!(rv(&fake, "secrets", OBJECT), rv_before);
    let env = &fake.object("deployments", NS, OBJECT).unwrap()["spec"]["template"]["spec"]
        ["containers"][0]["env"];
    assert!(env.as_array().unwrap().contains(
        &json!({"name": "AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": OBJECT, "key": "AUTH_TOKEN"}}})
    ));

    // Deleted and deployed again: the Secret comes back with the same values.
    target.delete("adder", "1.2.3").await.unwrap();
    assert!(fake.object("secrets", NS, OBJECT).is_none());
    assert_eq!(
        target.saved_secret_env("adder", "1.2.3").await.unwrap(),
        None
    );
    target.deploy(&spec).await.unwrap();
    assert_eq!(applied(&fake, "secrets", OBJECT), secret_before);
}

#[tokio::test]
async fn delete_removes_deployment_service_and_secret() {
    let (fake, target) = setup().await;
    target.deploy(&sample_spec()).await.unwrap();
    assert!(target.exists("adder", "1.2.3").await.unwrap());
    target.delete("adder", "1.2.3").await.unwrap();
    for resource in ["deployments", "services", "secrets"] {
        assert!(fake.names(resource).is_empty(), "{resource} left");
    }
    // The namespace's NetworkPolicy stays.
    assert_eq!(fake.names("networkpolicies"), vec![NETWORK_POLICY_NAME]);
    assert!(!target.exists("adder", "1.2.3").await.unwrap());
    assert!(target.get("adder", "1.2.3").await.unwrap().is_none());
    assert!(target.list().await.unwrap().is_empty());
    // Deleting what is gone is fine.
    target.delete("adder", "1.2.3").await.unwrap();
}

#[tokio::test]
async fn api_failures_surface_as_clear_errors() {
    let (fake, target) = setup().await;

    fake.fail_next(Method::PATCH, "deployments", 403);
    let e = target.deploy(&sample_spec()).await.unwrap_err();
    assert!(matches!(e, InfraError::Forbidden(_)), "{e:?}");
    assert!(
        e.to_string().starts_with(
            "RBAC: service account may not create/patch deployments in namespace fatmen: "
        ),
        "{e}"
    );

    fake.fail_next(Method::PATCH, "deployments", 409);
    let e = target.deploy(&sample_spec()).await.unwrap_err();
    assert!(matches!(e, InfraError::Conflict(_)), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "conflict (409) while trying to create/patch deployments {OBJECT} in namespace fatmen: "
        )),
        "{e}"
    );

    fake.fail_next(Method::DELETE, "services", 403);
    let e = target.delete("adder", "1.2.3").await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("RBAC: service account may not delete services in namespace fatmen"),
        "{e}"
    );

    fake.fail_next(Method::GET, "deployments", 403);
    let e = target.list().await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("RBAC: service account may not list deployments in namespace fatmen"),
        "{e}"
    );

    // 404 on a read: the fatman is not there.
    let e = target.logs("ghost", "1.0.0", 10).await.unwrap_err();
    assert!(matches!(e, InfraError::NotFound(_)), "{e:?}");
    target.deploy(&sample_spec()).await.unwrap();
    fake.fail_next(Method::GET, "pods", 404);
    let e = target.logs("adder", "1.2.3", 10).await.unwrap_err();
    assert!(matches!(e, InfraError::NotFound(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("pods not found in namespace fatmen (404): "),
        "{e}"
    );

    // The fake answers 409 to an apply naming a stale resourceVersion, as the API server does.
    let client = kube::Client::try_from(fake.client_config()).unwrap();
    let api: kube::Api<k8s_openapi::api::core::v1::Service> = kube::Api::namespaced(client, NS);
    let mut stale = fake.object("services", NS, OBJECT).unwrap();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["spec"]["ports"][0]["port"] = json!(7001);
    let params = kube::api::PatchParams::apply("someone-else");
    match api
        .patch(OBJECT, &params, &kube::api::Patch::Apply(&stale))
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409),
        other => panic!("expected 409, got {other:?}"),
    }

    // Invalid specs never reach the API.
    let requests = fake.requests().len();
    let too_big = FatmanSpec {
        memory_max_bytes: Some(16 << 30),
        ..sample_spec()
    };
    let e = target.deploy(&too_big).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "memory_max 16Gi exceeds the limit of 8Gi per fatman"
    );
    let bad_name = FatmanSpec {
        name: "Bad_Name".into(),
        ..sample_spec()
    };
    assert!(matches!(
        target.deploy(&bad_name).await,
        Err(InfraError::Invalid(_))
    ));
    assert_eq!(fake.requests().len(), requests);
}

#[tokio::test]
async fn long_versions_get_short_hashed_names() {
    let (fake, target) = setup().await;
    let version = format!("1.0.0-{}", "preview".repeat(8));
    let spec = FatmanSpec {
        name: "a-rather-long-fatman-name-for-testing".into(),
        version: version.clone(),
        ..sample_spec()
    };
    let deployed = target.deploy(&spec).await.unwrap();
    let object = deployed.resource_name.clone();
    assert!((60..=63).contains(&object.len()), "{object}");
    assert!(object.starts_with("fatman-a-rather-long-fatman-name-for-testing-v-1-0-0-"));
    let stored = fake.object("deployments", NS, &object).unwrap();
    let version_label = stored["metadata"]["labels"]["racetrack/fatman-version"]
        .as_str()
        .unwrap();
    assert!(version_label.len() <= 63, "{version_label}");
    assert!(version_label.ends_with(|c: char| c.is_ascii_alphanumeric()));
    // The exact version comes back from the annotations.
    let listed = target.list().await.unwrap();
    assert_eq!(listed[0].version, version);
    assert_eq!(
        target
            .get("a-rather-long-fatman-name-for-testing", &version)
            .await
            .unwrap()
            .unwrap()
            .resource_name,
        object
    );
}

#[tokio::test]
async fn logs_are_read_and_followed_from_the_pods() {
    let (fake, target) = setup().await;
    target.deploy(&sample_spec()).await.unwrap();
    let pod_name = format!("{OBJECT}-5d4f-abcde");
    fake.put(
        "pods",
        NS,
        &pod_name,
        pod(
            &pod_name,
            1_700_000_000,
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        ),
    );
    fake.set_log(NS, &pod_name, "one\ntwo\nthree\n");
    assert_eq!(
        target.logs("adder", "1.2.3", 2).await.unwrap(),
        "two\nthree\n"
    );
    assert_eq!(
        target.logs("adder", "1.2.3", 0).await.unwrap(),
        "one\ntwo\nthree\n"
    );
    let log_requests: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("/log?"))
        .collect();
    assert!(
        log_requests[0].contains(&format!("container={OBJECT}")),
        "{log_requests:?}"
    );

    let lines: Vec<String> = target
        .follow_logs("adder", "1.2.3", 2)
        .await
        .unwrap()
        .map(|l| l.unwrap())
        .collect()
        .await;
    assert_eq!(lines, vec!["two\n", "three\n"]);
    let follow = fake
        .requests()
        .into_iter()
        .find(|r| r.contains("follow=true"))
        .unwrap();
    assert!(follow.contains("tailLines=2"), "{follow}");

    // No pod, no stream.
    fake.remove("pods", NS, &pod_name);
    assert!(matches!(
        target.follow_logs("adder", "1.2.3", 0).await,
        Err(InfraError::NotFound(_))
    ));
}
