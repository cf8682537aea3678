//! Helpers for tests that run real fatman containers (this crate's and the Lifecycle's).
//!
//! No registry is reachable in tests, so [`ensure_test_image`] builds a tiny local fatman image,
//! [`TEST_IMAGE`], `FROM scratch` with the host's static busybox (Debian: `busybox-static`)
//! serving `/live` and `/ready` with `busybox httpd` on port 7000. Its behaviour is picked with
//! the env var [`TEST_MODE_ENV`]:
//!
//! | `TEST_MODE` | behaviour |
//! |---|---|
//! | unset / `serve` | prints `test fatman listening on port 7000`, serves `/live` (`{"live":true,"deployment_timestamp":"<FATMAN_DEPLOYMENT_TIMESTAMP>"}`) and `/ready` |
//! | `env` | prints its whole env (`busybox env`), then serves |
//! | `env-crash` | prints its whole env, then exits with code 5 |
//! | `crash` | prints `boom` to stderr and exits with code 3 at once |
//! | `crash-late` | prints `starting slowly`, serves nothing, after 3 s prints `late boom` to stderr and exits with code 4 |
//!
//! Tests needing Docker call [`docker_test_env_or_skip`] first: it returns `false` (and prints
//! why) when the engine or busybox is missing, except under `CI=true`, where it panics.

/// The in-process fake Kubernetes API server (feature `fake-kube`).
#[cfg(feature = "fake-kube")]
pub mod fake_kube;

use std::sync::atomic::{AtomicU32, Ordering};

use bollard::query_parameters::{BuildImageOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::OnceCell;

/// The image [`ensure_test_image`] builds.
pub const TEST_IMAGE: &str = "racetrack-infra-test:latest";
/// Env var choosing the test image's behaviour (see the module doc).
pub const TEST_MODE_ENV: &str = "TEST_MODE";
/// Env var naming a static busybox binary to use instead of `/bin/busybox`.
pub const BUSYBOX_ENV: &str = "RACETRACK_TEST_BUSYBOX";

const START_SCRIPT: &str = r#"case "$TEST_MODE" in
  crash)
    echo "boom" >&2
    exit 3
    ;;
  crash-late)
    echo "starting slowly"
    /bin/busybox sleep 3
    echo "late boom" >&2
    exit 4
    ;;
  env)
    /bin/busybox env
    ;;
  env-crash)
    /bin/busybox env
    exit 5
    ;;
esac
echo "{\"live\":true,\"deployment_timestamp\":\"$FATMAN_DEPLOYMENT_TIMESTAMP\"}" > /www/live
echo "test fatman listening on port 7000"
exec /bin/busybox httpd -f -p 7000 -h /www
"#;

const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
COPY start.sh /start.sh
COPY www/ /www/
CMD ["/bin/busybox", "sh", "/start.sh"]
"#;

/// `true` when Docker answers and a static busybox exists. Otherwise prints a skip reason and
/// returns `false`, or panics with it when `CI=true` (CI must run these tests, not skip them).
pub async fn docker_test_env_or_skip(test: &str) -> bool {
    let problem = match crate::DockerTarget::connect(Default::default()) {
        Err(e) => Some(e.to_string()),
        Ok(target) => match target.ping().await {
            Err(e) => Some(e.to_string()),
            Ok(()) => find_busybox().err(),
        },
    };
    match problem {
        None => true,
        Some(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: needs Docker and busybox-static (CI=true, so not skipping): {reason}")
        }
        Some(reason) => {
            // Straight to the process's stderr: the test harness would swallow `eprintln!`.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: needs Docker and busybox-static: {reason}"
            );
            false
        }
    }
}

/// Builds [`TEST_IMAGE`] once per process (later calls return the first outcome).
pub async fn ensure_test_image() -> Result<(), String> {
    static BUILT: OnceCell<Result<(), String>> = OnceCell::const_new();
    BUILT.get_or_init(build_test_image).await.clone()
}

async fn build_test_image() -> Result<(), String> {
    let busybox_path = find_busybox()?;
    let busybox = std::fs::read(&busybox_path)
        .map_err(|e| format!("reading {}: {e}", busybox_path.display()))?;
    let mut tar = TarBuilder::default();
    tar.file("Dockerfile", DOCKERFILE.as_bytes(), 0o644);
    tar.file("busybox", &busybox, 0o755);
    tar.file("start.sh", START_SCRIPT.as_bytes(), 0o755);
    tar.dir("www");
    tar.file("www/live", b"{\"live\":true}\n", 0o644);
    tar.file("www/ready", b"{\"ready\":true}\n", 0o644);
    let context = tar.finish();

    let docker = Docker::connect_with_defaults()
        .map_err(|e| e.to_string())?
        .negotiate_version()
        .await
        .map_err(|e| format!("Docker engine: {e}"))?;
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(TEST_IMAGE)
        .rm(true)
        .forcerm(true)
        .build();
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut output = String::new();
    while let Some(step) = progress.next().await {
        let info = step.map_err(|e| format!("building {TEST_IMAGE}: {e}\n{output}"))?;
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            return Err(format!("building {TEST_IMAGE}: {message}\n{output}"));
        }
        if let Some(line) = info.stream {
            output.push_str(&line);
        }
    }
    Ok(())
}

fn find_busybox() -> Result<std::path::PathBuf, String> {
    let candidates: Vec<std::path::PathBuf> = match std::env::var_os(BUSYBOX_ENV) {
        Some(path) => vec![path.into()],
        None => vec!["/bin/busybox".into(), "/usr/bin/busybox".into()],
    };
    for path in &candidates {
        if let Ok(bytes) = std::fs::read(path) {
            return if is_static_elf64(&bytes) {
                Ok(path.clone())
            } else {
                Err(format!(
                    "{} is not a static x86-64/aarch64 ELF binary (install busybox-static)",
                    path.display()
                ))
            };
        }
    }
    Err("no busybox found (apt-get install busybox-static)".into())
}

/// A little-endian ELF64 executable without an interpreter (`PT_INTERP`), i.e. statically linked.
fn is_static_elf64(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..phnum as usize).all(|i| {
        let offset = phoff as usize + i * phentsize as usize;
        u32_at(offset).is_some_and(|p_type| p_type != PT_INTERP)
    })
}

/// A name no other running test process uses: `<prefix>-<pid>-<n>` (a valid fatman name for a
/// short lowercase prefix).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Removes the named containers when dropped, also when the test panics.
#[derive(Debug, Default)]
pub struct ContainerGuard {
    names: Vec<String>,
}

impl ContainerGuard {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        ContainerGuard {
            names: names.into_iter().collect(),
        }
    }

    pub fn add(&mut self, name: impl Into<String>) {
        self.names.push(name.into());
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.names);
        if names.is_empty() {
            return;
        }
        // Drop may run inside a runtime (which cannot block) or during a panic: clean up on a
        // thread of our own with its own small runtime.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let Ok(docker) = Docker::connect_with_defaults() else {
                    return;
                };
                let Ok(docker) = docker.negotiate_version().await else {
                    return;
                };
                for name in names {
                    let options = RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build();
                    if let Err(e) = docker.remove_container(&name, Some(options)).await {
                        if !e.to_string().contains("404") {
                            eprintln!("cleanup: could not remove container {name}: {e}");
                        }
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A TCP listener on `addr` (e.g. `127.0.0.1:0`) answering every connection with
/// `HTTP/1.0 200 OK`, standing in for a platform service; returns its port. It serves until the
/// runtime ends.
pub async fn http_ok_listener(addr: &str) -> u16 {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    port
}

/// What [`probe_ports`] saw, per `host:port` tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Answered an HTTP request (any status).
    pub reached: Vec<String>,
    /// Refused, timed out, or closed without an answer.
    pub blocked: Vec<String>,
    /// The probe itself failed (e.g. a name it could not resolve): neither verdict holds.
    pub broken: Vec<String>,
    /// The probe container's whole output.
    pub output: String,
}

/// Runs a throwaway container of [`TEST_IMAGE`] (call [`ensure_test_image`] first) on `network`,
/// with `host.docker.internal` mapped to the host as fatmen have it, that sends
/// `GET /live HTTP/1.0` to each `host:port` with busybox `nc` (`timeout_secs` each), the way an
/// attacker's container would. (busybox `wget` of the static Debian build crashes in a
/// `FROM scratch` image, `nc` does not.) The container is removed afterwards.
pub async fn probe_ports(
    network: &str,
    targets: &[String],
    timeout_secs: u32,
) -> Result<ProbeReport, String> {
    use bollard::models::{ContainerCreateBody, HostConfig};
    use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};

    const SCRIPT: &str = r#"for target in "$@"; do
  host="${target%:*}"; port="${target##*:}"
  answer=$(printf 'GET /live HTTP/1.0\r\n\r\n' | /bin/busybox nc -w "$PROBE_TIMEOUT" "$host" "$port" 2>&1)
  rc=$?
  case "$answer" in
    HTTP/*) echo "REACHED $target" ;;
    *) if [ $rc -ge 128 ]; then echo "BROKEN $target (exit $rc)"; else echo "BLOCKED $target ($answer)"; fi ;;
  esac
done"#;
    let docker = Docker::connect_with_defaults()
        .map_err(|e| e.to_string())?
        .negotiate_version()
        .await
        .map_err(|e| format!("Docker engine: {e}"))?;
    let name = unique_name("probe");
    let _guard = ContainerGuard::new([name.clone()]);
    let mut cmd = vec![
        "/bin/busybox".to_string(),
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
        "probe".into(),
    ];
    cmd.extend(targets.iter().cloned());
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            ContainerCreateBody {
                image: Some(TEST_IMAGE.into()),
                cmd: Some(cmd),
                env: Some(vec![format!("PROBE_TIMEOUT={timeout_secs}")]),
                host_config: Some(HostConfig {
                    network_mode: Some(network.to_string()),
                    extra_hosts: Some(vec!["host.docker.internal:host-gateway".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("creating probe container: {e}"))?;
    docker
        .start_container(&name, None)
        .await
        .map_err(|e| format!("starting probe container: {e}"))?;
    let mut wait = docker.wait_container(&name, None);
    while let Some(step) = wait.next().await {
        if let Err(e) = step {
            return Err(format!("waiting for probe container: {e}"));
        }
    }
    let mut logs = docker.logs(
        &name,
        Some(
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .build(),
        ),
    );
    let mut output = String::new();
    while let Some(chunk) = logs.next().await {
        let chunk = chunk.map_err(|e| format!("reading probe logs: {e}"))?;
        output.push_str(&String::from_utf8_lossy(chunk.as_ref()));
    }
    let mut report = ProbeReport {
        reached: Vec::new(),
        blocked: Vec::new(),
        broken: Vec::new(),
        output: output.clone(),
    };
    for line in output.lines() {
        let Some((verdict, rest)) = line.split_once(' ') else {
            continue;
        };
        let target = rest.split(' ').next().unwrap_or(rest).to_string();
        match verdict {
            "REACHED" => report.reached.push(target),
            "BLOCKED" => report.blocked.push(target),
            "BROKEN" => report.broken.push(target),
            _ => {}
        }
    }
    Ok(report)
}

/// A minimal ustar writer: regular files and directories, enough for a build context.
#[derive(Default)]
struct TarBuilder {
    out: Vec<u8>,
}

impl TarBuilder {
    fn file(&mut self, path: &str, data: &[u8], mode: u32) {
        self.header(path, data.len(), mode, b'0');
        self.out.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, padding));
    }

    fn dir(&mut self, path: &str) {
        self.header(&format!("{}/", path.trim_end_matches('/')), 0, 0o755, b'5');
    }

    fn header(&mut self, path: &str, size: usize, mode: u32, kind: u8) {
        assert!(path.len() < 100, "tar path too long: {path}");
        let mut header = [0u8; 512];
        let mut put = |offset: usize, value: &[u8]| {
            header[offset..offset + value.len()].copy_from_slice(value);
        };
        put(0, path.as_bytes());
        put(100, format!("{mode:07o}\0").as_bytes());
        put(108, b"0000000\0");
        put(116, b"0000000\0");
        put(124, format!("{size:011o}\0").as_bytes());
        put(136, b"00000000000\0");
        put(156, &[kind]);
        put(257, b"ustar\0");
        put(263, b"00");
        // The checksum is computed with its own field as spaces.
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| *b as u32).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.out.extend_from_slice(&header);
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

/// A Docker target on `network` that never pulls (test images are built locally).
pub fn docker_target(network: &str) -> crate::DockerTarget {
    crate::DockerTarget::connect(crate::DockerTargetConfig {
        network: network.into(),
        pull: false,
        ..Default::default()
    })
    .expect("a Docker target (the engine's socket)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_are_valid_ustar() {
        let mut tar = TarBuilder::default();
        tar.file("a.txt", b"hello", 0o644);
        let bytes = tar.finish();
        assert_eq!(bytes.len(), 512 + 512 + 1024);
        assert_eq!(&bytes[0..5], b"a.txt");
        assert_eq!(&bytes[124..136], b"00000000005\0");
        assert_eq!(&bytes[257..263], b"ustar\0");
        let mut header = bytes[..512].to_vec();
        let stored = u32::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8);
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(
            stored.unwrap(),
            header.iter().map(|b| *b as u32).sum::<u32>()
        );
        assert_eq!(&bytes[512..517], b"hello");
    }

    #[test]
    fn elf_detection() {
        assert!(!is_static_elf64(b"#!/bin/sh\n"));
        // This test binary itself is dynamically linked (glibc), so it has PT_INTERP.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf64(&me));
    }

    #[test]
    fn unique_names_differ() {
        let a = unique_name("t");
        let b = unique_name("t");
        assert_ne!(a, b);
        assert!(
            racetrack_model::names::validate_fatman_name(&a).is_ok(),
            "{a}"
        );
    }
}
