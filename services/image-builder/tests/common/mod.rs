//! Test harness: the image builder's real gRPC server on a free loopback port, fixture job types
//! made from busybox-static, hostile-free build contexts, and cleanup of every image made.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use image_builder::auth::SendToken;
use image_builder::docker::{BuildSpec, DockerEngine};
use image_builder::{App, Config};
use racetrack_proto::image_builder::build_event::Event;
use racetrack_proto::image_builder::image_builder_client::ImageBuilderClient;
use racetrack_proto::image_builder::{BuildEvent, BuildRequest, BuildResult};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const BUSYBOX: &str = "/bin/busybox";
pub const NAMESPACE: &str = "racetrack-ib-test";
pub const REGISTRY: &str = "127.0.0.1:5000";
/// The internal token test servers require (`IMAGE_BUILDER_TOKEN`).
pub const TOKEN: &str = "image-builder-test-token-0123456789";

/// A gRPC client that sends a token (or none).
pub type Client = ImageBuilderClient<InterceptedService<Channel, SendToken>>;

/// A client of `addr` (`host:port`) sending `token` (`None`: no token at all).
pub async fn client_with(addr: &str, token: Option<&str>) -> Client {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let send = match token {
        Some(t) => SendToken::new(t).expect("token"),
        None => SendToken::none(),
    };
    ImageBuilderClient::with_interceptor(channel, send).max_decoding_message_size(64 << 20)
}

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Docker and busybox-static, or `None` (test skipped with a printed reason). Under `CI=true`
/// a missing prerequisite fails the test instead.
pub async fn prerequisites() -> Option<()> {
    let problem = match DockerEngine::new().ping().await {
        Err(e) => Some(format!("the Docker engine is unreachable: {e}")),
        Ok(()) if !Path::new(BUSYBOX).is_file() => Some(format!(
            "{BUSYBOX} is missing (apt-get install -y busybox-static)"
        )),
        Ok(()) => None,
    };
    match problem {
        None => Some(()),
        Some(p) if in_ci() => panic!("CI=true and {p}"),
        Some(p) => {
            eprintln!("SKIPPED: {p}");
            None
        }
    }
}

/// Whether a registry answers on 127.0.0.1:5000 (`GET /v2/`).
pub fn registry_answers() -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(
        &REGISTRY.parse().expect("address"),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 32];
    let n = stream.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    head.starts_with("HTTP/1.") && (head.contains(" 200") || head.contains(" 401"))
}

pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..10])
}

/// One raw HTTP/1.0 request to the local registry: (status, headers + body).
fn registry_request(method: &str, path: &str, accept: &str) -> Option<(u16, String)> {
    let mut stream =
        std::net::TcpStream::connect_timeout(&REGISTRY.parse().ok()?, Duration::from_millis(500))
            .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {REGISTRY}\r\nAccept: {accept}\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response))
}

/// Deletes `127.0.0.1:5000/repo:tag` from the local registry (its manifest; the registry's
/// garbage collection frees the blobs).
pub fn registry_delete(image: &str) {
    let Some(rest) = image.strip_prefix(&format!("{REGISTRY}/")) else {
        return;
    };
    let Some((repo, tag)) = rest.rsplit_once(':') else {
        return;
    };
    let accept = "application/vnd.docker.distribution.manifest.v2+json";
    let Some((200, head)) =
        registry_request("HEAD", &format!("/v2/{repo}/manifests/{tag}"), accept)
    else {
        return;
    };
    let digest = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("docker-content-digest")
            .then(|| v.trim().to_string())
    });
    if let Some(digest) = digest {
        let _ = registry_request("DELETE", &format!("/v2/{repo}/manifests/{digest}"), accept);
    }
}

/// Removes the listed images when dropped (also when a test fails), locally and from the
/// local registry.
#[derive(Default)]
pub struct Images(pub Vec<String>);

impl Images {
    pub fn add(&mut self, image: impl Into<String>) {
        self.0.push(image.into());
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let images = std::mem::take(&mut self.0);
        if images.is_empty() {
            return;
        }
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let docker = DockerEngine::new();
                for image in images.iter().rev() {
                    registry_delete(image);
                    if let Err(e) = docker.remove_image(image).await {
                        eprintln!("cleanup: {e}");
                    }
                }
            });
        })
        .join();
    }
}

pub fn write(dir: &Path, rel: &str, content: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

/// A tiny base image: busybox as /bin/sh with its applets installed. Built with the builder's
/// own Docker code (nothing can be pulled).
pub async fn busybox_image(name: &str, images: &mut Images) {
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::copy(BUSYBOX, ctx.path().join("busybox")).expect("copy busybox");
    write(
        ctx.path(),
        "Dockerfile",
        b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    );
    let spec = BuildSpec {
        context_dir: ctx.path().to_path_buf(),
        dockerfile: "Dockerfile".into(),
        image: name.into(),
        ..Default::default()
    };
    images.add(name);
    DockerEngine::new()
        .build(&spec, &|_| {})
        .await
        .expect("building the busybox test base image");
}

/// Fixture job types in a temp dir:
/// * `{family}:1.0.0`: a busybox base image + a python3-like template (requirements step first);
/// * `{family}-user:1.0.0`: the user's own Dockerfile (no base, no template).
pub fn job_types(family: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let jt = d.join(family);
    std::fs::create_dir_all(&jt).expect("mkdir");
    std::fs::copy(BUSYBOX, jt.join("busybox")).expect("copy busybox");
    write(
        &jt,
        "job-type.yaml",
        format!(
            "name: {family}\nversion: 1.0.0\nbase_dockerfile: base.Dockerfile\ntemplate: fatman-template.Dockerfile\nport: 7000\n"
        )
        .as_bytes(),
    );
    write(
        &jt,
        "base.Dockerfile",
        b"FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN mkdir -p /src/fatman\n",
    );
    write(
        &jt,
        "fatman-template.Dockerfile",
        br#"FROM {{ base_image }} AS fatman
{{ env_lines }}
{% if requirements_path %}
FROM fatman AS requirements
{{ secret_args }}
COPY ["{{ requirements_path }}", "/src/requirements.txt"]
RUN echo "installing requirements now" && echo "secret check: [$API_TOKEN]" && cat /src/requirements.txt && sleep 2 && mkdir -p /src/packages && echo done > /src/packages/installed
FROM fatman
COPY --from=requirements /src/packages /src/packages
{% endif %}
RUN echo "env check: [$GREETING] [$API_TOKEN]"
COPY . /src/fatman/
ENV FATMAN_NAME="{{ fatman_name }}" FATMAN_VERSION="{{ fatman_version }}" GIT_VERSION="{{ git_version }}" JOB_TYPE_VERSION="{{ job_type_version }}"
CMD ["/bin/cat", "/src/fatman/{{ entrypoint_path }}"]
"#,
    );
    write(
        d,
        &format!("{family}-user/job-type.yaml"),
        format!("name: {family}-user\nversion: 1.0.0\nbase_dockerfile: null\ntemplate: null\n")
            .as_bytes(),
    );
    tmp
}

/// A gzipped tar of `files` (relative name, content).
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        builder.append_data(&mut h, name, *data).expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// A running image builder.
pub struct Server {
    /// The fixture job types' family.
    pub family: String,
    pub app: App,
    pub addr: SocketAddr,
    pub dirs: tempfile::TempDir,
    pub push: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _job_types: tempfile::TempDir,
}

impl Server {
    /// Starts the gRPC server on a free port with fixture job types of `family`.
    pub async fn start(family: &str, extra_env: &[(&str, &str)]) -> Server {
        let dirs = tempfile::tempdir().expect("tempdir");
        let job_types = job_types(family);
        let push = registry_answers();
        let mut env: HashMap<String, String> = HashMap::from([
            ("DOCKER_REGISTRY".into(), REGISTRY.into()),
            ("DOCKER_REGISTRY_NAMESPACE".into(), NAMESPACE.into()),
            ("PUSH_IMAGES".into(), push.to_string()),
            ("ALLOW_FILE_GIT_REMOTES".into(), "true".into()),
            ("IMAGE_BUILDER_TOKEN".into(), TOKEN.into()),
            (
                "BUILD_LOGS_DIR".into(),
                dirs.path().join("logs").display().to_string(),
            ),
            (
                "WORKSPACES_DIR".into(),
                dirs.path().join("ws").display().to_string(),
            ),
            (
                "JOB_TYPES_DIR".into(),
                job_types.path().display().to_string(),
            ),
        ]);
        for (k, v) in extra_env {
            env.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
        let app = App::new(config);
        app.prepare_dirs().expect("dirs");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = app.clone();
        tokio::spawn(async move {
            serving
                .serve_grpc(listener, async move {
                    let _ = rx.await;
                })
                .await
                .expect("grpc server");
        });
        Server {
            family: family.to_string(),
            app,
            addr,
            dirs,
            push,
            stop: Some(tx),
            _job_types: job_types,
        }
    }

    pub async fn client(&self) -> Client {
        client_with(&self.addr.to_string(), Some(TOKEN)).await
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dirs.path().join("logs")
    }

    /// `{registry}/racetrack-ib-test/fatman-entrypoint/{name}:{tag}`.
    pub fn entry_image(&self, name: &str, tag: &str) -> String {
        format!("{REGISTRY}/{NAMESPACE}/fatman-entrypoint/{name}:{tag}")
    }

    pub fn base_image(&self, family: &str) -> String {
        format!("{REGISTRY}/{NAMESPACE}/fatman-base/{family}:1.0.0")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A server with fixture job types of a fresh `{prefix}-…` family, its client, and a busybox
/// base image for users' Dockerfiles, which the returned `Images` removes at the end.
pub async fn server_with_busybox(prefix: &str) -> (Server, Client, Images, String) {
    let server = Server::start(&unique(prefix), &[]).await;
    let client = server.client().await;
    let mut images = Images::default();
    let base = format!("racetrack-ib-test-busybox:{}", unique("base"));
    busybox_image(&base, &mut images).await;
    (server, client, images, base)
}

/// A finished build as seen on the stream.
#[derive(Debug, Default)]
pub struct Outcome {
    pub phases: Vec<String>,
    pub lines: Vec<String>,
    pub result: Option<BuildResult>,
}

impl Outcome {
    pub fn result(&self) -> &BuildResult {
        self.result
            .as_ref()
            .expect("the stream ended with a result")
    }

    pub fn log(&self) -> String {
        self.lines.join("\n")
    }

    /// Fails the test with the error and the whole log unless the build succeeded.
    pub fn expect_success(&self) {
        assert!(
            self.result().success,
            "{}\n{}",
            self.result().error,
            self.log()
        );
    }

    /// The line after the one containing `needle` (Docker prints ` ---> Using cache` there).
    pub fn line_after(&self, needle: &str) -> Option<&str> {
        let i = self.lines.iter().position(|l| l.contains(needle))?;
        self.lines.get(i + 1).map(String::as_str)
    }
}

pub async fn collect(mut stream: tonic::Streaming<BuildEvent>) -> Outcome {
    let mut out = Outcome::default();
    while let Some(event) = stream.message().await.expect("stream") {
        match event.event {
            Some(Event::Phase(p)) => out.phases.push(p),
            Some(Event::Log(l)) => out.lines.push(l.line),
            Some(Event::Result(r)) => {
                assert!(out.result.is_none(), "a single result");
                out.result = Some(r);
            }
            None => {}
        }
    }
    out
}

pub async fn build(client: &mut Client, request: BuildRequest) -> Outcome {
    let stream = client
        .build(request)
        .await
        .expect("Build accepted")
        .into_inner();
    collect(stream).await
}

/// A request for a manifest given as YAML, parsed here once as Lifecycle does before sending it.
pub fn request(id: &str, manifest: &str, context: Vec<u8>, tag: &str) -> BuildRequest {
    let manifest = racetrack_model::parse_manifest_yaml(manifest).expect("a valid test manifest");
    request_with(id, (&manifest).into(), context, tag)
}

/// A request with the manifest message as given (also one no manifest converts to).
pub fn request_with(
    id: &str,
    manifest: racetrack_proto::image_builder::Manifest,
    context: Vec<u8>,
    tag: &str,
) -> BuildRequest {
    BuildRequest {
        deployment_id: id.into(),
        manifest: Some(manifest),
        build_context: context,
        git_credentials: None,
        secret_build_env: HashMap::new(),
        tag: tag.into(),
    }
}
