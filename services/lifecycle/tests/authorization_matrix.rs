//! Every endpoint × every kind of caller → the expected status.

mod common;

use common::{Backend, TestApp};
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
    Internal,
}

const ROLES: [Role; 8] = [
    Role::Anonymous,
    Role::InactiveUser,
    Role::User,
    Role::OtherUser,
    Role::Admin,
    Role::Esc,
    Role::Fatman,
    Role::Internal,
];

struct Case {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    /// Expected status per role, in ROLES order.
    expect: [u16; 8],
}

fn case(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 8]) -> Case {
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
    let internal = racetrack_auth::TokenSigner::new(&app.auth_key)
        .internal_token("dashboard", &["full_access"])
        .unwrap();
    let token_of = |role: Role, esc: &str| -> Option<String> {
        let t: &str = match role {
            Role::Anonymous => return None,
            Role::InactiveUser => &inactive,
            Role::User => &user,
            Role::OtherUser => &other,
            Role::Admin => &admin,
            Role::Esc => esc,
            Role::Fatman => &fatman,
            Role::Internal => &internal,
        };
        Some(t.to_string())
    };

    //            anon inact user other admin esc fatman internal
    let cases = vec![
        case(Method::GET, "/api/v1/info", None, [200, 200, 200, 200, 200, 200, 200, 200]),
        case(Method::GET, "/health", None, [200, 200, 200, 200, 200, 200, 200, 200]),
        case(Method::GET, "/api/v1/users/validate_user_auth", None, [401, 401, 200, 200, 200, 200, 200, 200]),
        case(Method::GET, "/api/v1/fatman", None, [401, 401, 200, 200, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/fatman_family", None, [401, 401, 200, 200, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/fatman_graph", None, [401, 401, 200, 200, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/fatman/owned/1.0.0", None, [401, 401, 200, 200, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/fatman/owned/latest/public-endpoints", None, [401, 401, 200, 200, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/fatman/owned/1.0.0/build-logs", None, [401, 401, 404, 404, 404, 403, 403, 404]),
        case(Method::POST, "/api/v1/fatman/owned/1.0.0/move", Some(json!({"infrastructure_target": "kubernetes"})), [401, 401, 400, 400, 400, 403, 403, 400]),
        case(Method::GET, "/api/v1/deploy/unknown-id", None, [401, 401, 404, 404, 404, 404, 404, 404]),
        case(Method::PUT, "/api/v1/deploy/unknown-id/phase", Some(json!({"phase": "x"})), [401, 401, 404, 404, 404, 404, 404, 404]),
        case(Method::GET, "/api/v1/escs", None, [401, 401, 403, 403, 200, 403, 403, 200]),
        case(Method::POST, "/api/v1/escs", Some(json!({"name": "matrix"})), [401, 401, 403, 403, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/users", None, [401, 401, 403, 403, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/users/user@example.com/profile", None, [401, 401, 403, 403, 200, 403, 403, 200]),
        case(Method::PATCH, "/api/v1/users/other@example.com", Some(json!({"first_name": "O"})), [401, 401, 403, 403, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/auth/permissions", None, [401, 401, 403, 403, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/auth/subjects", None, [401, 401, 403, 403, 200, 403, 403, 200]),
        case(Method::POST, "/api/v1/auth/token/esc/regenerate", Some(json!(null)), [401, 401, 403, 403, 200, 403, 403, 200]),
        case(Method::POST, "/api/v1/auth/allow/fatman_family/caller/fatman/owned/scope/read_fatman", Some(json!(null)), [401, 401, 403, 403, 200, 403, 403, 200]),
        case(Method::GET, "/api/v1/audit/events", None, [401, 401, 200, 200, 200, 200, 200, 200]),
        case(Method::GET, "/api/v1/audit/user_events", None, [401, 401, 200, 200, 200, 403, 403, 403]),
        case(Method::GET, "/api/v1/auth/allowed/fatman/owned/1.0.0/scope/read_fatman", None, [401, 401, 202, 202, 202, 401, 202, 202]),
        case(Method::GET, "/api/v1/auth/allowed/fatman_endpoint/owned/latest/scope/call_fatman/endpoint/api/v1/perform", None, [401, 401, 202, 202, 202, 401, 401, 202]),
        case(Method::PUT, "/api/v1/users/me/password", Some(json!({"old_password": "x", "new_password": "y"})), [401, 401, 403, 403, 403, 403, 403, 403]),
        case(Method::DELETE, "/api/v1/fatman/owned/1.0.0", None, [401, 401, 200, 403, 200, 403, 403, 200]),
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
