//! The `racetrack` binary (cli/) against the real platform: Lifecycle, image-builder and PUB
//! started by the harness, fatmen built and run on the local Docker engine. The binary is found
//! beside the services' (`cargo build --workspace --bins` builds it, as `make test` does).

mod harness;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::*;
use serde_json::Value;

const EXIT_INVALID: i32 = 2;
const EXIT_AUTH: i32 = 3;
const EXIT_NOT_FOUND: i32 = 4;
const EXIT_DEPLOYMENT_FAILED: i32 = 5;
const EXIT_UNREACHABLE: i32 = 6;

/// The CLI with its own home (so its own `~/.racetrack/config.yaml`).
struct Cli {
    home: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    fn fails_with(self, code: i32, needle: &str) -> Run {
        assert_eq!(
            self.code, code,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not in stderr:\n{}",
            self.stderr
        );
        self
    }
}

impl Cli {
    fn new() -> Cli {
        Cli {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary("racetrack"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let out: Output = self.command(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn config_path(&self) -> PathBuf {
        self.home.path().join(".racetrack/config.yaml")
    }
}

/// A copy of a sample's directory with the fatman renamed.
fn sample_copy(sample: &str, name: &str, into: &Path) -> PathBuf {
    let src = workspace_root().join("sample").join(sample);
    let dst = into.join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
        }
    }
    let manifest = std::fs::read_to_string(dst.join("fatman.yaml")).unwrap();
    let first = manifest.lines().next().unwrap();
    assert!(first.starts_with("name: "), "{first}");
    std::fs::write(
        dst.join("fatman.yaml"),
        manifest.replacen(first, &format!("name: {name}"), 1),
    )
    .unwrap();
    dst
}

/// Nothing needs the platform here: refused before anything is sent, or nothing listens.
#[test]
fn bad_input_is_refused_with_the_reason_and_its_exit_code() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().unwrap();
    // An invalid manifest: the field is named, and the remote (listening) never hears of it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let remote = format!("http://{}", listener.local_addr().unwrap());
    let work = sample_copy("python-class", "bad-email", dir.path());
    let manifest = std::fs::read_to_string(work.join("fatman.yaml")).unwrap();
    std::fs::write(
        work.join("fatman.yaml"),
        manifest.replace("sample@example.com", "not-an-email"),
    )
    .unwrap();
    let work_arg = work.display().to_string();
    cli.run(&["deploy", &work_arg, "--remote", &remote])
        .fails_with(EXIT_INVALID, "owner_email");
    cli.run(&["validate", &work_arg])
        .fails_with(EXIT_INVALID, "owner_email");
    assert!(
        listener.accept().is_err(),
        "the CLI connected although the manifest is invalid"
    );
    // No manifest at all.
    cli.run(&["deploy", &dir.path().join("none").display().to_string()])
        .fails_with(EXIT_INVALID, "not found");
    // A valid one prints the effective manifest.
    let good = sample_copy("python-class", "good", dir.path());
    let v = cli.run(&["validate", &good.display().to_string()]).ok();
    assert!(v.stdout.contains("name: good"), "{}", v.stdout);
    assert!(v.stderr.contains("is valid"), "{}", v.stderr);

    // Unreachable Lifecycle: the URL tried and the cause.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}");
    let r = cli
        .run(&["list", "--remote", &url])
        .fails_with(EXIT_UNREACHABLE, &format!("{url}/lifecycle/api/v1/info"));
    assert!(r.stderr.to_lowercase().contains("refused"), "{}", r.stderr);
    // Usage errors.
    assert_eq!(cli.run(&["delete", "x"]).code, EXIT_INVALID);
    assert_eq!(cli.run(&["list", "-c", "colour"]).code, EXIT_INVALID);
    assert_eq!(
        cli.run(&["call", "x", "--data", "{not json", "--remote", &url])
            .code,
        EXIT_INVALID
    );
}

#[test]
fn local_configuration_commands() {
    let cli = Cli::new();
    cli.run(&["set", "alias", "dev", "https://rt.example.com/lifecycle/"])
        .ok();
    cli.run(&["set", "remote", "dev"]).ok();
    let r = cli.run(&["get", "remote"]).ok();
    assert!(
        r.stderr
            .contains("Current remote is \"dev\" - https://rt.example.com/lifecycle"),
        "{}",
        r.stderr
    );
    cli.run(&["set", "credentials", "https://github.com", "alice", "ghp_x"])
        .ok();
    let text = std::fs::read_to_string(cli.config_path()).unwrap();
    assert_eq!(
        text,
        "git_credentials:\n  https://github.com:\n    password: ghp_x\n    username: alice\nlifecycle_url: dev\nlifecycle_url_aliases:\n  dev: https://rt.example.com/lifecycle\nuser_auths: {}\n"
    );
    let r = cli.run(&["get", "config", "-o", "json"]).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["lifecycle_url"], "dev");
    cli.run(&["logout"])
        .fails_with(EXIT_NOT_FOUND, "Missing https://rt.example.com/lifecycle");
    let r = cli.run(&["completions", "bash"]).ok();
    assert!(r.stdout.contains("racetrack"), "{}", r.stdout);
    let r = cli.run(&["version"]).ok();
    assert!(r.stdout.starts_with("racetrack-client version "));
    std::fs::write(cli.config_path(), "user_auths: [").unwrap();
    cli.run(&["get", "remote"])
        .fails_with(EXIT_INVALID, "loading client config failed");
}

/// Reads a child's stdout lines on a thread.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_list_logs_call_follow_delete() {
    if !(deploy_prerequisites() && require("Redis at 127.0.0.1:6379", redis_ok())) {
        return;
    }
    // A body limit the sample fits in, and a 2 MB build context does not.
    let mut p = Platform::start_with(&[("MAX_DEPLOY_BODY_BYTES", "1000000")]).await;
    let _pub_url = p.start_pub(&[]).await;
    let cli = Cli::new();
    let work = tempfile::tempdir().unwrap();
    let remote = p.lifecycle_url.clone();

    // Not logged in yet.
    cli.run(&["list", "--remote", &remote])
        .fails_with(EXIT_AUTH, "racetrack login");
    cli.run(&["login", "not-a-token", "--remote", &remote])
        .fails_with(EXIT_AUTH, "Invalid Auth Token");
    let r = cli
        .run(&["login", &p.admin_token, "--remote", &remote])
        .ok();
    assert!(r.stderr.contains("Logged as user admin"), "{}", r.stderr);
    cli.run(&["set", "remote", &remote]).ok();
    let r = cli.run(&["list"]).ok();
    assert!(r.stderr.contains("No fatmen deployed"), "{}", r.stderr);

    // Deploy the sample adder from its files.
    let name = unique("cli-adder");
    let dir = sample_copy("python-class", &name, work.path());
    let dir_arg = dir.display().to_string();
    let r = cli
        .run(&["deploy", &dir_arg, "--build-context", "local", "--follow"])
        .ok();
    let followed_build_log = r.stdout.clone();
    let pub_url = format!("http://127.0.0.1:{}/pub/fatman/{name}/0.0.1", p.pub_port);
    assert!(
        r.stderr.contains(&format!(
            "Fatman \"{name}\" has been deployed. Check out {pub_url}"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("deployment in progress"), "{}", r.stderr);

    let r = cli.run(&["list", "-c", "all"]).ok();
    let header = r.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        header.starts_with("NAME")
            && header.contains("INFRASTRUCTURE")
            && header.contains("PUB URL"),
        "{}",
        r.stdout
    );
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{name} not listed:\n{}", r.stdout))
        .to_string();
    assert!(row.contains("RUNNING"), "{row}");
    assert!(row.contains(&pub_url), "{row}");
    let r = cli.run(&["list", "-o", "json"]).ok();
    let listed: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(listed[0]["name"], name.as_str());

    // Through PUB.
    let r = cli
        .run(&["call", &name, "--data", r#"{"numbers": [40, 2]}"#])
        .ok();
    assert_eq!(r.stdout.trim(), "42", "{}", r.stderr);
    cli.run(&["call", "no-such-fatman", "--data", "{}"])
        .fails_with(EXIT_NOT_FOUND, "no-such-fatman");

    let r = cli.run(&["build-logs", &name]).ok();
    assert!(!r.stdout.trim().is_empty(), "{}", r.stderr);
    // `deploy --follow` printed the build log as it grew, to its end.
    let last = r
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap();
    assert!(
        followed_build_log.contains(last),
        "{last:?} not in the followed log:\n{followed_build_log}"
    );
    let r = cli.run(&["logs", &name, "--tail", "50"]).ok();
    assert!(r.stderr.contains("Viewing the latest logs"), "{}", r.stderr);

    // A second deploy of the same version is refused (without --force); it
    // becomes the latest deployment, so build logs are read before.
    cli.run(&["deploy", &dir_arg, "--build-context", "local"])
        .fails_with(EXIT_DEPLOYMENT_FAILED, "deployment error");

    // Follow: a call made after it started shows up.
    let mut child = cli
        .command(&["logs", &name, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let marker = format!("marker{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let start = Instant::now();
    let mut seen = false;
    // Calls are repeated: the first may land before the follower's first poll.
    while !seen && start.elapsed() < Duration::from_secs(60) {
        cli.run(&[
            "call",
            &name,
            "--endpoint",
            &format!("/api/v1/perform?{marker}=1"),
            "--data",
            r#"{"numbers": [1]}"#,
        ])
        .ok();
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            if line.contains(&marker) {
                seen = true;
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "logs --follow never printed the call with {marker}");

    // Expired or revoked token: told to log in again.
    let config = std::fs::read_to_string(cli.config_path()).unwrap();
    std::fs::write(
        cli.config_path(),
        config.replace(&p.admin_token, "eyJhbGciOiJIUzI1NiJ9.e30.revoked"),
    )
    .unwrap();
    cli.run(&["list"]).fails_with(EXIT_AUTH, "log in again");
    std::fs::write(cli.config_path(), &config).unwrap();

    // A build context larger than the server takes: the limit and how to shrink it.
    let big = sample_copy("python-class", &unique("cli-big"), work.path());
    // Incompressible (xorshift), so gzip cannot bring it under the limit.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..2_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    std::fs::write(big.join("data.bin"), &noise).unwrap();
    let big_arg = big.display().to_string();
    let r = cli.run(&["deploy", &big_arg, "--build-context", "local"]);
    println!("too large a build context:\n{}", r.stderr);
    assert!(
        r.code == EXIT_INVALID || r.code == EXIT_UNREACHABLE,
        "exit {}: {}",
        r.code,
        r.stderr
    );
    assert!(r.stderr.contains(".dockerignore"), "{}", r.stderr);
    if r.code == EXIT_INVALID {
        assert!(r.stderr.contains("1000000 bytes"), "{}", r.stderr);
    }
    // ... which .dockerignore fixes. Ctrl-C while it deploys: the deployment goes on, and the
    // CLI says how to follow it.
    std::fs::write(big.join(".dockerignore"), "data.bin\n").unwrap();
    let mut child = cli
        .command(&["deploy", &big_arg, "--build-context", "local"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut said = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let requested = line.contains("job deployment requested");
        said.push(line);
        if requested {
            break;
        }
    }
    assert!(
        said.last()
            .is_some_and(|l| l.contains("job deployment requested")),
        "{said:?}"
    );
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    said.extend(rx.iter());
    let said = said.join("\n");
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(
        said.contains("goes on") && said.contains("racetrack build-logs"),
        "{said}"
    );
    let big_name = big.file_name().unwrap().to_string_lossy().into_owned();
    let start = Instant::now();
    loop {
        let r = cli.run(&["list", "-o", "json"]).ok();
        let listed: Value = serde_json::from_str(&r.stdout).unwrap();
        let running = listed
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == big_name.as_str() && f["status"] == "running");
        if running {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the interrupted deployment never finished: {listed}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // A failing build: non-zero, the reason and the log's tail.
    let bad_name = unique("cli-bad");
    let bad = sample_copy("python-bad-requirements", &bad_name, work.path());
    let r = cli
        .run(&[
            "deploy",
            &bad.display().to_string(),
            "--build-context",
            "local",
        ])
        .fails_with(EXIT_DEPLOYMENT_FAILED, "deployment error");
    assert!(
        r.stderr.contains("last lines of the build log"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.trim().is_empty(), "no build log tail printed");

    // run-local: built by Racetrack, run on the local engine, answering on the given port.
    let local_name = unique("cli-local");
    let local = sample_copy("python-class", &local_name, work.path());
    let port = free_port();
    let mut child = cli
        .command(&[
            "run-local",
            &local.display().to_string(),
            "--port",
            &port.to_string(),
            "--build-context",
            "local",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let container = format!("local-fatman-{local_name}-v-0-0-1");
    let url = format!("http://127.0.0.1:{port}/pub/fatman/{local_name}/0.0.1/api/v1/perform");
    let start = Instant::now();
    let answer = loop {
        let resp = p
            .client
            .post(&url)
            .json(&serde_json::json!({"numbers": [40, 2]}))
            .send()
            .await;
        // Until it is ready it answers with an error status ("still initializing").
        if let Ok(r) = resp.and_then(|r| r.error_for_status()) {
            break r.text().await.unwrap_or_default();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("run-local ended with {status} before the fatman answered");
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "run-local's fatman never answered at {url}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = Command::new("docker")
        .args(["rm", "-f", &container])
        .output();
    let status = child.wait().unwrap();
    assert_eq!(answer.trim(), "42");
    assert!(containers_named(&container).is_empty());
    println!("run-local ended with {status} once its container was removed");

    // Moving needs a second infrastructure target, which this platform lacks: the server's
    // reason comes through.
    cli.run(&[
        "move",
        &name,
        "--version",
        "0.0.1",
        "--infrastructure",
        "elsewhere",
    ])
    .fails_with(
        EXIT_INVALID,
        "infrastructure target elsewhere is not enabled",
    );

    // Delete, then it is gone.
    let r = cli.run(&["delete", &name, "--version", "0.0.1"]).ok();
    assert!(r.stderr.contains("has been deleted"), "{}", r.stderr);
    let r = cli.run(&["list", "-o", "json"]).ok();
    let listed: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["name"] != name.as_str()),
        "{listed}"
    );
    cli.run(&["delete", &name, "--version", "0.0.1"])
        .fails_with(EXIT_NOT_FOUND, "Not Found");
    cli.run(&["logout"]).ok();
    drop(p);
}
