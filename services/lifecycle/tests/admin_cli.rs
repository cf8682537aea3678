//! The lifecycle binary's admin commands, run as an operator would.

use std::io::Write;
use std::process::{Command, Stdio};

fn lifecycle(db: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifecycle"))
        .args(args)
        .env("DATABASE_URL", db)
        .env_remove("AUTH_KEY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lifecycle binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn migrate_createsuperuser_changepassword_generate_auth() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("rt.db").display());

    let (ok, out, err) = lifecycle(&db, &["migrate"], "");
    assert!(ok, "{out}{err}");
    // Every migration on an empty database, none the second time.
    assert!(
        out.starts_with("applied ") && !out.starts_with("applied 0 "),
        "{out}"
    );
    assert!(lifecycle(&db, &["migrate"], "")
        .1
        .contains("applied 0 migration"));

    let (ok, out, err) = lifecycle(
        &db,
        &[
            "createsuperuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ],
        "Str0ng-Enough-Pass\n",
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("Superuser created successfully."));
    assert!(
        !out.contains("Str0ng-Enough-Pass") && !err.contains("Str0ng-Enough-Pass"),
        "password never printed"
    );

    let (ok, _, err) = lifecycle(
        &db,
        &["createsuperuser", "--username", "root"],
        "Str0ng-Enough-Pass\n",
    );
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");

    let (ok, _, err) = lifecycle(&db, &["createsuperuser", "--username", "weak"], "123\n");
    assert!(!ok);
    assert!(err.contains("too short"), "{err}");

    let (ok, out, err) = lifecycle(&db, &["changepassword", "root"], "Another-Str0ng-Pass\n");
    assert!(ok, "{out}{err}");
    assert!(out.contains("Password changed successfully for user 'root'"));
    let (ok, _, err) = lifecycle(&db, &["changepassword", "nobody"], "Another-Str0ng-Pass\n");
    assert!(!ok);
    assert!(err.contains("user 'nobody' does not exist"), "{err}");

    let (ok, out, err) = lifecycle(&db, &["generate-auth", "pub"], "");
    assert!(ok, "{err}");
    let token = out.lines().nth(2).expect("token line");
    let key = std::fs::read_to_string(dir.path().join("rt.db.auth_key")).unwrap();
    let claims = racetrack_auth::TokenSigner::new(key.trim())
        .verify(token)
        .unwrap()
        .claims;
    assert_eq!(
        (claims.subject.as_str(), claims.subject_type.as_str()),
        ("pub", "internal")
    );
    assert!(out.starts_with("Service: pub\nLIFECYCLE_AUTH_TOKEN:\n"));

    let (ok, _, err) = lifecycle("mysql://nope", &["migrate"], "");
    assert!(!ok);
    assert!(err.contains("unsupported DATABASE_URL"), "{err}");
}
