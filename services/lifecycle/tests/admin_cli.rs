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

    // generate-auth: an unknown service is refused with the known ones listed, nothing stored.
    let (ok, _, err) = lifecycle(&db, &["generate-auth", "nginx"], "");
    assert!(!ok);
    assert!(
        err.contains("\"nginx\"")
            && err.contains("pub, dashboard, image-builder, lifecycle-supervisor"),
        "{err}"
    );
    let (ok, out, err) = lifecycle(&db, &["generate-auth", "pub"], "");
    assert!(ok, "{err}");
    assert!(
        out.starts_with("Service: pub\nScopes: authorize_calls\n"),
        "{out}"
    );
    let first = out.lines().last().expect("token line").to_string();
    // Rotation: a second token for the same service; the first one stays valid until revoked.
    let (ok, out, err) = lifecycle(&db, &["generate-auth", "pub"], "");
    assert!(ok, "{err}");
    let second = out.lines().last().expect("token line").to_string();
    assert_ne!(first, second);
    let key = std::fs::read_to_string(dir.path().join("rt.db.auth_key")).unwrap();
    let signer = racetrack_auth::TokenSigner::new(key.trim());
    let database = racetrack_db::Database::connect(&db, 1).unwrap();
    let mut conn = database.get().unwrap();
    use racetrack_db::repo::auth as repo;
    let subject = repo::find_subject_by(&mut conn, repo::SubjectKey::Service("pub"))
        .unwrap()
        .expect("pub has a stored subject");
    for token in [&first, &second] {
        let claims = signer.verify(token).unwrap().claims;
        assert_eq!(
            (claims.subject.as_str(), claims.subject_type.as_str()),
            ("pub", "internal")
        );
        let digest = racetrack_auth::token::digest(&claims);
        let (row, owner) = repo::find_token_by_hash(&mut conn, &digest)
            .unwrap()
            .expect("the token is stored (as a digest)");
        assert_eq!(owner.id, subject.id);
        assert_ne!(row.token_hash, *token, "stored hashed, not as is");
    }
    let scopes: Vec<String> = repo::permissions_of_subject(&mut conn, &subject.id)
        .unwrap()
        .into_iter()
        .map(|p| p.scope.to_string())
        .collect();
    assert_eq!(
        scopes,
        ["authorize_calls"],
        "PUB's scope only, no full_access"
    );

    let (ok, _, err) = lifecycle("mysql://nope", &["migrate"], "");
    assert!(!ok);
    assert!(err.contains("unsupported DATABASE_URL"), "{err}");
}
