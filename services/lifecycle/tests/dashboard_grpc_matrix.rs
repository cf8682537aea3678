//! Every administration RPC of `proto/dashboard.proto` × the thirteen kinds of token → the
//! expected code: the dashboard's API lets in exactly who the REST API lets in
//! (`call_admin_api`: admins and the dashboard's internal token).

mod common;
#[path = "common/token_kinds.rs"]
mod token_kinds;

use common::{Backend, TestApp};
use racetrack_model::InternalService;
use racetrack_proto::dashboard::dashboard_client::DashboardClient;
use racetrack_proto::dashboard::{DeploymentQuery, Empty};
use token_kinds::{request, revoked_pub_token, Tokens, ROLES};
use tonic::Code;

async fn run(app: TestApp) {
    let inactive = app.user("inactive@example.com", false).await;
    let user = app.user("user@example.com", true).await;
    let fatman = app.seed_fatman("caller", "1.0.0", None).await;
    let (_, esc) = app.esc("consumer").await;
    let tokens = Tokens {
        inactive,
        user,
        admin: app.admin_token.clone(),
        esc,
        fatman,
        pub_token: app.service_token(InternalService::Pub).await,
        dashboard: app.service_token(InternalService::Dashboard).await,
        image_builder: app.service_token(InternalService::ImageBuilder).await,
        supervisor: app
            .service_token(InternalService::LifecycleSupervisor)
            .await,
        revoked: revoked_pub_token(&app).await,
        forged: app.forged_internal_token("pub"),
    };
    let mut c = DashboardClient::connect(app.grpc_url.clone())
        .await
        .expect("gRPC connects");
    use Code::{Ok as Allowed, PermissionDenied as Denied, Unauthenticated as Unauth};
    // Columns: anonymous, inactive user, user, admin, ESC, fatman family, pub, dashboard,
    // image-builder, supervisor, revoked pub, forged internal, garbage.
    let expected: [Code; 13] = [
        Unauth, Unauth, Denied, Allowed, Denied, Denied, Denied, Allowed, Denied, Denied, Unauth,
        Unauth, Unauth,
    ];
    let code = |r: Result<Code, tonic::Status>| r.unwrap_or_else(|s| s.code());
    let mut failures = Vec::new();
    for (role, want) in ROLES.iter().zip(expected) {
        let t = tokens.of(*role);
        let got = [
            (
                "ListUsers",
                code(c.list_users(request(Empty {}, t)).await.map(|_| Code::Ok)),
            ),
            (
                "ListEscs",
                code(c.list_escs(request(Empty {}, t)).await.map(|_| Code::Ok)),
            ),
            (
                "ListDeployments",
                code(
                    c.list_deployments(request(DeploymentQuery::default(), t))
                        .await
                        .map(|_| Code::Ok),
                ),
            ),
            (
                "ListPermissions",
                code(
                    c.list_permissions(request(Empty {}, t))
                        .await
                        .map(|_| Code::Ok),
                ),
            ),
            (
                "ListSubjects",
                code(
                    c.list_subjects(request(Empty {}, t))
                        .await
                        .map(|_| Code::Ok),
                ),
            ),
            (
                "ListPublicEndpointRequests",
                code(
                    c.list_public_endpoint_requests(request(Empty {}, t))
                        .await
                        .map(|_| Code::Ok),
                ),
            ),
        ];
        for (rpc, got) in got {
            if got != want {
                failures.push(format!("{rpc} as {role:?}: expected {want:?}, got {got:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "dashboard gRPC authorization matrix mismatches:\n{}",
        failures.join("\n")
    );
}

both_backends!(dashboard_grpc_authorization_matrix, run);
