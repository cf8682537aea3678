//! Every endpoint × every kind of caller → the expected status.

mod common;

use common::{Backend, TestApp};
use racetrack_model::InternalService;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Role {
    Anonymous,
    InactiveUser,
    /// Deployed `owned 1.0.0`; default permissions.
    User,
    /// Default permissions, owns nothing.
    OtherUser,
    Admin,
    Esc,
    Fatman,
    /// Stored internal tokens from `generate-auth`, each with its service's scopes only.
    Dashboard,
    Pub,
    Supervisor,
    /// Signed with AUTH_KEY, `full_access`, never stored: what `generate-auth` used to print.
    ForgedInternal,
}

const ROLES: [Role; 11] = [
    Role::Anonymous,
    Role::InactiveUser,
    Role::User,
    Role::OtherUser,
    Role::Admin,
    Role::Esc,
    Role::Fatman,
    Role::Dashboard,
    Role::Pub,
    Role::Supervisor,
    Role::ForgedInternal,
];

struct Case {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    /// Expected status per role, in ROLES order.
    expect: [u16; 11],
}

fn case(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 11]) -> Case {
    Case {
        method,
        path,
        body,
        expect,
    }
}

async fn run(app: TestApp) {
    let admin = app.admin_token.clone();
    let inactive = app.user("inactive@example.com", false).await;
    let user = app.user("user@example.com", true).await;
    let other = app.user("other@example.com", true).await;
    app.seed_fatman("owned", "1.0.0", Some("user@example.com"))
        .await;
    let fatman = app.seed_fatman("caller", "1.0.0", None).await;
    let (esc_id, _) = app.esc("consumer").await;
    let dashboard = app.service_token(InternalService::Dashboard).await;
    let pub_token = app.service_token(InternalService::Pub).await;
    let supervisor = app
        .service_token(InternalService::LifecycleSupervisor)
        .await;
    let forged = app.forged_internal_token("dashboard");
    // A build of a new version of someone else's family (issue 10: an ESC could start one).
    let build = json!({"manifest": {
        "name": "owned", "version": "9.9.9", "owner_email": "x@example.com",
        "lang": "python3:latest", "git": {"remote": "https://example.com/repo.git"},
    }});
    let token_of = |role: Role, esc: &str| -> Option<String> {
        let t: &str = match role {
            Role::Anonymous => return None,
            Role::InactiveUser => &inactive,
            Role::User => &user,
            Role::OtherUser => &other,
            Role::Admin => &admin,
            Role::Esc => esc,
            Role::Fatman => &fatman,
            Role::Dashboard => &dashboard,
            Role::Pub => &pub_token,
            Role::Supervisor => &supervisor,
            Role::ForgedInternal => &forged,
        };
        Some(t.to_string())
    };

    // Columns: anonymous, inactive user, user, other user, admin, ESC, fatman family,
    // dashboard, pub, supervisor, forged internal token.
    let cases = vec![
        case(Method::GET, "/api/v1/info", None, [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        case(Method::GET, "/health", None, [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        case(Method::GET, "/api/v1/users/validate_user_auth", None, [401, 401, 200, 200, 200, 200, 200, 403, 403, 403, 401]),
        case(Method::GET, "/api/v1/fatman", None, [401, 401, 200, 200, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/fatman_family", None, [401, 401, 200, 200, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/fatman_graph", None, [401, 401, 200, 200, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/fatman/owned/1.0.0", None, [401, 401, 200, 200, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/fatman/owned/latest/public-endpoints", None, [401, 401, 200, 200, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/fatman/owned/1.0.0/build-logs", None, [401, 401, 404, 404, 404, 403, 403, 404, 403, 403, 401]),
        case(Method::POST, "/api/v1/fatman/owned/1.0.0/move", Some(json!({"infrastructure_target": "kubernetes"})), [401, 401, 400, 403, 400, 403, 403, 403, 403, 403, 401]),
        // Reprovision: the owner, admins and the supervisor get past authorization (400: no
        // deployed image); nobody else.
        case(Method::POST, "/api/v1/fatman/owned/1.0.0/reprovision", None, [401, 401, 400, 403, 400, 403, 403, 403, 403, 400, 401]),
        case(Method::POST, "/api/v1/fatman/owned/9.9.9/reprovision", None, [401, 401, 403, 403, 404, 403, 403, 403, 403, 404, 401]),
        // Build: the permission deploying that version needs (the owner's fatman-level rows on
        // 1.0.0 do not cover 9.9.9); the admin's build starts (200).
        case(Method::POST, "/api/v1/build", Some(build), [401, 401, 403, 403, 200, 403, 403, 403, 403, 403, 401]),
        case(Method::GET, "/api/v1/deploy/unknown-id", None, [401, 401, 404, 404, 404, 404, 404, 403, 403, 403, 401]),
        // Phases: the image-builder's scope (or full_access), not a mere login.
        case(Method::PUT, "/api/v1/deploy/unknown-id/phase", Some(json!({"phase": "x"})), [401, 401, 403, 403, 404, 403, 403, 403, 403, 403, 401]),
        case(Method::GET, "/api/v1/escs", None, [401, 401, 403, 403, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::POST, "/api/v1/escs", Some(json!({"name": "matrix"})), [401, 401, 403, 403, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/users", None, [401, 401, 403, 403, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/users/user@example.com/profile", None, [401, 401, 403, 403, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::PATCH, "/api/v1/users/other@example.com", Some(json!({"first_name": "O"})), [401, 401, 403, 403, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/auth/permissions", None, [401, 401, 403, 403, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/auth/subjects", None, [401, 401, 403, 403, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::POST, "/api/v1/auth/token/esc/regenerate", Some(json!(null)), [401, 401, 403, 403, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::POST, "/api/v1/auth/allow/fatman_family/caller/fatman/owned/scope/read_fatman", Some(json!(null)), [401, 401, 403, 403, 200, 403, 403, 200, 403, 403, 401]),
        // The whole audit log: users and admin services, not ESC or fatman tokens.
        case(Method::GET, "/api/v1/audit/events", None, [401, 401, 200, 200, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/audit/events/fatman/owned", None, [401, 401, 200, 200, 200, 403, 403, 200, 403, 403, 401]),
        case(Method::GET, "/api/v1/audit/user_events", None, [401, 401, 200, 200, 200, 403, 403, 403, 403, 403, 401]),
        case(Method::GET, "/api/v1/auth/allowed/fatman/owned/1.0.0/scope/read_fatman", None, [401, 401, 202, 202, 202, 401, 202, 202, 401, 401, 401]),
        // PUB's own token is no key to fatmen.
        case(Method::GET, "/api/v1/auth/allowed/fatman_endpoint/owned/latest/scope/call_fatman/endpoint/api/v1/perform", None, [401, 401, 202, 202, 202, 401, 401, 401, 401, 401, 401]),
        case(Method::PUT, "/api/v1/users/me/password", Some(json!({"old_password": "x", "new_password": "y"})), [401, 401, 403, 403, 403, 403, 403, 403, 403, 403, 401]),
        case(Method::DELETE, "/api/v1/fatman/owned/1.0.0", None, [401, 401, 200, 403, 200, 403, 403, 403, 403, 403, 401]),
    ];

    let mut failures = Vec::new();
    for c in &cases {
        for (role, expected) in ROLES.iter().zip(c.expect) {
            // Deleting succeeds once: put the fatman back for the next caller.
            if c.method == Method::DELETE {
                let mut conn = app.db();
                if racetrack_db::repo::fatmen::find(&mut conn, "owned", "1.0.0")
                    .unwrap()
                    .is_none()
                {
                    drop(conn);
                    app.seed_fatman("owned", "1.0.0", Some("user@example.com"))
                        .await;
                }
            }
            // One case regenerates every ESC token: always use the ESC's current one.
            let (_, shown) = app
                .get(&format!("/api/v1/auth/token/esc/{esc_id}"), Some(&admin))
                .await;
            let token = token_of(*role, shown["token"].as_str().unwrap());
            let (status, body) = app
                .call(c.method.clone(), c.path, token.as_deref(), c.body.clone())
                .await;
            if status != StatusCode::from_u16(expected).unwrap() {
                failures.push(format!(
                    "{} {} as {role:?}: expected {expected}, got {status} {body}",
                    c.method, c.path
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix mismatches:\n{}",
        failures.join("\n")
    );
}

both_backends!(authorization_matrix, run);
