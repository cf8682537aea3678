//! Every RPC of `proto/lifecycle.proto` × every kind of token presented as the calling service
//! (`x-racetrack-auth`) → the expected tonic code; and, for `AuthorizeCall` asked by PUB, every
//! kind of caller token → the expected decision.

mod common;
#[path = "common/token_kinds.rs"]
mod token_kinds;

use common::{Backend, TestApp};
use racetrack_model::InternalService;
use racetrack_proto::lifecycle::call_decision::Outcome;
use racetrack_proto::lifecycle::lifecycle_client::LifecycleClient;
use racetrack_proto::lifecycle::{AuthorizeCallRequest, ResolveFatmanRequest};
use reqwest::StatusCode;
use token_kinds::{request, revoked_pub_token, Tokens, ROLES};
use tonic::Code;

async fn run(app: TestApp) {
    let inactive = app.user("inactive@example.com", false).await;
    let user = app.user("user@example.com", true).await;
    app.seed_fatman("adder", "1.0.0", Some("user@example.com"))
        .await;
    let fatman = app.seed_fatman("caller", "1.0.0", None).await;
    let (_, esc) = app.esc("consumer").await;
    let pub_token = app.service_token(InternalService::Pub).await;
    let tokens = Tokens {
        inactive,
        user,
        admin: app.admin_token.clone(),
        esc,
        fatman,
        dashboard: app.service_token(InternalService::Dashboard).await,
        image_builder: app.service_token(InternalService::ImageBuilder).await,
        supervisor: app
            .service_token(InternalService::LifecycleSupervisor)
            .await,
        revoked: revoked_pub_token(&app).await,
        forged: app.forged_internal_token("pub"),
        pub_token,
    };
    let mut client = LifecycleClient::connect(app.grpc_url.clone())
        .await
        .expect("gRPC connects");

    use Code::{Ok as Allowed, PermissionDenied as Denied, Unauthenticated as Unauth};
    // Columns: anonymous, inactive user, user, admin, ESC, fatman family, pub, dashboard,
    // image-builder, supervisor, revoked pub, forged internal, garbage. Only PUB's stored,
    // live token (`authorize_calls`) may use the internal API.
    let expected: [Code; 13] = [
        Unauth, Unauth, Denied, Denied, Denied, Denied, Allowed, Denied, Denied, Denied, Unauth,
        Unauth, Unauth,
    ];
    let mut failures = Vec::new();
    for (role, want) in ROLES.iter().zip(expected) {
        let token = tokens.of(*role);
        let resolved = client
            .resolve_fatman(request(
                ResolveFatmanRequest {
                    name: "adder".into(),
                    version: "latest".into(),
                },
                token,
            ))
            .await;
        let got = resolved.as_ref().map_or_else(|s| s.code(), |_| Code::Ok);
        if got != want {
            failures.push(format!(
                "ResolveFatman as {role:?}: expected {want:?}, got {resolved:?}"
            ));
        }
        let decided = client
            .authorize_call(request(
                AuthorizeCallRequest {
                    token: tokens.user.clone(),
                    fatman_name: "adder".into(),
                    fatman_version: "latest".into(),
                    endpoint: "/api/v1/perform".into(),
                },
                token,
            ))
            .await;
        let got = decided.as_ref().map_or_else(|s| s.code(), |_| Code::Ok);
        if got != want {
            failures.push(format!(
                "AuthorizeCall as {role:?}: expected {want:?}, got {decided:?}"
            ));
        }
    }

    // AuthorizeCall asked by PUB: the caller's token decides the outcome (never an error).
    // Same columns; the owner, other users with the default global call_fatman and the admin
    // may call; ESC and family tokens need a grant; services' tokens open no fatman.
    let outcomes: [Outcome; 13] = [
        Outcome::Unauthenticated,
        Outcome::Unauthenticated,
        Outcome::Allowed,
        Outcome::Allowed,
        Outcome::Forbidden,
        Outcome::Forbidden,
        Outcome::Forbidden,
        Outcome::Forbidden,
        Outcome::Forbidden,
        Outcome::Forbidden,
        Outcome::Unauthenticated,
        Outcome::Unauthenticated,
        Outcome::Unauthenticated,
    ];
    for (role, want) in ROLES.iter().zip(outcomes) {
        let decision = client
            .authorize_call(request(
                AuthorizeCallRequest {
                    token: tokens.of(*role).unwrap_or_default().to_string(),
                    fatman_name: "adder".into(),
                    fatman_version: "latest".into(),
                    endpoint: "/api/v1/perform".into(),
                },
                Some(&tokens.pub_token),
            ))
            .await;
        match decision {
            Ok(d) if d.get_ref().outcome == want as i32 => {
                let d = d.get_ref();
                if want == Outcome::Allowed
                    && (d.subject_id.is_empty() || d.subject_name.is_empty())
                {
                    failures.push(format!("caller {role:?}: allowed without a subject: {d:?}"));
                }
                if want != Outcome::Allowed && d.reason.is_empty() {
                    failures.push(format!("caller {role:?}: denied without a reason: {d:?}"));
                }
            }
            other => failures.push(format!(
                "caller {role:?} through PUB: expected {want:?}, got {other:?}"
            )),
        }
    }

    // A missing fatman is NotFound for PUB.
    let missing = client
        .resolve_fatman(request(
            ResolveFatmanRequest {
                name: "nobody".into(),
                version: "latest".into(),
            },
            Some(&tokens.pub_token),
        ))
        .await;
    if missing.as_ref().map_or_else(|s| s.code(), |_| Code::Ok) != Code::NotFound {
        failures.push(format!("ResolveFatman of a missing fatman: {missing:?}"));
    }
    assert!(
        failures.is_empty(),
        "gRPC authorization matrix mismatches:\n{}",
        failures.join("\n")
    );
    // The REST view of the same tokens stays consistent: PUB's token opens no REST endpoint.
    let (status, _) = app.get("/api/v1/fatman", Some(&tokens.pub_token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

both_backends!(grpc_authorization_matrix, run);
