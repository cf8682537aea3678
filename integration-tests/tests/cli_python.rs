//! The original Python client (PyPI `racetrack-client` 2.8.1) against our platform, and its
//! config file shared with our `racetrack` binary in both directions. The client is installed in
//! a virtualenv under the target dir (kept between runs). Without PyPI the test fails under CI
//! and is skipped elsewhere with the reason printed.

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use harness::*;

const CLIENT: &str = "racetrack-client==2.8.1";

/// `<target>/racetrack-client-2.8.1/bin/racetrack`, installed when missing; `None` when PyPI
/// cannot be used (outside CI only).
fn python_client() -> Option<PathBuf> {
    let target = binary("racetrack")
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let venv = target.join("racetrack-client-2.8.1");
    let exe = venv.join("bin/racetrack");
    if exe.exists() {
        return Some(exe);
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "python3 -m venv: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check", CLIENT])
        .output()
        .unwrap();
    if !pip.status.success() {
        let reason = String::from_utf8_lossy(&pip.stderr).into_owned();
        let _ = std::fs::remove_dir_all(&venv);
        if in_ci() {
            panic!("installing {CLIENT} from PyPI failed under CI: {reason}");
        }
        eprintln!("SKIPPED: cannot install {CLIENT} from PyPI: {reason}");
        return None;
    }
    assert!(exe.exists(), "{CLIENT} installed no racetrack command");
    Some(exe)
}

struct Clients {
    home: tempfile::TempDir,
    python: PathBuf,
}

impl Clients {
    fn run(&self, exe: &Path, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(exe)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The original exits 0 after logging an error, so its output is checked too.
    fn py(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(&self.python, args);
        let text = format!("{out}{err}");
        assert!(
            code == 0 && !text.contains("ERROR"),
            "racetrack (Python) {args:?} exit {code}:\n{text}"
        );
        text
    }

    fn ours(&self, args: &[&str]) -> (String, String) {
        let (code, out, err) = self.run(&binary("racetrack"), args);
        assert_eq!(code, 0, "racetrack {args:?} exit {code}:\n{out}\n{err}");
        (out, err)
    }

    fn config(&self) -> String {
        std::fs::read_to_string(self.home.path().join(".racetrack/config.yaml")).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_python_client_and_shared_config() {
    if !(deploy_prerequisites() && require("Redis at 127.0.0.1:6379", redis_ok())) {
        return;
    }
    let Some(python) = python_client() else {
        return;
    };
    let c = Clients {
        home: tempfile::tempdir().unwrap(),
        python,
    };

    // Config written by the original, read by ours.
    c.py(&["set", "alias", "far", "https://far.example.com/lifecycle/"]);
    c.py(&[
        "set",
        "credentials",
        "https://github.com",
        "alice",
        "ghp_secret",
    ]);
    c.py(&["set", "remote", "far"]);
    let (_, err) = c.ours(&["get", "remote"]);
    assert!(
        err.contains("Current remote is \"far\" - https://far.example.com/lifecycle"),
        "{err}"
    );
    let (out, _) = c.ours(&["get", "config", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["git_credentials"]["https://github.com"]["password"],
        "ghp_secret"
    );
    let written_by_python = c.config();

    // Config written by ours, read by the original.
    c.ours(&["set", "alias", "near", "http://near.example.com:7002/"]);
    c.ours(&["set", "remote", "near"]);
    let text = c.py(&["get", "remote"]);
    assert!(
        text.contains("Current remote is \"near\" - http://near.example.com:7002/lifecycle"),
        "{text}"
    );
    let text = c.py(&["get", "config"]);
    assert!(
        text.contains("ghp_secret") && text.contains("far:"),
        "{text}"
    );
    // Ours only changed what it was asked to.
    assert_eq!(
        c.config()
            .replace("  near: http://near.example.com:7002\n", "")
            .replace("lifecycle_url: near", "lifecycle_url: far"),
        written_by_python
    );

    // The original against the platform.
    let mut p = Platform::start().await;
    p.start_pub(&[]).await;
    let remote = p.lifecycle_url.clone();
    let resolved = format!("{remote}/lifecycle");
    let text = c.py(&["login", &p.admin_token, "--remote", &remote]);
    assert!(text.contains("Logged as user admin"), "{text}");
    assert!(c
        .config()
        .contains(&format!("{resolved}: {}", p.admin_token)));
    // Ours uses the token the original stored.
    let (out, _) = c.ours(&["list", "--remote", &remote, "-o", "json"]);
    assert_eq!(out.trim(), "[]");

    let work = tempfile::tempdir().unwrap();
    let name = unique("py-adder");
    let dir = work.path().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let sample = workspace_root().join("sample/python-class");
    std::fs::copy(sample.join("adder.py"), dir.join("adder.py")).unwrap();
    let manifest = std::fs::read_to_string(sample.join("fatman.yaml")).unwrap();
    std::fs::write(
        dir.join("fatman.yaml"),
        manifest.replacen("name: adder", &format!("name: {name}"), 1),
    )
    .unwrap();
    let text = c.py(&[
        "deploy",
        &dir.display().to_string(),
        "--remote",
        &remote,
        "--build-context",
        "local",
    ]);
    assert!(
        text.contains(&format!("Fatman \"{name}\" has been deployed")),
        "{text}"
    );
    let text = c.py(&["list", "--remote", &remote]);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&name) && l.contains("RUNNING")),
        "{text}"
    );
    let text = c.py(&["logs", &name, "--remote", &remote]);
    assert!(text.contains("Viewing the latest logs"), "{text}");
    let text = c.py(&["build-logs", &name, "--remote", &remote]);
    assert!(text.contains("Recent build logs"), "{text}");
    let text = c.py(&["delete", &name, "--version", "0.0.1", "--remote", &remote]);
    assert!(text.contains("has been deleted"), "{text}");
    let (out, _) = c.ours(&["list", "--remote", &remote, "-o", "json"]);
    assert_eq!(out.trim(), "[]");
    let text = c.py(&["logout", "--remote", &remote]);
    assert!(text.contains("Logged out"), "{text}");
    assert!(!c.config().contains(&p.admin_token));
}
