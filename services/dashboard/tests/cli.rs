//! The `dashboard` binary's command line (the service kit's): `check-config` tells whether the
//! environment makes a dashboard that can serve, without printing its session key.

use std::process::{Command, Output};

fn dashboard_bin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dashboard"));
    cmd.args(args).env_clear().envs(env.iter().copied());
    cmd.output().unwrap()
}

const KEY: &str = "dashboard-session-key-that-must-not-leak-0123";

#[test]
fn check_config_needs_the_secret_key_and_never_prints_it() {
    let out = dashboard_bin(&["check-config"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SECRET_KEY"), "{stderr}");

    let out = dashboard_bin(&["check-config"], &[("SECRET_KEY", "too-short")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("at least 32"), "{stderr}");

    let out = dashboard_bin(
        &["check-config"],
        &[("SECRET_KEY", KEY), ("DASHBOARD_PORT", "7203")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("0.0.0.0:7203"), "{stdout}");
    assert!(!stdout.contains(KEY), "session key printed: {stdout}");

    let out = dashboard_bin(
        &["check-config"],
        &[("SECRET_KEY", KEY), ("SESSION_TTL", "forever")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SESSION_TTL"), "{stderr}");
}

#[test]
fn unknown_commands_are_refused() {
    assert_eq!(dashboard_bin(&["srve"], &[]).status.code(), Some(2));
}
