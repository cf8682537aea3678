//! The `registry-cleaner` binary against the real local registry (127.0.0.1:5000, started by
//! `scripts/registry.sh`) and a stand-in for Lifecycle's fatman listing (a tiny HTTP server in
//! the test). Images are made `FROM scratch` with one small file, so nothing is pulled, and pushed
//! under a namespace of their own, so the cleaner (given `--namespace`) touches nothing else.
//!
//! Under `CI=true` a missing registry or Docker engine fails the tests that need them; elsewhere
//! they are skipped with the reason printed.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REGISTRY: &str = "127.0.0.1:5000";
const TOKEN: &str = "cleaner-test-token-5d1f0c";
const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn skip_or_fail(test: &str, problem: String) -> bool {
    if in_ci() {
        panic!("{test}: CI=true and {problem}");
    }
    // Straight to the process's stderr: the harness would capture `eprintln!`.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {problem}");
    false
}

async fn registry_answers() -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(format!("http://{REGISTRY}/v2/")).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!(
            "the registry at {REGISTRY} answers /v2/ with {} (run scripts/registry.sh)",
            r.status()
        )),
        Err(e) => Err(format!(
            "no registry at {REGISTRY} ({e}; run scripts/registry.sh)"
        )),
    }
}

fn docker_answers() -> Result<(), String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "the Docker engine does not answer: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("no docker command: {e}")),
    }
}

/// What the stand-in Lifecycle answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// The token reads every fatman.
    Global,
    /// The token reads only the listed fatmen (the permission probe is refused).
    Partial,
}

/// A stand-in for Lifecycle: `GET /api/v1/fatman` with the given JSON when `X-Racetrack-Auth`
/// is [`TOKEN`] (401 otherwise), and the permission check `GET /api/v1/auth/allowed/...`.
struct FakeLifecycle {
    url: String,
    /// Every (path, X-Racetrack-Auth) received.
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeLifecycle {
    fn start(fatmen: serde_json::Value, grant: Grant) -> FakeLifecycle {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let body = fatmen.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = answer(stream, &body, grant, &log);
            }
        });
        FakeLifecycle { url, seen }
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(
    stream: TcpStream,
    fatmen: &str,
    grant: Grant,
    log: &Mutex<Vec<(String, String)>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut token = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("x-racetrack-auth") {
                token = value.trim().to_string();
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    log.lock().unwrap().push((path.to_string(), token.clone()));
    let (status, body) = if token != TOKEN {
        (
            "401 Unauthorized",
            r#"{"error":"invalid token"}"#.to_string(),
        )
    } else if method == "GET" && path == "/api/v1/fatman" {
        ("200 OK", fatmen.to_string())
    } else if method == "GET"
        && path.starts_with("/api/v1/auth/allowed/fatman/")
        && path.ends_with("/scope/read_fatman")
    {
        match grant {
            Grant::Global => ("202 Accepted", String::new()),
            Grant::Partial => (
                "401 Unauthorized",
                r#"{"error":"Unauthorized"}"#.to_string(),
            ),
        }
    } else {
        ("404 Not Found", r#"{"error":"not found"}"#.to_string())
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Local image references made by the test; removed from the engine when dropped.
#[derive(Default)]
struct LocalImages(Vec<String>);

impl Drop for LocalImages {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .arg("-f")
                .args(&self.0)
                .output();
        }
    }
}

/// Builds one tiny image (`FROM scratch` + a file naming it), tags it as every
/// `repository:tag` given and pushes them all.
fn push_image(dir: &Path, images: &mut LocalImages, refs: &[(&str, &str)]) {
    let marker = uuid::Uuid::new_v4().to_string();
    std::fs::write(dir.join("marker"), &marker).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY marker /marker\n",
    )
    .unwrap();
    let full: Vec<String> = refs
        .iter()
        .map(|(repo, tag)| format!("{REGISTRY}/{repo}:{tag}"))
        .collect();
    let mut build = Command::new("docker");
    build.args(["build", "-q"]);
    for r in &full {
        build.args(["-t", r]);
    }
    build.arg(dir);
    let out = build.output().unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    images.0.extend(full.iter().cloned());
    for r in &full {
        let out = Command::new("docker").args(["push", r]).output().unwrap();
        assert!(
            out.status.success(),
            "docker push {r}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

async fn tags(repo: &str) -> BTreeSet<String> {
    let r = reqwest::get(format!("http://{REGISTRY}/v2/{repo}/tags/list?n=1000"))
        .await
        .unwrap();
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return BTreeSet::new();
    }
    assert!(r.status().is_success(), "tags of {repo}: {}", r.status());
    let v: serde_json::Value = r.json().await.unwrap();
    v["tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

async fn digest(repo: &str, tag: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .head(format!("http://{REGISTRY}/v2/{repo}/manifests/{tag}"))
        .header("Accept", ACCEPT)
        .send()
        .await
        .unwrap();
    if !r.status().is_success() {
        return None;
    }
    r.headers()
        .get("Docker-Content-Digest")
        .map(|v| v.to_str().unwrap().to_string())
}

/// Deletes whatever the test left in its repositories.
async fn delete_all(repos: &[&str]) {
    let client = reqwest::Client::new();
    for repo in repos {
        for tag in tags(repo).await {
            if let Some(d) = digest(repo, &tag).await {
                let _ = client
                    .delete(format!("http://{REGISTRY}/v2/{repo}/manifests/{d}"))
                    .send()
                    .await;
            }
        }
    }
}

fn cleaner(args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
    for var in [
        "REGISTRY_URL",
        "REGISTRY_USERNAME",
        "REGISTRY_PASSWORD",
        "LIFECYCLE_URL",
        "LIFECYCLE_AUTH_TOKEN",
        "DOCKER_REGISTRY_NAMESPACE",
        "REGISTRY_KEEP_TAGS",
        "REGISTRY_MIN_AGE_MINUTES",
        "REGISTRY_CLEANER_TIMEOUT_SECS",
    ] {
        cmd.env_remove(var);
    }
    if let Some(t) = token {
        cmd.env("LIFECYCLE_AUTH_TOKEN", t);
    }
    cmd.args(args).output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The `repository:tag` of every line starting with `prefix` (then two spaces).
fn listed(stdout: &str, prefix: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix)?.strip_prefix("  "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

#[tokio::test]
async fn dry_run_lists_and_delete_removes_exactly_the_unused_tags() {
    const TEST: &str = "dry_run_lists_and_delete_removes_exactly_the_unused_tags";
    if let Err(p) = registry_answers().await {
        skip_or_fail(TEST, p);
        return;
    }
    if let Err(p) = docker_answers() {
        skip_or_fail(TEST, p);
        return;
    }
    let ns = format!(
        "regclean-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let alive = format!("{ns}/fatman-entrypoint/alive");
    let gone = format!("{ns}/fatman-entrypoint/gone");
    let base = format!("{ns}/fatman-base/python3");
    let now_tag = chrono::Utc::now().format("%Y-%m-%dT%H%M%S").to_string();

    let dir = tempfile::tempdir().unwrap();
    let mut images = LocalImages::default();
    // alive: in use 000002 (1.0.0) and 000005 (2.0.0); 000000 is the same image as 000002.
    push_image(
        dir.path(),
        &mut images,
        &[(&alive, "2020-01-01T000002"), (&alive, "2020-01-01T000000")],
    );
    for t in [
        "2020-01-01T000001",
        "2020-01-01T000003",
        "2020-01-01T000004",
        "2020-01-01T000005",
        "2020-01-01T000006",
        "2020-01-01T000007",
        "latest",
    ] {
        push_image(dir.path(), &mut images, &[(&alive, t)]);
    }
    for t in ["2020-02-01T000000", "2021-02-01T000000", now_tag.as_str()] {
        push_image(dir.path(), &mut images, &[(&gone, t)]);
    }
    push_image(
        dir.path(),
        &mut images,
        &[(&base, "1.0.0"), (&base, "2020-01-01T000000")],
    );
    let alive_before = tags(&alive).await;
    let gone_before = tags(&gone).await;
    let base_before = tags(&base).await;
    assert_eq!(alive_before.len(), 9);
    assert_eq!(gone_before.len(), 3);
    assert_eq!(base_before.len(), 2);

    let lifecycle = FakeLifecycle::start(
        serde_json::json!([
            {"name": "alive", "version": "1.0.0", "image_tag": "2020-01-01T000002"},
            {"name": "alive", "version": "2.0.0", "image_tag": "2020-01-01T000005"},
            {"name": "other", "version": "0.1.0", "image_tag": null},
        ]),
        Grant::Global,
    );
    let registry_url = format!("http://{REGISTRY}");
    let args = [
        "--registry-url",
        registry_url.as_str(),
        "--lifecycle-url",
        lifecycle.url.as_str(),
        "--namespace",
        ns.as_str(),
        "--keep",
        "2",
    ];
    let expected = set(&[
        format!("{alive}:2020-01-01T000001"),
        format!("{alive}:2020-01-01T000003"),
        format!("{alive}:2020-01-01T000004"),
        format!("{gone}:2020-02-01T000000"),
        format!("{gone}:2021-02-01T000000"),
    ]);

    // Dry run (the default): the plan, nothing deleted.
    let out = cleaner(&args, Some(TOKEN));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("dry run"), "{stdout}");
    assert_eq!(listed(&stdout, "would delete"), expected, "{stdout}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    for line in stdout.lines().filter(|l| l.starts_with("would delete")) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields[3].starts_with("sha256:"), "digest shown: {line}");
        assert!(fields.len() > 4, "reason shown: {line}");
    }
    assert!(
        stdout.contains(&format!(
            "{gone}:2020-02-01T000000  {}  no fatman named gone exists any more",
            digest(&gone, "2020-02-01T000000").await.unwrap()
        )),
        "{stdout}"
    );
    assert_eq!(tags(&alive).await, alive_before);
    assert_eq!(tags(&gone).await, gone_before);
    assert_eq!(tags(&base).await, base_before);
    let seen = lifecycle.seen();
    assert!(seen.iter().any(|(p, _)| p == "/api/v1/fatman"), "{seen:?}");
    assert!(seen.iter().all(|(_, t)| t == TOKEN), "{seen:?}");

    // Verbose: the reasons for keeping.
    let mut verbose = args.to_vec();
    verbose.push("-v");
    let (stdout, _) = text(&cleaner(&verbose, Some(TOKEN)));
    assert_eq!(
        listed(&stdout, "keep"),
        set(&[
            format!("{alive}:2020-01-01T000000"),
            format!("{alive}:2020-01-01T000002"),
            format!("{alive}:2020-01-01T000005"),
            format!("{alive}:2020-01-01T000006"),
            format!("{alive}:2020-01-01T000007"),
            format!("{alive}:latest"),
            format!("{gone}:{now_tag}"),
        ]),
        "{stdout}"
    );
    assert!(
        stdout.contains("2020-01-01T000000")
            && stdout.contains("same manifest as kept tag(s) 2020-01-01T000002"),
        "{stdout}"
    );
    assert!(stdout.contains("in use by alive 2.0.0"), "{stdout}");

    // The real run deletes exactly those.
    let mut delete = args.to_vec();
    delete.push("--delete");
    let out = cleaner(&delete, Some(TOKEN));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(listed(&stdout, "delete"), expected, "{stdout}");
    assert!(stdout.contains("5 manifests deleted, 0 failed"), "{stdout}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    assert_eq!(
        tags(&alive).await,
        set(&[
            "2020-01-01T000000".into(),
            "2020-01-01T000002".into(),
            "2020-01-01T000005".into(),
            "2020-01-01T000006".into(),
            "2020-01-01T000007".into(),
            "latest".into(),
        ])
    );
    assert_eq!(tags(&gone).await, set(std::slice::from_ref(&now_tag)));
    assert_eq!(tags(&base).await, base_before);
    let in_use = digest(&alive, "2020-01-01T000002").await;
    assert!(in_use.is_some());
    assert_eq!(digest(&alive, "2020-01-01T000000").await, in_use);

    // Nothing left to do.
    let out = cleaner(&delete, Some(TOKEN));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(listed(&stdout, "delete").is_empty(), "{stdout}");
    assert!(stdout.contains("0 manifests deleted"), "{stdout}");

    delete_all(&[&alive, &gone, &base]).await;
}

#[tokio::test]
async fn a_token_that_cannot_read_every_fatman_is_refused() {
    const TEST: &str = "a_token_that_cannot_read_every_fatman_is_refused";
    if let Err(p) = registry_answers().await {
        skip_or_fail(TEST, p);
        return;
    }
    let lifecycle = FakeLifecycle::start(serde_json::json!([]), Grant::Partial);
    let out = cleaner(
        &[
            "--registry-url",
            &format!("http://{REGISTRY}"),
            "--lifecycle-url",
            &lifecycle.url,
            "--delete",
        ],
        Some(TOKEN),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("cannot read every fatman"), "{stderr}");
    assert!(!stdout.contains("delete"), "{stdout}");
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn a_refused_token_is_reported_without_showing_it() {
    let lifecycle = FakeLifecycle::start(serde_json::json!([]), Grant::Global);
    let out = cleaner(
        &[
            "--lifecycle-url",
            &lifecycle.url,
            "--registry-url",
            "http://127.0.0.1:1",
        ],
        Some("not-the-right-token-77"),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("Lifecycle refused the token"), "{stderr}");
    assert!(!stdout.contains("not-the-right") && !stderr.contains("not-the-right"));
}

#[test]
fn an_unreachable_registry_is_an_error() {
    let lifecycle = FakeLifecycle::start(serde_json::json!([]), Grant::Global);
    let out = cleaner(
        &[
            "--lifecycle-url",
            &lifecycle.url,
            "--registry-url",
            "http://127.0.0.1:1",
        ],
        Some(TOKEN),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the registry could not be reached (GET http://127.0.0.1:1/v2/)"),
        "{stderr}"
    );
}

#[test]
fn bad_settings_exit_with_2_before_any_call() {
    let out = cleaner(&["--registry-url", "https://registry.example"], Some(TOKEN));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("REGISTRY_URL: https is not supported"),
        "{stderr}"
    );

    let out = cleaner(&[], None);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("LIFECYCLE_AUTH_TOKEN: is required"),
        "{stderr}"
    );

    let out = cleaner(&["--help"], Some(TOKEN));
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("LIFECYCLE_AUTH_TOKEN") && !stdout.contains(TOKEN));
}
