//! The production path on one host: `make docker-push` (five images of the host's binaries pushed
//! to the local registry), `make compose-up` (the platform from those images with Postgres and
//! Redis), a deploy of the sample adder through Lifecycle's REST API and a call through PUB, then
//! `make compose-down`, also when something fails. Own project name, ports and fatman network, so
//! it can run beside the other tests. See docker/README.md.

mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::*;
use serde_json::{json, Value};

const ADMIN: &str = "Compose-Adm1n-Pass";

fn tool_ok(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `make <target>` at the workspace root with `env`, bounded by `secs` (coreutils `timeout`).
fn make(target: &str, env: &[(String, String)], secs: u64) -> Result<(), String> {
    let started = Instant::now();
    let mut cmd = Command::new("timeout");
    cmd.args([&secs.to_string(), "make", "--no-print-directory", target])
        .current_dir(workspace_root())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // The variables `cargo test` sets for this test would make the release build inside
    // `make docker-build` look different from one run in a shell, and so rebuild everything.
    for (key, _) in std::env::vars() {
        let keep = ["CARGO_TARGET_DIR", "CARGO_HOME"].contains(&key.as_str());
        if (key.starts_with("CARGO_") && !keep) || key == "CARGO" || key.starts_with("RUST_TEST") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().map_err(|e| format!("make {target}: {e}"))?;
    eprintln!("make {target}: {:?}", started.elapsed());
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "make {target} failed ({}):\n{}\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout), 40),
            tail(&String::from_utf8_lossy(&out.stderr), 60)
        ))
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Takes the compose project down (volumes too) and removes the fatmen Lifecycle started on the
/// project's own network, whether the test passed or not.
struct ComposeGuard {
    env: Vec<(String, String)>,
    project: String,
    network: String,
}

impl Drop for ComposeGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = Command::new("docker-compose")
                .args(["-f", "docker/compose.yaml", "-p", &self.project])
                .args(["logs", "--no-color", "--tail", "40"])
                .current_dir(workspace_root())
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .output();
            if let Ok(out) = logs {
                eprintln!(
                    "--- compose logs ---\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
        let mut env = self.env.clone();
        env.push(("COMPOSE_DOWN_FLAGS".into(), "-v".into()));
        if let Err(e) = make("compose-down", &env, 180) {
            eprintln!("{e}");
        }
        let out = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("network={}", self.network),
            ])
            .output();
        if let Ok(out) = out {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

// The images hold the debug binaries the workspace build already made (`PROFILE=debug`), so
// the test costs no release build; `COMPOSE_TEST_PROFILE=release` packs release binaries as
// `make docker-push` does by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_platform_deploys_and_serves_the_adder() {
    if !(require("the Docker engine", docker_ok())
        && require("the local registry at 127.0.0.1:5000", registry_ok())
        && require(
            "the base image racetrack/debian-base:bookworm",
            image_exists("racetrack/debian-base:bookworm"),
        )
        && require(
            "the base image racetrack/python-base:bookworm",
            image_exists("racetrack/python-base:bookworm"),
        )
        && require("docker-compose", tool_ok("docker-compose", "version"))
        && require("make", tool_ok("make", "--version")))
    {
        return;
    }

    let project = unique("rtcompose");
    let network = format!("{project}-fatmen");
    let ports: Vec<(&str, u16)> = [
        "LIFECYCLE_PORT",
        "LIFECYCLE_GRPC_PORT",
        "IMAGE_BUILDER_GRPC_PORT",
        "IMAGE_BUILDER_HTTP_PORT",
        "SUPERVISOR_PORT",
        "PUB_PORT",
        "DASHBOARD_PORT",
        "POSTGRES_PORT",
        "REDIS_PORT",
    ]
    .into_iter()
    .map(|name| (name, free_port()))
    .collect();
    let mut distinct: Vec<u16> = ports.iter().map(|(_, p)| *p).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ports.len(),
        "free ports collided: {ports:?}"
    );
    let port = |name: &str| ports.iter().find(|(n, _)| *n == name).unwrap().1;
    let mut env: Vec<(String, String)> = ports
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect();
    env.extend([
        ("COMPOSE_PROJECT".into(), project.clone()),
        ("FATMAN_NETWORK".into(), network.clone()),
        ("ADMIN_PASSWORD".into(), ADMIN.into()),
        ("REGISTRY".into(), "127.0.0.1:5000".into()),
        ("TAG".into(), "latest".into()),
        (
            "PROFILE".into(),
            std::env::var("COMPOSE_TEST_PROFILE").unwrap_or_else(|_| "debug".into()),
        ),
    ]);

    // The images: the host's binaries, then `docker build` and `docker push`.
    make("docker-push", &env, 3600).unwrap();
    let _guard = ComposeGuard {
        env: env.clone(),
        project: project.clone(),
        network: network.clone(),
    };
    make("compose-up", &env, 900).unwrap();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let lifecycle = format!("http://127.0.0.1:{}", port("LIFECYCLE_PORT"));
    let pub_url = format!("http://127.0.0.1:{}/pub", port("PUB_PORT"));
    let up = Duration::from_secs(180);
    wait_http_ok(&format!("{lifecycle}/ready"), up).await;
    wait_http_ok(
        &format!("http://127.0.0.1:{}/ready", port("IMAGE_BUILDER_HTTP_PORT")),
        up,
    )
    .await;
    wait_http_ok(
        &format!("http://127.0.0.1:{}/live", port("SUPERVISOR_PORT")),
        up,
    )
    .await;
    wait_http_ok(&format!("{pub_url}/ready"), up).await;
    wait_http_ok(
        &format!(
            "http://127.0.0.1:{}/dashboard/ready",
            port("DASHBOARD_PORT")
        ),
        up,
    )
    .await;

    // The admin made from ADMIN_PASSWORD (Postgres: no admin without it).
    let login: Value = client
        .post(format!("{lifecycle}/api/v1/users/login"))
        .json(&json!({"username": "admin", "password": ADMIN}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login: {login}"))
        .to_string();

    let name = unique("adder");
    let sample = workspace_root().join("sample/python-class");
    let payload = json!({
        "manifest": sample_manifest("python-class", &name, "0.0.1"),
        "build_context": build_context(&sample),
    });
    let resp = client
        .post(format!("{lifecycle}/api/v1/deploy"))
        .header("X-Racetrack-Auth", &token)
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let start = Instant::now();
    let deployment = loop {
        let d: Value = client
            .get(format!("{lifecycle}/api/v1/deploy/{id}"))
            .header("X-Racetrack-Auth", &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d["status"] != "in_progress" {
            break d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "deployment {id} did not end: {d}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(deployment["status"], "done", "{deployment}");

    // Through PUB, as any client calls a fatman.
    let start = Instant::now();
    loop {
        let resp = client
            .post(format!("{pub_url}/fatman/{name}/latest/api/v1/perform"))
            .header("X-Racetrack-Auth", &token)
            .json(&json!({"numbers": [40, 2]}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status == 200 {
            assert_eq!(body, json!(42));
            break;
        }
        // PUB may still hold a route cached before the deploy finished (AUTH_CACHE_TTL).
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "perform through PUB: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
