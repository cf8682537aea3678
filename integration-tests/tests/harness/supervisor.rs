//! The lifecycle supervisor binary in tests: start it against a platform's (or a bare) Lifecycle,
//! read its `/health` and `/metrics`, and drive Docker directly to break things.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{binary, free_port, wait_http_ok, Platform, Service};

/// A running `lifecycle-supervisor`.
pub struct SupervisorProc {
    pub url: String,
    pub service: Service,
}

/// Short intervals for tests; each test overrides what it exercises. The supervisor talks to
/// Lifecycle's gRPC API only (no database, no `AUTH_KEY`).
pub fn test_env(lifecycle_grpc_url: &str, token: &str, network: &str) -> Vec<(String, String)> {
    [
        ("LIFECYCLE_GRPC_URL", lifecycle_grpc_url),
        ("LIFECYCLE_AUTH_TOKEN", token),
        ("DOCKER_NETWORK", network),
        ("SYNC_INTERVAL_SECS", "1"),
        ("RECONCILE_INTERVAL_SECS", "600"),
        ("ORPHAN_GRACE_SECS", "3600"),
        ("LEASE_SECS", "3"),
        ("LEASE_RETRY_SECS", "0.5"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Environment for a supervisor of `p`: its Lifecycle's gRPC API and the supervisor's own stored
/// token (`generate-auth lifecycle-supervisor`, as `make run` does).
pub fn platform_env(p: &Platform) -> Vec<(String, String)> {
    let token = p.internal_token("lifecycle-supervisor");
    let mut env = test_env(&p.lifecycle_grpc_url, &token, "racetrack-it");
    // Parallel tests share the engine: look only at this platform's fatman network.
    env.push(("DOCKER_NETWORK_ONLY".into(), "true".into()));
    // Status changes are published for PUB's cache, as in production.
    env.push(("REDIS_URL".into(), super::REDIS_URL.to_string()));
    env
}

/// A Lifecycle alone (no image-builder, no PUB) on `database_url`: enough for supervisors.
pub struct BareLifecycle {
    pub grpc_url: String,
    /// A stored token of the supervisor (`generate-auth lifecycle-supervisor`).
    pub supervisor_token: String,
    pub service: Service,
}

impl BareLifecycle {
    pub async fn start(database_url: &str) -> BareLifecycle {
        let (http, grpc) = (free_port(), free_port());
        let auth_key = format!("it-{}", uuid::Uuid::new_v4());
        let env: Vec<(String, String)> = [
            ("HTTP_ADDR", format!("127.0.0.1:{http}")),
            ("GRPC_ADDR", format!("127.0.0.1:{grpc}")),
            ("DATABASE_URL", database_url.to_string()),
            ("AUTH_KEY", auth_key.clone()),
            ("ADMIN_PASSWORD", super::ADMIN_PASSWORD.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let service = Service::spawn("lifecycle", &binary("lifecycle"), &["serve"], &env);
        wait_http_ok(
            &format!("http://127.0.0.1:{http}/ready"),
            Duration::from_secs(30),
        )
        .await;
        let out = Command::new(binary("lifecycle"))
            .args(["generate-auth", "lifecycle-supervisor"])
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("AUTH_KEY", &auth_key)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let supervisor_token = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_string();
        BareLifecycle {
            grpc_url: format!("http://127.0.0.1:{grpc}"),
            supervisor_token,
            service,
        }
    }
}

/// Sets (or replaces) one variable.
pub fn with(mut env: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
    env
}

impl SupervisorProc {
    /// Starts the binary on a free port and waits for `/ready`.
    pub async fn start(name: &str, env: &[(String, String)]) -> SupervisorProc {
        let port = free_port();
        let mut env = env.to_vec();
        env.push(("HTTP_ADDR".into(), format!("127.0.0.1:{port}")));
        let service = Service::spawn(name, &binary("lifecycle-supervisor"), &[], &env);
        let url = format!("http://127.0.0.1:{port}");
        wait_http_ok(&format!("{url}/ready"), Duration::from_secs(30)).await;
        SupervisorProc { url, service }
    }

    pub async fn health(&self) -> Value {
        reqwest::get(format!("{}/health", self.url))
            .await
            .expect("supervisor /health")
            .json()
            .await
            .expect("/health is JSON")
    }

    /// The supervisor's view of one fatman (`/fatmen`): status and `last_check_time`.
    pub async fn fatman(&self, name: &str, version: &str) -> Option<Value> {
        let list: Value = reqwest::get(format!("{}/fatmen", self.url))
            .await
            .expect("supervisor /fatmen")
            .json()
            .await
            .expect("/fatmen is JSON");
        list.as_array()?
            .iter()
            .find(|f| f["name"] == name && f["version"] == version)
            .cloned()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("supervisor /metrics")
            .text()
            .await
            .unwrap()
    }

    /// The value of an unlabelled metric (0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .filter(|rest| rest.starts_with(' '))
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    pub async fn is_leader(&self) -> bool {
        self.health().await["leader"] == true
    }

    pub async fn syncs_completed(&self) -> u64 {
        self.health().await["syncs_completed"].as_u64().unwrap_or(0)
    }

    /// Waits until the supervisor has completed `n` more syncs than now.
    pub async fn wait_syncs(&self, n: u64, timeout: Duration) {
        let start = self.syncs_completed().await;
        let target = start + n;
        wait_until(&format!("{} more syncs", n), timeout, || async {
            self.syncs_completed().await >= target
        })
        .await;
    }
}

/// Polls `check` every 100 ms until it holds; panics with `what` after `timeout`. Returns the time
/// it took.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `docker ARGS`; returns (success, stdout).
pub fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

pub fn container_exists(name: &str) -> bool {
    docker(&["container", "inspect", name]).0
}

/// Removes the named containers and networks when dropped (also when a test panics).
#[derive(Default)]
pub struct DockerCleanup {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

/// Starts a container the platform did not deploy, labelled like a managed fatman and attached to
/// `network` (created when missing): python's http.server on 7000 from the local python base image.
pub fn start_unowned_fatman(name: &str, version: &str, network: &str) -> String {
    let resource = format!("fatman-{name}-v-{}", version.replace('.', "-"));
    if !docker(&["network", "inspect", network]).0 {
        let (ok, out) = docker(&["network", "create", network]);
        assert!(ok, "docker network create {network}: {out}");
    }
    let (ok, out) = docker(&[
        "run",
        "-d",
        "--name",
        &resource,
        "--network",
        network,
        "-p",
        "127.0.0.1::7000",
        "--label",
        "racetrack.managed=true",
        "--label",
        &format!("racetrack.fatman.name={name}"),
        "--label",
        &format!("racetrack.fatman.version={version}"),
        "racetrack/python-base:bookworm",
        "python3",
        "-m",
        "http.server",
        "7000",
    ]);
    assert!(ok, "docker run {resource}: {out}");
    resource
}

/// A fatman as Lifecycle lists it (`None` when not listed).
pub async fn listed_fatman(p: &Platform, name: &str, version: &str) -> Option<Value> {
    let (status, list) = p.call(reqwest::Method::GET, "/api/v1/fatman", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array()?
        .iter()
        .find(|f| f["name"] == name && f["version"] == version)
        .cloned()
}

/// Audit event types recorded for a fatman, newest first.
pub async fn audit_events(p: &Platform, name: &str) -> Vec<(String, Value)> {
    let (status, list) = p
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/audit/events/fatman/{name}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    (
                        e["event_type"].as_str().unwrap_or("").to_string(),
                        e.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Stops the platform's Lifecycle and starts it again on the same port, database and key.
pub async fn restart_lifecycle(p: &mut Platform) {
    p.services.retain(|s| s.name != "lifecycle");
    let port = p
        .lifecycle_url
        .rsplit(':')
        .next()
        .and_then(|port| port.parse::<u16>().ok())
        .expect("lifecycle port");
    let env: Vec<(String, String)> = [
        ("HTTP_ADDR", format!("127.0.0.1:{port}")),
        (
            "GRPC_ADDR",
            p.lifecycle_grpc_url
                .trim_start_matches("http://")
                .to_string(),
        ),
        ("REDIS_URL", super::REDIS_URL.to_string()),
        (
            "INTERNAL_PUB_URL",
            format!("http://host.docker.internal:{}/pub", p.pub_port),
        ),
        ("DATABASE_URL", p.database_url.clone()),
        ("AUTH_KEY", p.auth_key.clone()),
        ("ADMIN_PASSWORD", super::ADMIN_PASSWORD.to_string()),
        ("DOCKER_NETWORK", "racetrack-it".to_string()),
        ("FATMAN_READY_TIMEOUT", "30".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // The old process is gone once `retain` dropped it; its port may linger briefly.
    let start = Instant::now();
    loop {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "port {port} stays busy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lifecycle = Service::spawn("lifecycle", &binary("lifecycle"), &["serve"], &env);
    p.services.push(lifecycle);
    wait_http_ok(
        &format!("{}/ready", p.lifecycle_url),
        Duration::from_secs(30),
    )
    .await;
}
