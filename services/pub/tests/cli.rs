//! The `pub` binary's command line (the service kit shared by every binary): `check-config`
//! shows the configuration the environment makes without its secrets, a bad variable is named
//! with a non-zero status, and an unknown command is refused instead of serving.

use std::process::{Command, Output};

fn pub_bin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pub"));
    cmd.args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const TOKEN: &str = "eyJ0b2tlbi1zZWNyZXQtdmFsdWUtdGhhdC1tdXN0LW5vdC1sZWFr";

#[test]
fn check_config_prints_the_settings_without_the_token() {
    let out = pub_bin(
        &["check-config"],
        &[
            ("LIFECYCLE_AUTH_TOKEN", TOKEN),
            ("PUB_ADDR", "127.0.0.1:7999"),
            ("REDIS_URL", "redis://:hunter2-redis-pw@127.0.0.1:6379"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("127.0.0.1:7999"), "{stdout}");
    for secret in [TOKEN, "hunter2-redis-pw"] {
        assert!(!stdout.contains(secret), "secret printed: {stdout}");
        assert!(!stderr.contains(secret), "secret printed: {stderr}");
    }
}

#[test]
fn check_config_names_a_bad_variable_and_fails() {
    let out = pub_bin(&["check-config"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("LIFECYCLE_AUTH_TOKEN"), "{stderr}");
    let out = pub_bin(
        &["check-config"],
        &[
            ("LIFECYCLE_AUTH_TOKEN", TOKEN),
            ("SHUTDOWN_TIMEOUT", "soon"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SHUTDOWN_TIMEOUT"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

#[test]
fn unknown_commands_are_refused_and_help_lists_the_commands() {
    let out = pub_bin(&["srve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let help = pub_bin(&["--help"], &[]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("serve") && text.contains("check-config"),
        "{text}"
    );
}
