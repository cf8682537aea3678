//! The service around the builds: job type listing, request validation, the HTTP probes, the
//! binary itself. None of these need Docker.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use image_builder::jobtype::JobTypeCatalog;
use racetrack_proto::image_builder::{GetBuildRequest, ListJobTypesRequest};
use tonic::Code;

/// A plain HTTP/1.0 GET: (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_job_types_with_latest_aliases() {
    let family = unique("ibtest");
    let server = Server::start(&family, &[]).await;
    let mut client = server.client().await;
    let types = client
        .list_job_types(ListJobTypesRequest {})
        .await
        .unwrap()
        .into_inner()
        .job_types;
    assert_eq!(
        types,
        vec![
            format!("{family}-user:1.0.0"),
            format!("{family}-user:latest"),
            format!("{family}:1.0.0"),
            format!("{family}:latest"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_requests_and_unknown_builds() {
    let server = Server::start(&unique("ibtest"), &[]).await;
    let mut client = server.client().await;
    let manifest = "name: x\nowner_email: a@b.cd\ngit:\n  remote: https://h/r\n";
    for (id, tag) in [("../etc", "t"), ("", "t"), ("ok", "bad tag"), ("ok", "")] {
        let err = client
            .build(request(id, manifest, Vec::new(), tag))
            .await
            .err()
            .unwrap_or_else(|| panic!("{id:?}/{tag:?} accepted"));
        assert_eq!(err.code(), Code::InvalidArgument, "{id:?}/{tag:?}: {err}");
    }
    let err = client
        .get_build(GetBuildRequest {
            deployment_id: "never-built".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .stream_build_logs(GetBuildRequest {
            deployment_id: "../../etc/passwd".into(),
        })
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);

    // A log file left by an earlier process is still readable.
    std::fs::write(
        server.log_dir().join("old-build.log"),
        "line one\nline two\n",
    )
    .unwrap();
    let status = client
        .get_build(GetBuildRequest {
            deployment_id: "old-build".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.logs, "line one\nline two\n");
    assert_eq!(status.state, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_uploads_are_refused() {
    let family = unique("ibtest");
    let server = Server::start(&family, &[("MAX_BUILD_CONTEXT_BYTES", "1Ki")]).await;
    let mut client = server.client().await;
    let manifest = format!(
        "name: x\nowner_email: a@b.cd\nlang: {family}-user:latest\ngit:\n  remote: https://h/r\ndocker:\n  dockerfile_path: Dockerfile\n"
    );
    // Over the limit of the extraction (but under the gRPC message limit, which adds 8 MiB).
    let big: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let out = build(&mut client, request("too-big", &manifest, big, "t")).await;
    assert_eq!(
        out.result().error,
        "fetching the source code: the build context is 4096 bytes, more than the limit of 1024 bytes"
    );
}

#[test]
fn the_repository_job_types_load() {
    // Contract with job-types/: every job type there must load without problems.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../job-types");
    if !dir.is_dir() {
        eprintln!("SKIPPED: no job-types/ folder yet");
        return;
    }
    let catalog = JobTypeCatalog::load(&dir);
    assert!(catalog.problems.is_empty(), "{:?}", catalog.problems);
    let python = catalog.resolve("python3:latest").expect("python3 job type");
    assert!(python.base_build().is_some() && python.template.is_some());
    if let Ok(dh) = catalog.resolve("docker-http:latest") {
        assert!(
            dh.template.is_none(),
            "docker-http builds the user's Dockerfile"
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_grpc_and_http_probes() {
    let tmp = tempfile::tempdir().unwrap();
    let family = unique("ibtest");
    let job_types = job_types(&family);
    let (grpc, http) = (free_port(), free_port());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_image-builder"))
        .env("GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("BUILD_LOGS_DIR", tmp.path().join("logs"))
        .env("WORKSPACES_DIR", tmp.path().join("ws"))
        .env("JOB_TYPES_DIR", job_types.path())
        .env("IMAGE_BUILDER_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start image-builder");
    let mut child = Child(child);
    let http_addr = format!("127.0.0.1:{http}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&http_addr).is_err() {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "image-builder exited"
        );
        assert!(Instant::now() < deadline, "image-builder did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = http_get(&http_addr, "/live");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(&http_addr, "/health");
    assert!(body.contains("\"service\":\"image-builder\""), "{body}");
    let docker_up = image_builder::docker::DockerEngine::new()
        .ping()
        .await
        .is_ok();
    assert_eq!(status, if docker_up { 200 } else { 500 }, "{body}");
    let (status, _) = http_get(&http_addr, "/ready");
    assert_eq!(status, if docker_up { 200 } else { 503 });
    let (status, body) = http_get(&http_addr, "/metrics");
    assert_eq!(status, 200);
    for metric in [
        "active_building_tasks",
        "images_built",
        "images_buidling_errors",
        "http_requests_total",
    ] {
        assert!(body.contains(metric), "{metric} missing:\n{body}");
    }

    let mut anonymous = client_with(&format!("127.0.0.1:{grpc}"), None).await;
    let err = anonymous
        .list_job_types(ListJobTypesRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    let mut client = client_with(&format!("127.0.0.1:{grpc}"), Some(TOKEN)).await;
    let types = client
        .list_job_types(ListJobTypesRequest {})
        .await
        .unwrap()
        .into_inner()
        .job_types;
    assert!(types.contains(&format!("{family}:latest")), "{types:?}");

    // SIGTERM stops it cleanly.
    let pid = child.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_image-builder"))
        .env("MAX_CONCURRENT_BUILDS", "zero")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid MAX_CONCURRENT_BUILDS"), "{stderr}");
}

#[test]
fn the_binary_will_not_start_without_a_token() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_image-builder"))
        .env_remove("IMAGE_BUILDER_TOKEN")
        .env("GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("IMAGE_BUILDER_TOKEN is required"),
        "{stderr}"
    );
}

/// Issue 10 item 6: anyone on the host could drive the image builder (start builds of any code,
/// which then run on the engine and push to the registry; read build logs). Without the internal
/// token, or with a wrong one, every RPC is refused before it does anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_without_the_internal_token_are_refused() {
    let family = unique("ibtest");
    let server = Server::start(&family, &[]).await;
    let addr = server.addr.to_string();
    let manifest = format!(
        "name: intruder\nowner_email: a@b.cd\nlang: {family}\ngit:\n  remote: https://h/r\n"
    );
    for token in [None, Some(""), Some("image-builder-test-token-012345678X")] {
        let mut client = client_with(&addr, token).await;
        let refused = [
            client
                .list_job_types(ListJobTypesRequest {})
                .await
                .map(|_| ())
                .unwrap_err(),
            client
                .build(request(
                    "intrusion-1",
                    &manifest,
                    tar_gz(&[("a", b"x")]),
                    "1",
                ))
                .await
                .map(|_| ())
                .unwrap_err(),
            client
                .get_build(GetBuildRequest {
                    deployment_id: "intrusion-1".into(),
                })
                .await
                .map(|_| ())
                .unwrap_err(),
            client
                .stream_build_logs(GetBuildRequest {
                    deployment_id: "intrusion-1".into(),
                })
                .await
                .map(|_| ())
                .unwrap_err(),
        ];
        for err in refused {
            assert_eq!(err.code(), Code::Unauthenticated, "{token:?}: {err}");
        }
    }
    assert!(
        server.app.store.get("intrusion-1").is_none(),
        "a refused build must not start"
    );
    // The Lifecycle's token works.
    let mut client = server.client().await;
    let types = client
        .list_job_types(ListJobTypesRequest {})
        .await
        .unwrap()
        .into_inner()
        .job_types;
    assert!(types.contains(&format!("{family}:latest")), "{types:?}");
}
