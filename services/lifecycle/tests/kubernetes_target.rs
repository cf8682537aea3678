//! Lifecycle with the Kubernetes target enabled (`INFRASTRUCTURE_TARGETS=docker,kubernetes`),
//! driven through its REST API: Lifecycle connects through a kubeconfig (`KUBECONFIG`) pointing
//! at the in-process fake API server (`racetrack_infra::testing::fake_kube`), a small "kubelet"
//! task here turns the Deployments it applies into pods (Ready, or crash-looping), and a fake
//! image-builder answers every build with one image. The moves between Docker and Kubernetes use
//! the real Docker engine with `racetrack_infra::testing`'s busybox image (skipped without Docker
//! outside CI, failed under CI=true).

mod common;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::{Backend, TestApp};
use futures_util::Stream;
use racetrack_infra::testing::fake_kube::FakeKube;
use racetrack_infra::testing::{
    docker_test_env_or_skip, ensure_test_image, unique_name, ContainerGuard, TEST_IMAGE,
};
use racetrack_infra::InfrastructureTarget;
use racetrack_model::InternalService;
use racetrack_proto::image_builder::build_event::Event;
use racetrack_proto::image_builder::image_builder_server::{ImageBuilder, ImageBuilderServer};
use racetrack_proto::image_builder::{
    BuildEvent, BuildRequest, BuildResult, BuildStatus, GetBuildRequest, ListJobTypesRequest,
    ListJobTypesResponse, LogLine,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tonic::{Request, Response, Status};

const NS: &str = "fatmen";
const K8S_IMAGE: &str = "registry.local/racetrack/fatman:2026-12-03T120000";
const INTERNAL_PUB_URL: &str = "http://pub.racetrack.svc:7105/pub";
const DOCKER_NETWORK: &str = "racetrack-lc-k8s-test";

// ---------------------------------------------------------------- fake image-builder

/// Answers every build with `image`; counts builds.
#[derive(Clone)]
struct FakeBuilder {
    image: String,
    builds: Arc<AtomicUsize>,
}

type Events<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ImageBuilder for FakeBuilder {
    type BuildStream = Events<BuildEvent>;
    type StreamBuildLogsStream = Events<LogLine>;

    async fn build(
        &self,
        _request: Request<BuildRequest>,
    ) -> Result<Response<Self::BuildStream>, Status> {
        self.builds.fetch_add(1, Ordering::SeqCst);
        let events = vec![
            Ok(BuildEvent {
                event: Some(Event::Log(LogLine {
                    line: "fake build".into(),
                })),
            }),
            Ok(BuildEvent {
                event: Some(Event::Result(BuildResult {
                    success: true,
                    image_names: vec![self.image.clone()],
                    error: String::new(),
                })),
            }),
        ];
        Ok(Response::new(Box::pin(tokio_stream::iter(events))))
    }

    async fn get_build(
        &self,
        _request: Request<GetBuildRequest>,
    ) -> Result<Response<BuildStatus>, Status> {
        Err(Status::unimplemented("fake builder"))
    }

    async fn stream_build_logs(
        &self,
        _request: Request<GetBuildRequest>,
    ) -> Result<Response<Self::StreamBuildLogsStream>, Status> {
        Err(Status::unimplemented("fake builder"))
    }

    async fn list_job_types(
        &self,
        _request: Request<ListJobTypesRequest>,
    ) -> Result<Response<ListJobTypesResponse>, Status> {
        Err(Status::unimplemented("fake builder"))
    }
}

/// Starts the fake builder; returns its URL and the build counter.
async fn start_builder(image: &str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let builds = Arc::new(AtomicUsize::new(0));
    let service = ImageBuilderServer::new(FakeBuilder {
        image: image.to_string(),
        builds: builds.clone(),
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (url, builds)
}

// ---------------------------------------------------------------- fake kubelet

/// What the fake kubelet makes of each Deployment's pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pods {
    Ready,
    CrashLoop,
}

/// Keeps one pod per Deployment of the fake in the state `pods` says, carrying the Deployment's
/// current `racetrack-deployment-date` (so it counts for the newest deploy), and removes the pods
/// of Deployments that are gone. Stops when dropped.
struct Kubelet {
    pods: Arc<Mutex<Pods>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Kubelet {
    fn start(fake: &FakeKube) -> Kubelet {
        let pods = Arc::new(Mutex::new(Pods::Ready));
        let (fake, wanted) = (fake.clone(), pods.clone());
        let task = tokio::spawn(async move {
            loop {
                let behaviour = *wanted.lock().unwrap();
                for object in fake.names("deployments") {
                    let Some(deployment) = fake.object("deployments", NS, &object) else {
                        continue;
                    };
                    let stamp = deployment["spec"]["template"]["metadata"]["annotations"]
                        ["racetrack-deployment-date"]
                        .clone();
                    let name = format!("{object}-pod");
                    let status = match behaviour {
                        Pods::Ready => json!({"phase": "Running",
                            "conditions": [{"type": "Ready", "status": "True"}]}),
                        Pods::CrashLoop => json!({"phase": "Running", "containerStatuses": [{
                            "name": object, "image": "x", "imageID": "", "ready": false,
                            "restartCount": 3,
                            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                            "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}},
                        }]}),
                    };
                    let current = fake.object("pods", NS, &name);
                    if current.as_ref().is_some_and(|p| {
                        p["metadata"]["annotations"]["racetrack-deployment-date"] == stamp
                            && p["status"] == status
                    }) {
                        continue;
                    }
                    fake.put(
                        "pods",
                        NS,
                        &name,
                        json!({
                            "apiVersion": "v1", "kind": "Pod",
                            "metadata": {
                                "creationTimestamp": "2026-12-03T12:00:05Z",
                                "labels": {"racetrack/fatman": object, "racetrack/resource": "fatman"},
                                "annotations": {"racetrack-deployment-date": stamp},
                            },
                            "spec": {"containers": [{"name": object, "image": "x"}]},
                            "status": status,
                        }),
                    );
                }
                for pod in fake.names("pods") {
                    let object = pod.trim_end_matches("-pod");
                    if fake.object("deployments", NS, object).is_none() {
                        fake.remove("pods", NS, &pod);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Kubelet { pods, task }
    }

    fn set(&self, pods: Pods) {
        *self.pods.lock().unwrap() = pods;
    }
}

// ---------------------------------------------------------------- Lifecycle with a kubeconfig

/// One kubeconfig file per test process, rewritten (under this lock) for each Lifecycle started:
/// Lifecycle reads it while it starts, and `KUBECONFIG` is process-wide.
static KUBECONFIG_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static SET_KUBECONFIG: std::sync::Once = std::sync::Once::new();

fn kubeconfig_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "lifecycle-k8s-test-{}.kubeconfig",
        std::process::id()
    ))
}

/// A kubeconfig for the fake API server (plain HTTP, no credentials).
fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {NS}\nusers:\n- name: fake\n  user: {{}}\n"
    )
}

/// Lifecycle (SQLite) whose kubeconfig holds `kubeconfig_text`, with both targets enabled
/// (Docker the default) and the fake builder at `builder_url`.
/// Lifecycle with both targets enabled; the deploy and move tests run on Postgres (production's
/// registry), the others on SQLite.
async fn lifecycle(
    backend: Backend,
    kubeconfig_text: &str,
    builder_url: &str,
    extra: &[(&str, &str)],
) -> Option<TestApp> {
    let mut env: Vec<(&str, &str)> = vec![
        ("INFRASTRUCTURE_TARGETS", "docker,kubernetes"),
        ("INFRASTRUCTURE_TARGET", "docker"),
        ("FATMAN_K8S_NAMESPACE", NS),
        ("K8S_POLL_INTERVAL", "0.05"),
        ("IMAGE_BUILDER_URL", builder_url),
        ("IMAGE_BUILDER_TOKEN", "fake-builder-token"),
        ("INTERNAL_PUB_URL", INTERNAL_PUB_URL),
        ("DOCKER_NETWORK", DOCKER_NETWORK),
        ("DOCKER_PULL", "false"),
        ("FATMAN_READY_TIMEOUT", "30"),
    ];
    env.extend_from_slice(extra);
    let _lock = KUBECONFIG_LOCK.lock().await;
    std::fs::write(kubeconfig_path(), kubeconfig_text).unwrap();
    SET_KUBECONFIG.call_once(|| std::env::set_var("KUBECONFIG", kubeconfig_path()));
    TestApp::spawn_with(backend, &env).await
}

// ---------------------------------------------------------------- REST helpers

fn manifest(name: &str, target: Option<&str>, runtime_env: Value) -> Value {
    let mut m = json!({
        "name": name, "version": "1.0.0", "owner_email": "owner@example.com",
        "lang": "python3:latest", "git": {"remote": "https://github.com/x/y"},
        "python": {"entrypoint_path": "a.py", "entrypoint_class": "A"},
        "runtime_env": runtime_env,
    });
    if let Some(t) = target {
        m["infrastructure_target"] = json!(t);
    }
    m
}

/// Starts a deployment and waits for its end; returns the final deployment record.
async fn deploy(app: &TestApp, manifest: Value, secret_runtime_env: Value) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/deploy",
            Some(&app.admin_token),
            json!({"manifest": manifest, "secret_vars": {"runtime_env": secret_runtime_env}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    // A bound on waiting, not a speed assertion.
    for _ in 0..1200 {
        let (status, d) = app
            .get(&format!("/api/v1/deploy/{id}"), Some(&app.admin_token))
            .await;
        assert_eq!(status, StatusCode::OK, "{d}");
        if d["status"] != "in_progress" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deployment {id} did not end");
}

/// The fatman as the list shows it (with its target): `(NOT_FOUND, null)` when not registered.
async fn fatman(app: &TestApp, name: &str) -> (StatusCode, Value) {
    let (status, list) = app.get("/api/v1/fatman", Some(&app.admin_token)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    match list.as_array().unwrap().iter().find(|f| f["name"] == name) {
        Some(f) => (StatusCode::OK, f.clone()),
        None => (StatusCode::NOT_FOUND, Value::Null),
    }
}

async fn move_to(app: &TestApp, name: &str, target: &str) -> (StatusCode, Value, Vec<String>) {
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/fatman/{name}/1.0.0/move")))
        .header("X-Racetrack-Auth", &app.admin_token)
        .json(&json!({"infrastructure_target": target}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, warnings)
}

/// Where PUB is told to send calls to the fatman (the internal gRPC `ResolveFatman`).
async fn pub_route(app: &TestApp, pub_token: &str, name: &str) -> String {
    let mut client = racetrack_proto::lifecycle::lifecycle_client::LifecycleClient::connect(
        app.grpc_url.clone(),
    )
    .await
    .unwrap();
    let mut request = Request::new(racetrack_proto::lifecycle::ResolveFatmanRequest {
        name: name.into(),
        version: "latest".into(),
    });
    request
        .metadata_mut()
        .insert("x-racetrack-auth", pub_token.parse().unwrap());
    let route = client.resolve_fatman(request).await.unwrap().into_inner();
    route.internal_name
}

/// The newest audit event of the fatman.
async fn last_audit_event(app: &TestApp, name: &str) -> Value {
    let (status, events) = app
        .get(
            &format!("/api/v1/audit/events/fatman/{name}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events[0].clone()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(v: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn object_name(name: &str) -> String {
    racetrack_infra::object_name(name, "1.0.0")
}

/// Names of the fatman objects (Deployments, Services, Secrets) in the fake.
fn fatman_objects(fake: &FakeKube) -> Vec<(String, Vec<String>)> {
    ["deployments", "services", "secrets"]
        .iter()
        .map(|r| (r.to_string(), fake.names(r)))
        .collect()
}

fn objects_of(names: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    ["deployments", "services", "secrets"]
        .iter()
        .map(|r| (r.to_string(), names.clone()))
        .collect()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_reprovisions_and_redeploys_on_kubernetes_with_its_secrets() {
    let fake = FakeKube::start().await;
    let _kubelet = Kubelet::start(&fake);
    let (builder, builds) = start_builder(K8S_IMAGE).await;
    let Some(app) = lifecycle(Backend::Postgres, &kubeconfig(&fake.url), &builder, &[]).await
    else {
        return;
    };
    let object = object_name("k8s-adder");

    let done = deploy(
        &app,
        manifest(
            "k8s-adder",
            Some("kubernetes"),
            json!({"PLAIN": "plain-value"}),
        ),
        json!({"API_KEY": "s3cret-api-key"}),
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["infrastructure_target"], "kubernetes");
    assert_eq!(builds.load(Ordering::SeqCst), 1);

    // The registry: running on kubernetes, reached through the Service.
    let (status, f) = fatman(&app, "k8s-adder").await;
    assert_eq!(status, StatusCode::OK, "{f}");
    assert_eq!(f["status"], "running");
    assert_eq!(f["infrastructure_target"], "kubernetes");
    assert_eq!(f["internal_name"], format!("{object}.{NS}.svc:7000"));
    let pub_token = app.service_token(InternalService::Pub).await;
    assert_eq!(
        pub_route(&app, &pub_token, "k8s-adder").await,
        format!("{object}.{NS}.svc:7000")
    );

    // Exactly one Deployment, Service and Secret, and the namespace's NetworkPolicy.
    assert_eq!(fatman_objects(&fake), objects_of(&[&object]));
    assert_eq!(
        fake.names("networkpolicies"),
        vec![racetrack_infra::NETWORK_POLICY_NAME]
    );
    let deployment = fake.object("deployments", NS, &object).unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], K8S_IMAGE);
    let stamp = deployment["spec"]["template"]["metadata"]["annotations"]
        ["racetrack-deployment-date"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_ref = |key: &str| json!({"name": key, "valueFrom": {"secretKeyRef": {"name": object, "key": key}}});
    assert_eq!(
        container["env"],
        json!([
            {"name": "FATMAN_DEPLOYMENT_TIMESTAMP", "value": stamp},
            {"name": "FATMAN_NAME", "value": "k8s-adder"},
            {"name": "FATMAN_VERSION", "value": "1.0.0"},
            {"name": "PLAIN", "value": "plain-value"},
            {"name": "PUB_URL", "value": INTERNAL_PUB_URL},
            {"name": "REQUEST_TRACING_HEADER", "value": "X-Request-Tracing-Id"},
            secret_ref("API_KEY"),
            secret_ref("AUTH_TOKEN"),
        ])
    );
    let secret = fake.object("secrets", NS, &object).unwrap();
    let data = secret["data"].clone();
    assert_eq!(
        data.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["API_KEY", "AUTH_TOKEN"]
    );
    assert_eq!(data["API_KEY"], b64("s3cret-api-key"));
    // AUTH_TOKEN is the family's token: it authenticates as the fatman family.
    let family_token = unb64(&data["AUTH_TOKEN"]);
    let (status, who) = app
        .get("/api/v1/users/validate_user_auth", Some(&family_token))
        .await;
    assert_eq!(status, StatusCode::OK, "{who}");

    // Runtime logs come from the pods.
    fake.set_log(NS, &format!("{object}-pod"), "hello from the pod\n");
    let (status, logs) = app
        .get(
            "/api/v1/fatman/k8s-adder/1.0.0/logs",
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    assert_eq!(logs["logs"], "hello from the pod\n");

    // Lost: the Deployment and Service vanished, the Secret stayed. A reprovision runs the same
    // image with the secret env read back from the Secret, and a fresh AUTH_TOKEN of the family.
    fake.remove("deployments", NS, &object);
    fake.remove("services", NS, &object);
    let (status, body) = app
        .post(
            "/api/v1/fatman/k8s-adder/1.0.0/reprovision",
            Some(&app.admin_token),
            json!(null),
        )
        .await;
    assert_eq!((status, &body), (StatusCode::OK, &Value::Null));
    assert_eq!(fatman_objects(&fake), objects_of(&[&object]));
    assert_eq!(fake.object("secrets", NS, &object).unwrap()["data"], data);
    let again = fake.object("deployments", NS, &object).unwrap();
    assert_eq!(
        again["spec"]["template"]["spec"]["containers"][0]["image"],
        K8S_IMAGE
    );
    assert_eq!(
        builds.load(Ordering::SeqCst),
        1,
        "a reprovision builds nothing"
    );

    // A redeploy builds again and keeps the secrets too.
    let (status, body) = app
        .post(
            "/api/v1/fatman/k8s-adder/1.0.0/redeploy",
            Some(&app.admin_token),
            json!(null),
        )
        .await;
    assert_eq!((status, &body), (StatusCode::OK, &Value::Null));
    assert_eq!(builds.load(Ordering::SeqCst), 2);
    assert_eq!(fake.object("secrets", NS, &object).unwrap()["data"], data);
    assert_eq!(fatman(&app, "k8s-adder").await.1["status"], "running");

    // Deleting the fatman removes its objects.
    let (status, _) = app
        .delete("/api/v1/fatman/k8s-adder/1.0.0", Some(&app.admin_token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fatman_objects(&fake), objects_of(&[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refusals_fail_the_deployment_and_unknown_targets_are_refused_before_building() {
    let fake = FakeKube::start().await;
    let kubelet = Kubelet::start(&fake);
    let (builder, builds) = start_builder(K8S_IMAGE).await;
    let Some(app) = lifecycle(Backend::Sqlite, &kubeconfig(&fake.url), &builder, &[]).await else {
        return;
    };

    // RBAC refuses the Deployment: the deployment fails saying so, nothing is registered.
    fake.fail_next(Method::PATCH, "deployments", 403);
    let failed = deploy(
        &app,
        manifest("k8s-denied", Some("kubernetes"), json!({})),
        json!({}),
    )
    .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "deploying to kubernetes failed: RBAC: service account may not create/patch deployments in namespace fatmen: "
        ),
        "{error}"
    );
    assert_eq!(fatman(&app, "k8s-denied").await.0, StatusCode::NOT_FOUND);
    // What was applied before the refusal (Secret, Service) is removed again.
    assert_eq!(fatman_objects(&fake), objects_of(&[]));

    // A conflicting owner of the Secret (409).
    fake.fail_next(Method::PATCH, "secrets", 409);
    let failed = deploy(
        &app,
        manifest("k8s-conflict", Some("kubernetes"), json!({})),
        json!({}),
    )
    .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "deploying to kubernetes failed: conflict (409) while trying to create/patch secrets {} in namespace fatmen: ",
            object_name("k8s-conflict")
        )),
        "{error}"
    );
    assert_eq!(fatman(&app, "k8s-conflict").await.0, StatusCode::NOT_FOUND);
    assert_eq!(fatman_objects(&fake), objects_of(&[]));

    // Pods that crash-loop: the deploy fails with the reason and its objects are removed.
    kubelet.set(Pods::CrashLoop);
    let failed = deploy(
        &app,
        manifest("k8s-crash", Some("kubernetes"), json!({})),
        json!({}),
    )
    .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    // Seen when the Deployment is applied ("crashed at start") or while waiting ("did not start").
    assert!(
        error.contains(
            "CrashLoopBackOff: the fatman keeps crashing (3 restarts); last exit code 2 (Error)"
        ),
        "{error}"
    );
    assert!(fake
        .object("deployments", NS, &object_name("k8s-crash"))
        .is_none());
    let built = builds.load(Ordering::SeqCst);
    assert_eq!(built, 3);

    // A target that is not enabled: 400 naming the enabled ones, before any build.
    let (status, body) = app
        .post(
            "/api/v1/deploy",
            Some(&app.admin_token),
            json!({"manifest": manifest("k8s-nomad", Some("nomad"), json!({}))}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"],
        "infrastructure target nomad is not enabled; enabled targets: docker, kubernetes"
    );
    assert_eq!(builds.load(Ordering::SeqCst), built);

    // A fatman that was never registered cannot be moved.
    let (status, body, _) = move_to(&app, "k8s-denied", "docker").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enabled_target_that_cannot_connect_is_reported_unavailable() {
    let (builder, builds) = start_builder(K8S_IMAGE).await;
    // No usable kubeconfig (and not in a cluster): Lifecycle starts all the same.
    let Some(app) = lifecycle(
        Backend::Sqlite,
        "this is not a kubeconfig: [",
        &builder,
        &[],
    )
    .await
    else {
        return;
    };
    let (status, body) = app
        .post(
            "/api/v1/deploy",
            Some(&app.admin_token),
            json!({"manifest": manifest("k8s-nowhere", Some("kubernetes"), json!({}))}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("infrastructure target kubernetes is unavailable: "),
        "{error}"
    );
    assert_eq!(builds.load(Ordering::SeqCst), 0);
    let (status, _) = app.get("/api/v1/info", None).await;
    assert_eq!(status, StatusCode::OK);

    // A fatman registered on it can be neither reached nor removed until it is back: 503 each,
    // and the registry keeps it.
    app.seed_fatman("k8s-stuck", "1.0.0", None).await;
    let mut conn = app.db();
    let mut row = racetrack_db::repo::fatmen::find(&mut conn, "k8s-stuck", "1.0.0")
        .unwrap()
        .unwrap();
    row.infrastructure_target = Some("kubernetes".into());
    racetrack_db::repo::fatmen::update(&mut conn, &row).unwrap();
    drop(conn);
    let path = "/api/v1/fatman/k8s-stuck/1.0.0";
    for (method, url, body, expected) in [
        (Method::DELETE, path.to_string(), None, "infrastructure target kubernetes is unavailable, so the fatman cannot be removed from it: "),
        (Method::GET, format!("{path}/logs"), None, "infrastructure target kubernetes is unavailable: "),
        (Method::POST, format!("{path}/redeploy"), Some(json!(null)), "infrastructure target kubernetes is unavailable: "),
        (Method::POST, format!("{path}/move"), Some(json!({"infrastructure_target": "docker"})),
            "the fatman cannot be taken off its infrastructure target kubernetes: infrastructure target kubernetes is unavailable: "),
    ] {
        let (status, body) = app.call(method.clone(), &url, Some(&app.admin_token), body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {url}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with(expected), "{method} {url}: {error}");
    }
    assert_eq!(fatman(&app, "k8s-stuck").await.0, StatusCode::OK);
}

/// A Redis for event checks: `None` (skip that part) when unreachable outside CI.
fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let addr = racetrack_events::RedisAddr::parse(&url).ok()?;
    let up =
        addr.socket().parse().ok().is_some_and(|a| {
            std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok()
        });
    if up {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Redis is required under CI (TEST_REDIS_URL or 127.0.0.1:6379)");
    }
    eprintln!("Redis unavailable at {url}: the invalidation event of a move is not checked");
    None
}

/// Waits for a `fatman` invalidation event naming `name`.
async fn fatman_event(
    events: &mut tokio::sync::mpsc::Receiver<racetrack_events::Notification>,
    name: &str,
) {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("no fatman event within 10 s");
        if let Some(racetrack_events::Notification::Event(racetrack_events::Event::Fatman {
            name: got,
        })) = next
        {
            if got == name {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_between_docker_and_kubernetes() {
    if !docker_test_env_or_skip("moves_between_docker_and_kubernetes").await {
        return;
    }
    ensure_test_image().await.expect("building the test image");
    let fake = FakeKube::start().await;
    let kubelet = Kubelet::start(&fake);
    let (builder, builds) = start_builder(TEST_IMAGE).await;
    let redis = redis_url();
    let mut extra = Vec::new();
    if let Some(url) = &redis {
        extra.push(("REDIS_URL", url.as_str()));
    }
    let Some(app) = lifecycle(Backend::Postgres, &kubeconfig(&fake.url), &builder, &extra).await
    else {
        return;
    };
    let pub_token = app.service_token(InternalService::Pub).await;
    let docker = racetrack_infra::testing::docker_target(DOCKER_NETWORK);
    let first = unique_name("lc-move");
    let second = unique_name("lc-move");
    let _containers = ContainerGuard::new([
        racetrack_model::names::resource_name(&first, "1.0.0"),
        racetrack_model::names::resource_name(&second, "1.0.0"),
    ]);

    // 1. On Docker (the default target), with a secret (kept in the container's env).
    let done = deploy(
        &app,
        manifest(&first, None, json!({})),
        json!({"API_KEY": "docker-secret"}),
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    let (_, before) = fatman(&app, &first).await;
    assert_eq!(before["infrastructure_target"], "docker");
    let docker_address = before["internal_name"].as_str().unwrap().to_string();
    assert!(docker_address.starts_with("127.0.0.1:"), "{before}");

    // 2. Failed moves leave it running on Docker, registered as before, nothing left on
    //    Kubernetes: refused by RBAC, then pods that crash-loop.
    fake.fail_next(Method::PATCH, "deployments", 403);
    let (status, body, _) = move_to(&app, &first, "kubernetes").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "moving fatman {first} 1.0.0 from docker to kubernetes failed; it keeps running on docker: deploying to kubernetes failed: RBAC: "
        )),
        "{error}"
    );
    kubelet.set(Pods::CrashLoop);
    let (status, body, _) = move_to(&app, &first, "kubernetes").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("from docker to kubernetes failed; it keeps running on docker: ")
            && error.contains("CrashLoopBackOff: the fatman keeps crashing"),
        "{error}"
    );
    kubelet.set(Pods::Ready);
    assert_eq!(fatman_objects(&fake), objects_of(&[]));
    // The fake kubelet has removed the crashed pod (a real one would be terminating, which the
    // target ignores) before the next attempt.
    for _ in 0..200 {
        if fake.names("pods").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fake.names("pods").is_empty());
    assert_eq!(fatman(&app, &first).await.1, before);
    let running = docker.get(&first, "1.0.0").await.unwrap().unwrap();
    assert_eq!(running.status, racetrack_infra::InfraStatus::Running);
    assert_eq!(pub_route(&app, &pub_token, &first).await, docker_address);

    // 3. Docker → Kubernetes: running there, gone from Docker, the registry and PUB's route
    //    follow; the secret the container held comes along into the Secret.
    let mut events = match &redis {
        Some(url) => {
            let mut rx = racetrack_events::subscribe(url).unwrap();
            loop {
                match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                    Ok(Some(racetrack_events::Notification::Connected)) => break,
                    Ok(Some(_)) => continue,
                    other => panic!("no Redis subscription: {other:?}"),
                }
            }
            Some(rx)
        }
        None => None,
    };
    let (status, body, warnings) = move_to(&app, &first, "kubernetes").await;
    assert_eq!((status, &body), (StatusCode::OK, &Value::Null));
    assert!(warnings.is_empty(), "{warnings:?}");
    if let Some(rx) = events.as_mut() {
        fatman_event(rx, &first).await;
    }
    let object = object_name(&first);
    assert_eq!(fatman_objects(&fake), objects_of(&[&object]));
    let deployment = fake.object("deployments", NS, &object).unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        TEST_IMAGE
    );
    let secret = fake.object("secrets", NS, &object).unwrap();
    assert_eq!(
        secret["data"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["API_KEY", "AUTH_TOKEN"]
    );
    assert_eq!(unb64(&secret["data"]["API_KEY"]), "docker-secret");
    assert!(docker.get(&first, "1.0.0").await.unwrap().is_none());
    let (_, moved) = fatman(&app, &first).await;
    assert_eq!(moved["infrastructure_target"], "kubernetes");
    assert_eq!(moved["status"], "running");
    assert_eq!(moved["internal_name"], format!("{object}.{NS}.svc:7000"));
    assert_eq!(moved["id"], before["id"]);
    assert_eq!(
        pub_route(&app, &pub_token, &first).await,
        format!("{object}.{NS}.svc:7000")
    );
    let event = last_audit_event(&app, &first).await;
    assert_eq!(event["event_type"], "fatman_moved", "{event}");
    assert_eq!(event["username_executor"], "admin");
    assert_eq!(
        event["properties"],
        json!({"from": "docker", "to": "kubernetes", "secret_runtime_env_carried": 1,
               "removed_from_former": true})
    );
    // Moving it where it is: refused.
    let (status, body, _) = move_to(&app, &first, "kubernetes").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"],
        "fatman is already on infrastructure target kubernetes"
    );

    // 4. Kubernetes → Docker, with the secret env the Secret kept: the container gets it (the
    //    test image prints its env with TEST_MODE=env).
    let done = deploy(
        &app,
        manifest(&second, Some("kubernetes"), json!({"TEST_MODE": "env"})),
        json!({"API_KEY": "k8s-secret-value"}),
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    let second_object = object_name(&second);
    assert_eq!(
        fatman_objects(&fake),
        objects_of(&[&object, &second_object])
    );
    let (status, body, warnings) = move_to(&app, &second, "docker").await;
    assert_eq!((status, &body), (StatusCode::OK, &Value::Null));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(fatman_objects(&fake), objects_of(&[&object]));
    let (_, moved) = fatman(&app, &second).await;
    assert_eq!(moved["infrastructure_target"], "docker");
    assert_eq!(moved["status"], "running");
    let address = moved["internal_name"].as_str().unwrap().to_string();
    assert!(address.starts_with("127.0.0.1:"), "{moved}");
    assert_eq!(pub_route(&app, &pub_token, &second).await, address);
    let container = docker.get(&second, "1.0.0").await.unwrap().unwrap();
    assert_eq!(container.status, racetrack_infra::InfraStatus::Running);
    assert_eq!(container.internal_name, address);
    let logs = docker.logs(&second, "1.0.0", 0).await.unwrap();
    assert!(logs.contains("API_KEY=k8s-secret-value"), "{logs}");
    assert!(logs.contains("AUTH_TOKEN="), "{logs}");
    let event = last_audit_event(&app, &second).await;
    assert_eq!(
        event["properties"],
        json!({"from": "kubernetes", "to": "docker", "secret_runtime_env_carried": 1,
               "removed_from_former": true})
    );

    // 5. A redeploy on Docker runs a new container with the secret env the old one held.
    let built = builds.load(Ordering::SeqCst);
    let (status, body) = app
        .post(
            &format!("/api/v1/fatman/{second}/1.0.0/redeploy"),
            Some(&app.admin_token),
            json!(null),
        )
        .await;
    assert_eq!((status, &body), (StatusCode::OK, &Value::Null));
    assert_eq!(
        builds.load(Ordering::SeqCst),
        built + 1,
        "a redeploy builds again"
    );
    let logs = docker.logs(&second, "1.0.0", 0).await.unwrap();
    assert!(logs.contains("API_KEY=k8s-secret-value"), "{logs}");
}
