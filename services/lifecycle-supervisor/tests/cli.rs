//! The `lifecycle-supervisor` binary's command line (the service kit's): `check-config` tells
//! whether the environment makes a supervisor that can serve, without printing its token.

use std::process::{Command, Output};

fn supervisor_bin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifecycle-supervisor"));
    cmd.args(args).env_clear().envs(env.iter().copied());
    cmd.output().unwrap()
}

const TOKEN: &str = "c3VwZXJ2aXNvci10b2tlbi10aGF0LW11c3Qtbm90LWxlYWs";

#[test]
fn check_config_needs_the_token_and_never_prints_it() {
    let out = supervisor_bin(&["check-config"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("LIFECYCLE_AUTH_TOKEN"), "{stderr}");

    let out = supervisor_bin(
        &["check-config"],
        &[("LIFECYCLE_AUTH_TOKEN", TOKEN), ("SYNC_INTERVAL_SECS", "5")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("sync_interval: 5s"), "{stdout}");
    assert!(!stdout.contains(TOKEN), "token printed: {stdout}");

    let out = supervisor_bin(
        &["check-config"],
        &[
            ("LIFECYCLE_AUTH_TOKEN", TOKEN),
            ("SYNC_INTERVAL_SECS", "often"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SYNC_INTERVAL_SECS"), "{stderr}");
}

#[test]
fn unknown_commands_are_refused() {
    assert_eq!(supervisor_bin(&["srve"], &[]).status.code(), Some(2));
}
