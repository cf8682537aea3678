//! Starts the real service binaries (built by `cargo build --workspace --bins`, which `make test`
//! runs first) on free ports, and cleans up after them.
#![allow(dead_code)]
pub mod dashboard;
pub mod supervisor;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "Integration-Adm1n-Pass";
/// The internal token lifecycle presents to the image-builder (both get it).
pub const IMAGE_BUILDER_TOKEN: &str = "integration-image-builder-token-0123";

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Fails under CI, skips (returns false, with the reason printed) elsewhere.
pub fn require(what: &str, ok: bool) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("{what} is required under CI but missing (make test-services sets it up)");
    }
    eprintln!("SKIPPED: {what} is missing; run `make test-services`");
    false
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `target/debug/<name>`: the test executable lives in `target/debug/deps`.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins`",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Calls a fatman's perform directly at its internal address (no PUB).
pub async fn perform(internal_name: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{internal_name}/api/v1/perform"))
        .json(&body)
        .send()
        .await
        .expect("fatman reachable");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

pub fn redis_ok() -> bool {
    std::net::TcpStream::connect("127.0.0.1:6379").is_ok()
}

/// A name no other test (or earlier run) uses: `prefix-<8 hex>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// What deploying a python3 fatman needs: the engine, the local registry and the base image.
pub fn deploy_prerequisites() -> bool {
    require("the Docker engine", docker_ok())
        && require("the local registry at 127.0.0.1:5000", registry_ok())
        && require(
            "the base image racetrack/python-base:bookworm",
            image_exists("racetrack/python-base:bookworm"),
        )
}

pub fn docker_ok() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn registry_ok() -> bool {
    Command::new("curl")
        .args(["-sf", "http://127.0.0.1:5000/v2/"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A child process whose output is kept (printed when the test fails) and which dies with the test.
pub struct Service {
    pub name: String,
    child: Child,
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Service {
    pub fn spawn(name: &str, binary: &Path, args: &[&str], env: &[(String, String)]) -> Service {
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Service {
            name: name.to_string(),
            child,
            output,
        }
    }

    pub fn dump(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- {} output -----\n{}\n-----", self.name, self.dump());
        }
    }
}

pub async fn wait_http_ok(url: &str, timeout: Duration) {
    let client = reqwest::Client::new();
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer within {timeout:?}");
}

/// Lifecycle + image-builder on free ports, SQLite in a temp dir, fatmen on the local Docker.
pub struct Platform {
    pub lifecycle_url: String,
    pub admin_token: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub services: Vec<Service>,
    /// Lifecycle's `AUTH_KEY`, for services that need internal tokens or the same database.
    pub auth_key: String,
    /// Lifecycle's `DATABASE_URL` (SQLite in `dir`).
    pub database_url: String,
    /// Lifecycle's internal gRPC API (for PUB).
    pub lifecycle_grpc_url: String,
    /// Where [`Platform::start_pub`] listens; fatmen get `PUB_URL` pointing there.
    pub pub_port: u16,
}

impl Platform {
    pub async fn start() -> Platform {
        Platform::start_with(&[]).await
    }

    /// [`Platform::start`] with extra (or overriding) environment for Lifecycle.
    pub async fn start_with(lifecycle_extra_env: &[(&str, &str)]) -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let root = workspace_root();
        let ib_grpc = free_port();
        let ib_http = free_port();
        let lc_http = free_port();
        let lc_grpc = free_port();
        let pub_port = free_port();
        let s = |v: &str| v.to_string();
        let builder_env = vec![
            (s("GRPC_ADDR"), format!("127.0.0.1:{ib_grpc}")),
            (s("HTTP_ADDR"), format!("127.0.0.1:{ib_http}")),
            (s("DOCKER_REGISTRY"), s("127.0.0.1:5000")),
            (
                s("BUILD_LOGS_DIR"),
                dir.path().join("build-logs").display().to_string(),
            ),
            (
                s("WORKSPACES_DIR"),
                dir.path().join("workspaces").display().to_string(),
            ),
            (
                s("JOB_TYPES_DIR"),
                root.join("job-types").display().to_string(),
            ),
            (s("PYTHON_BASE_IMAGE"), s("racetrack/python-base:bookworm")),
            (s("BASE_IMAGE"), s("racetrack/debian-base:bookworm")),
            (s("ALLOW_FILE_GIT_REMOTES"), s("true")),
            (s("IMAGE_BUILDER_TOKEN"), s(IMAGE_BUILDER_TOKEN)),
            (s("EXTRA_CA_CERTS"), s("/etc/ssl/certs/ca-certificates.crt")),
        ];
        let builder = Service::spawn("image-builder", &binary("image-builder"), &[], &builder_env);
        let auth_key = format!("it-{}", uuid::Uuid::new_v4());
        let database_url = format!("sqlite://{}", dir.path().join("racetrack.db").display());
        let mut lifecycle_env = vec![
            (s("HTTP_ADDR"), format!("127.0.0.1:{lc_http}")),
            (s("DATABASE_URL"), database_url.clone()),
            (s("AUTH_KEY"), auth_key.clone()),
            (s("GRPC_ADDR"), format!("127.0.0.1:{lc_grpc}")),
            (s("REDIS_URL"), s(REDIS_URL)),
            (
                s("INTERNAL_PUB_URL"),
                format!("http://host.docker.internal:{pub_port}/pub"),
            ),
            (s("ADMIN_PASSWORD"), s(ADMIN_PASSWORD)),
            (
                s("IMAGE_BUILDER_URL"),
                format!("http://127.0.0.1:{ib_grpc}"),
            ),
            (s("IMAGE_BUILDER_TOKEN"), s(IMAGE_BUILDER_TOKEN)),
            (s("DOCKER_NETWORK"), s("racetrack-it")),
            (s("FATMAN_READY_TIMEOUT"), s("30")),
            // Fatmen's `pub_url` points at the PUB that `start_pub` starts.
            (
                s("EXTERNAL_PUB_URL"),
                format!("http://127.0.0.1:{pub_port}/pub"),
            ),
        ];
        for (k, v) in lifecycle_extra_env {
            lifecycle_env.push((k.to_string(), v.to_string()));
        }
        let lifecycle = Service::spawn(
            "lifecycle",
            &binary("lifecycle"),
            &["serve"],
            &lifecycle_env,
        );
        let lifecycle_url = format!("http://127.0.0.1:{lc_http}");
        wait_http_ok(&format!("{lifecycle_url}/ready"), Duration::from_secs(30)).await;
        wait_http_ok(
            &format!("http://127.0.0.1:{ib_http}/live"),
            Duration::from_secs(30),
        )
        .await;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        let login: Value = client
            .post(format!("{lifecycle_url}/api/v1/users/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let admin_token = login["token"].as_str().expect("admin token").to_string();
        Platform {
            lifecycle_url,
            admin_token,
            client,
            dir,
            services: vec![builder, lifecycle],
            auth_key,
            database_url,
            lifecycle_grpc_url: format!("http://127.0.0.1:{lc_grpc}"),
            pub_port,
        }
    }

    /// An internal token for a Racetrack service, made by `lifecycle generate-auth` as an operator would.
    pub fn internal_token(&self, service: &str) -> String {
        let out = Command::new(binary("lifecycle"))
            .args(["generate-auth", service])
            .env_clear()
            .env("DATABASE_URL", &self.database_url)
            .env("AUTH_KEY", &self.auth_key)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_string()
    }

    /// Starts PUB in front of this platform's fatmen; returns its base URL (`…/pub`).
    pub async fn start_pub(&mut self, extra_env: &[(&str, &str)]) -> String {
        let port = self.pub_port;
        let s = |v: &str| v.to_string();
        let mut env = vec![
            // All interfaces: fatmen call PUB from their containers through the host gateway.
            (s("PUB_ADDR"), format!("0.0.0.0:{port}")),
            (s("LIFECYCLE_GRPC_URL"), self.lifecycle_grpc_url.clone()),
            (s("LIFECYCLE_AUTH_TOKEN"), self.internal_token("pub")),
            (s("REDIS_URL"), s(REDIS_URL)),
        ];
        for (k, v) in extra_env {
            env.push((k.to_string(), v.to_string()));
        }
        let service = Service::spawn("pub", &binary("pub"), &[], &env);
        let url = format!("http://127.0.0.1:{port}/pub");
        wait_http_ok(&format!("{url}/live"), Duration::from_secs(20)).await;
        self.services.push(service);
        url
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.lifecycle_url, path))
            .header("X-Racetrack-Auth", &self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Starts a deployment and polls it until it ends; returns the final DeploymentDto.
    pub async fn deploy(&self, payload: Value) -> Value {
        let (status, body) = self
            .call(reqwest::Method::POST, "/api/v1/deploy", Some(payload))
            .await;
        assert_eq!(status, 200, "deploy request: {body}");
        let id = body["id"].as_str().unwrap().to_string();
        let start = Instant::now();
        loop {
            let (_, d) = self
                .call(reqwest::Method::GET, &format!("/api/v1/deploy/{id}"), None)
                .await;
            if d["status"] != "in_progress" {
                return d;
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "deployment {id} did not end: {d}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// gzipped tar of a directory's contents, base64: the original client's `build_context`.
pub fn build_context(dir: &Path) -> String {
    use base64::Engine;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut gz);
        tar.append_dir_all(".", dir).unwrap();
        tar.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
}

/// A git repository (branch `main`, one commit) holding the files of `sample`, in the platform's
/// temp dir: the builder may clone it by `file://` (`ALLOW_FILE_GIT_REMOTES`), nothing is fetched
/// from the internet.
pub fn local_git_repo(p: &Platform, sample: &Path) -> PathBuf {
    let repo = p.dir.path().join(format!("repo-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    for entry in std::fs::read_dir(sample).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), repo.join(entry.file_name())).unwrap();
        }
    }
    git(&["add", "."]);
    git(&[
        "-c",
        "user.email=t@example.com",
        "-c",
        "user.name=t",
        "commit",
        "-qm",
        "sample",
    ]);
    repo
}

/// A sample's manifest as JSON, renamed so parallel tests don't collide.
pub fn sample_manifest(sample: &str, name: &str, version: &str) -> Value {
    let text = std::fs::read_to_string(
        workspace_root()
            .join("sample")
            .join(sample)
            .join("fatman.yaml"),
    )
    .unwrap();
    let mut m: Value = serde_yaml::from_str(&text).unwrap();
    m["name"] = json!(name);
    m["version"] = json!(version);
    m
}

pub fn containers_named(prefix: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("name={prefix}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}
