//! Lifecycle's `Dashboard` gRPC API (`proto/dashboard.proto`) through a real Lifecycle gRPC
//! server: accounts and activation, the user's own tokens, admin-only RPCs, manifests, ESCs,
//! permissions and the graph, audit pages, deployments, public endpoint requests, redeploys and
//! followed runtime logs (on a fake infrastructure target).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestApp};
use racetrack_infra::{DeployedFatman, FatmanSpec, InfraError, InfrastructureTarget};
use racetrack_proto::dashboard as pb;
use racetrack_proto::dashboard::dashboard_client::DashboardClient;
use reqwest::StatusCode;
use tonic::transport::Channel;
use tonic::Code;

const PASSWORD: &str = "Secret-Passw0rd-42";

async fn client(app: &TestApp) -> DashboardClient<Channel> {
    DashboardClient::connect(app.grpc_url.clone())
        .await
        .expect("gRPC connects")
}

fn req<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some(token) = token {
        req.metadata_mut()
            .insert("x-racetrack-auth", token.parse().unwrap());
    }
    req
}

fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    r.err().map_or(Code::Ok, |s| s.code())
}

fn fatman_ref(name: &str, version: &str) -> pb::FatmanRef {
    pb::FatmanRef {
        name: name.into(),
        version: version.into(),
    }
}

fn manifest_yaml(name: &str, version: &str, owner: &str) -> String {
    format!(
        "name: {name}\nowner_email: {owner}\nversion: {version}\nlang: python3:latest\ngit:\n  remote: https://example.com/repo.git\n"
    )
}

async fn subject_id(
    c: &mut DashboardClient<Channel>,
    admin: &str,
    kind: &str,
    name: &str,
) -> String {
    let subjects = c
        .list_subjects(req(pb::Empty {}, Some(admin)))
        .await
        .unwrap()
        .into_inner()
        .subjects;
    subjects
        .iter()
        .find(|s| s.kind == kind && s.name == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {subjects:?}"))
        .id
        .clone()
}

both_backends!(
    registration_activation_and_login,
    |app: TestApp| async move {
        let mut c = client(&app).await;
        let username = "carol@example.com";
        let registered = c
            .register(req(
                pb::Credentials {
                    username: username.into(),
                    password: PASSWORD.into(),
                },
                None,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(registered.username, username);
        assert!(!registered.is_active);
        assert!(!registered.date_joined.is_empty());

        let login = |password: &str| pb::LoginRequest {
            username: username.into(),
            password: password.into(),
            client_address: "203.0.113.7".into(),
        };
        let refused = c.login(req(login(PASSWORD), None)).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        assert!(
            refused.message().contains("not active"),
            "a readable reason: {}",
            refused.message()
        );
        let wrong = c
            .login(req(login("Wrong-Passw0rd-42"), None))
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");

        // Only an admin activates.
        let activate = pb::UserUpdate {
            username: username.into(),
            is_active: Some(true),
            ..Default::default()
        };
        assert_eq!(
            code(c.update_user(req(activate.clone(), None)).await),
            Code::Unauthenticated
        );
        let updated = c
            .update_user(req(activate, Some(&app.admin_token)))
            .await
            .unwrap()
            .into_inner();
        assert!(updated.is_active && !updated.is_staff);

        let reply = c
            .login(req(login(PASSWORD), None))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.user.as_ref().unwrap().username, username);
        assert!(!reply.user.as_ref().unwrap().last_login.is_empty());
        let me = c
            .who_am_i(req(pb::Empty {}, Some(&reply.token)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(me.username, username);
        assert!(me.is_active);

        // The same token works on REST.
        let (status, body) = app
            .get("/api/v1/users/validate_user_auth", Some(&reply.token))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        assert_eq!(
            code(c.who_am_i(req(pb::Empty {}, None)).await),
            Code::Unauthenticated
        );
        assert_eq!(
            code(c.who_am_i(req(pb::Empty {}, Some("not-a-token"))).await),
            Code::Unauthenticated
        );

        // Changing one's own password: the old one no longer logs in.
        c.change_password(req(
            pb::ChangePasswordRequest {
                old_password: PASSWORD.into(),
                new_password: "Another-Passw0rd-43".into(),
            },
            Some(&reply.token),
        ))
        .await
        .unwrap();
        assert_eq!(
            code(c.login(req(login(PASSWORD), None)).await),
            Code::Unauthenticated
        );
        c.login(req(login("Another-Passw0rd-43"), None))
            .await
            .unwrap();
    }
);

both_backends!(
    plain_users_are_refused_admin_rpcs,
    |app: TestApp| async move {
        let mut c = client(&app).await;
        let user = app.user("alice@example.com", true).await;
        let t = Some(user.as_str());
        let codes = vec![
            code(c.list_users(req(pb::Empty {}, t)).await),
            code(
                c.update_user(req(
                    pb::UserUpdate {
                        username: "alice@example.com".into(),
                        is_superuser: Some(true),
                        ..Default::default()
                    },
                    t,
                ))
                .await,
            ),
            code(
                c.set_user_password(req(
                    pb::SetUserPasswordRequest {
                        username: "admin".into(),
                        password: "Hijacked-Passw0rd-1".into(),
                    },
                    t,
                ))
                .await,
            ),
            code(
                c.update_manifest(req(
                    pb::UpdateManifestRequest {
                        name: "adder".into(),
                        version: "1.0.0".into(),
                        manifest_yaml: manifest_yaml("adder", "1.0.0", "x@example.com"),
                    },
                    t,
                ))
                .await,
            ),
            code(
                c.list_deployments(req(pb::DeploymentQuery::default(), t))
                    .await,
            ),
            code(c.list_escs(req(pb::Empty {}, t)).await),
            code(
                c.create_esc(req(pb::CreateEscRequest { name: "x".into() }, t))
                    .await,
            ),
            code(
                c.reset_esc_token(req(pb::EscRef { id: "x".into() }, t))
                    .await,
            ),
            code(c.delete_esc(req(pb::EscRef { id: "x".into() }, t)).await),
            code(c.list_permissions(req(pb::Empty {}, t)).await),
            code(c.list_subjects(req(pb::Empty {}, t)).await),
            code(
                c.grant_permission(req(
                    pb::GrantPermissionRequest {
                        auth_subject_id: "x".into(),
                        scope: "full_access".into(),
                        ..Default::default()
                    },
                    t,
                ))
                .await,
            ),
            code(
                c.revoke_permission(req(pb::PermissionRef { id: "1".into() }, t))
                    .await,
            ),
            code(c.list_public_endpoint_requests(req(pb::Empty {}, t)).await),
            code(
                c.set_public_endpoint_request(req(
                    pb::SetPublicEndpointRequestRequest {
                        id: "x".into(),
                        active: true,
                    },
                    t,
                ))
                .await,
            ),
        ];
        assert_eq!(codes, vec![Code::PermissionDenied; codes.len()]);
        // The admin password is unchanged.
        app.login("admin", common::ADMIN_PASSWORD).await;

        // Without the default global read_fatman, alice sees only what she deployed.
        app.seed_fatman("adder", "1.0.0", Some("alice@example.com"))
            .await;
        app.seed_fatman("secret", "1.0.0", Some("admin")).await;
        let all = c
            .list_fatmen(req(pb::Empty {}, t))
            .await
            .unwrap()
            .into_inner()
            .fatmen;
        assert_eq!(all.len(), 2, "the default read_fatman is global: {all:?}");
        let admin = app.admin_token.clone();
        let alice = subject_id(&mut c, &admin, "user", "alice@example.com").await;
        let global_read = c
            .list_permissions(req(pb::Empty {}, Some(&admin)))
            .await
            .unwrap()
            .into_inner()
            .permissions
            .into_iter()
            .find(|p| {
                p.auth_subject_id == alice
                    && p.scope == "read_fatman"
                    && p.fatman_family.is_empty()
                    && p.fatman_name.is_empty()
            })
            .expect("alice's global read_fatman");
        c.revoke_permission(req(
            pb::PermissionRef {
                id: global_read.id.clone(),
            },
            Some(&admin),
        ))
        .await
        .unwrap();
        let seen = c
            .list_fatmen(req(pb::Empty {}, t))
            .await
            .unwrap()
            .into_inner()
            .fatmen;
        let names: Vec<&str> = seen.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["adder"]);
        assert_eq!(seen[0].owner_email, "owner@example.com");
        assert_eq!(seen[0].job_type, "python3:latest");
        assert!(seen[0].manifest_yaml.contains("name: adder"));
        assert_eq!(
            code(c.get_fatman(req(fatman_ref("secret", "1.0.0"), t)).await),
            Code::PermissionDenied
        );
        assert_eq!(
            code(c.get_fatman(req(fatman_ref("adder", "latest"), t)).await),
            Code::Ok
        );
        assert_eq!(
            code(c.delete_fatman(req(fatman_ref("secret", "1.0.0"), t)).await),
            Code::PermissionDenied
        );
        // The graph shows only what she may read.
        let graph = c
            .get_graph(req(pb::Empty {}, t))
            .await
            .unwrap()
            .into_inner();
        assert!(graph.nodes.iter().any(|n| n.id == "family:adder"));
        assert!(
            !graph.nodes.iter().any(|n| n.id.contains("secret")),
            "{graph:?}"
        );
    }
);

both_backends!(own_tokens, |app: TestApp| async move {
    let mut c = client(&app).await;
    let alice = app.user("alice@example.com", true).await;
    let bob = app.user("bob@example.com", true).await;

    let added = c
        .add_own_token(req(pb::Empty {}, Some(&alice)))
        .await
        .unwrap()
        .into_inner();
    let added_id = added.info.as_ref().unwrap().id.clone();
    assert!(!added.token.is_empty() && added.token != alice);
    assert!(added.info.as_ref().unwrap().active);
    c.who_am_i(req(pb::Empty {}, Some(&added.token)))
        .await
        .unwrap();

    let listed = c
        .list_own_tokens(req(pb::Empty {}, Some(&alice)))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().any(|t| t.id == added_id));
    let shown = format!("{listed:?}");
    assert!(!shown.contains(&added.token) && !shown.contains(&alice));

    // Bob's token ids are not alice's to revoke.
    let bobs = c
        .list_own_tokens(req(pb::Empty {}, Some(&bob)))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(bobs.len(), 1);
    assert!(bobs.iter().all(|t| t.id != added_id));
    let refused = c
        .revoke_own_token(req(
            pb::TokenRef {
                id: bobs[0].id.clone(),
            },
            Some(&alice),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    c.who_am_i(req(pb::Empty {}, Some(&bob))).await.unwrap();
    assert_eq!(
        code(
            c.revoke_own_token(req(
                pb::TokenRef {
                    id: "no-such-token".into()
                },
                Some(&alice)
            ))
            .await
        ),
        Code::NotFound
    );

    // Her own: the revoked token stops working, the other one does not.
    c.revoke_own_token(req(pb::TokenRef { id: added_id }, Some(&alice)))
        .await
        .unwrap();
    assert_eq!(
        code(c.who_am_i(req(pb::Empty {}, Some(&added.token))).await),
        Code::Unauthenticated
    );
    c.who_am_i(req(pb::Empty {}, Some(&alice))).await.unwrap();

    // Regenerate: every old token dies, the one new token works.
    c.add_own_token(req(pb::Empty {}, Some(&alice)))
        .await
        .unwrap();
    let fresh = c
        .regenerate_own_token(req(pb::Empty {}, Some(&alice)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        code(c.who_am_i(req(pb::Empty {}, Some(&alice))).await),
        Code::Unauthenticated
    );
    let after = c
        .list_own_tokens(req(pb::Empty {}, Some(&fresh.token)))
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, fresh.info.unwrap().id);

    // ESC tokens have no account and no own tokens here.
    let (_, esc_token) = app.esc("billing").await;
    assert_eq!(
        code(c.list_own_tokens(req(pb::Empty {}, Some(&esc_token))).await),
        Code::PermissionDenied
    );
});

both_backends!(update_manifest, |app: TestApp| async move {
    let mut c = client(&app).await;
    let admin = app.admin_token.clone();
    app.seed_fatman("adder", "1.0.0", Some("admin")).await;
    let before = c
        .get_fatman(req(fatman_ref("adder", "1.0.0"), Some(&admin)))
        .await
        .unwrap()
        .into_inner();

    let update = |yaml: String| {
        req(
            pb::UpdateManifestRequest {
                name: "adder".into(),
                version: "1.0.0".into(),
                manifest_yaml: yaml,
            },
            Some(&admin),
        )
    };
    let refusals = [
        ("name: [adder\n".to_string(), "invalid YAML"),
        (
            "name: adder\nowner_email: a@example.com\nversion: 1.0.0\n".to_string(),
            "git",
        ),
        (
            format!(
                "{}unknown_key: 1\n",
                manifest_yaml("adder", "1.0.0", "a@example.com")
            ),
            "unknown_key",
        ),
        (
            manifest_yaml("adder", "2.0.0", "a@example.com"),
            "not adder 1.0.0",
        ),
        (
            manifest_yaml("other", "1.0.0", "a@example.com"),
            "not adder 1.0.0",
        ),
    ];
    for (yaml, expected) in refusals {
        let err = c.update_manifest(update(yaml.clone())).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{yaml}: {err:?}");
        assert!(
            err.message().contains(expected),
            "{yaml}: the validator's message, got {}",
            err.message()
        );
    }
    let kept = c
        .get_fatman(req(fatman_ref("adder", "1.0.0"), Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.manifest_yaml, before.manifest_yaml);
    assert_eq!(kept.owner_email, "owner@example.com");

    let yaml = format!(
        "# edited in the dashboard\n{}labels:\n  team: numbers\n",
        manifest_yaml("adder", "1.0.0", "new-owner@example.com")
    );
    let updated = c
        .update_manifest(update(yaml.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.manifest_yaml, yaml, "stored verbatim");
    assert_eq!(updated.owner_email, "new-owner@example.com");
    assert_eq!(
        updated.labels.get("team").map(String::as_str),
        Some("numbers")
    );
    // REST reads the same stored manifest (its normalised form).
    let (status, body) = app.get("/api/v1/fatman/adder/1.0.0", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["manifest"]["owner_email"], "new-owner@example.com");

    assert_eq!(
        code(
            c.update_manifest(req(
                pb::UpdateManifestRequest {
                    name: "nobody".into(),
                    version: "1.0.0".into(),
                    manifest_yaml: manifest_yaml("nobody", "1.0.0", "a@example.com"),
                },
                Some(&admin),
            ))
            .await
        ),
        Code::NotFound
    );

    let page = c
        .list_audit_events(req(
            pb::AuditQuery {
                fatman_name: "adder".into(),
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total, 1, "{page:?}");
    assert_eq!(page.events[0].event_type, "fatman_manifest_updated");
    assert_eq!(page.events[0].username_executor, "admin");
});

both_backends!(escs_permissions_and_graph, |app: TestApp| async move {
    let mut c = client(&app).await;
    let admin = app.admin_token.clone();
    app.seed_fatman("adder", "1.0.0", Some("admin")).await;

    let created = c
        .create_esc(req(
            pb::CreateEscRequest {
                name: "billing".into(),
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    let esc = created.esc.clone().unwrap();
    assert_eq!(esc.name, "billing");
    assert!(!created.token.is_empty());
    // A working ESC token: it authenticates on REST, and may not call adder yet.
    let (status, body) = app
        .get("/api/v1/users/validate_user_auth", Some(&created.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .get(
            "/api/v1/auth/allowed/fatman/adder/1.0.0/scope/call_fatman",
            Some(&created.token),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the original's contract: 401"
    );
    let listed = c
        .list_escs(req(pb::Empty {}, Some(&admin)))
        .await
        .unwrap()
        .into_inner()
        .escs;
    assert_eq!(listed, vec![esc.clone()]);

    let subject = subject_id(&mut c, &admin, "esc", "billing").await;
    let granted = c
        .grant_permission(req(
            pb::GrantPermissionRequest {
                auth_subject_id: subject.clone(),
                scope: "call_fatman".into(),
                fatman_family: "adder".into(),
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(granted.scope, "call_fatman");
    assert_eq!(granted.fatman_family, "adder");
    assert_eq!(granted.auth_subject_id, subject);
    assert!(granted.subject.contains("billing"), "{granted:?}");
    let (status, _) = app
        .get(
            "/api/v1/auth/allowed/fatman/adder/1.0.0/scope/call_fatman",
            Some(&created.token),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let graph = c
        .get_graph(req(pb::Empty {}, Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    let esc_node = format!("esc:{}", esc.id);
    let has_edge = |g: &pb::Graph, from: &str, to: &str, kind: &str| {
        g.edges
            .iter()
            .any(|e| e.from == from && e.to == to && e.kind == kind)
    };
    assert!(
        has_edge(&graph, &esc_node, "family:adder", "calls"),
        "{graph:?}"
    );
    assert!(has_edge(
        &graph,
        "family:adder",
        "fatman:adder@1.0.0",
        "version"
    ));
    assert!(has_edge(&graph, "user:admin", "fatman:adder@1.0.0", "owns"));
    // The deployer's fatman-level call permission; no edges from global ones.
    assert!(has_edge(&graph, "user:admin", "family:adder", "calls"));
    assert_eq!(
        graph
            .edges
            .iter()
            .filter(|e| e.kind == "calls" && e.from.starts_with("user:"))
            .count(),
        1,
        "{graph:?}"
    );
    for id in [
        &esc_node,
        "family:adder",
        "fatman:adder@1.0.0",
        "user:admin",
    ] {
        assert!(
            graph.nodes.iter().any(|n| n.id == id),
            "node {id}: {graph:?}"
        );
    }

    c.revoke_permission(req(
        pb::PermissionRef {
            id: granted.id.clone(),
        },
        Some(&admin),
    ))
    .await
    .unwrap();
    let permissions = c
        .list_permissions(req(pb::Empty {}, Some(&admin)))
        .await
        .unwrap()
        .into_inner()
        .permissions;
    assert!(permissions.iter().all(|p| p.id != granted.id));
    let graph = c
        .get_graph(req(pb::Empty {}, Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert!(!has_edge(&graph, &esc_node, "family:adder", "calls"));
    assert_eq!(
        code(
            c.revoke_permission(req(pb::PermissionRef { id: granted.id }, Some(&admin)))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            c.grant_permission(req(
                pb::GrantPermissionRequest {
                    auth_subject_id: subject.clone(),
                    scope: "no_such_scope".into(),
                    ..Default::default()
                },
                Some(&admin),
            ))
            .await
        ),
        Code::InvalidArgument
    );

    // A reset token replaces the old one.
    let reset = c
        .reset_esc_token(req(pb::EscRef { id: esc.id.clone() }, Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(reset.token, created.token);
    let (status, _) = app
        .get("/api/v1/users/validate_user_auth", Some(&created.token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    c.delete_esc(req(pb::EscRef { id: esc.id.clone() }, Some(&admin)))
        .await
        .unwrap();
    assert_eq!(
        code(
            c.delete_esc(req(pb::EscRef { id: esc.id }, Some(&admin)))
                .await
        ),
        Code::NotFound
    );
});

both_backends!(audit_pages_and_deployments, |app: TestApp| async move {
    let mut c = client(&app).await;
    let admin = app.admin_token.clone();
    app.seed_fatman("adder", "1.0.0", Some("admin")).await;
    for n in 0..7 {
        c.update_manifest(req(
            pb::UpdateManifestRequest {
                name: "adder".into(),
                version: "1.0.0".into(),
                manifest_yaml: manifest_yaml("adder", "1.0.0", &format!("o{n}@example.com")),
            },
            Some(&admin),
        ))
        .await
        .unwrap();
    }
    let page = |page: u32, page_size: u32| {
        req(
            pb::AuditQuery {
                fatman_name: "adder".into(),
                fatman_version: "1.0.0".into(),
                page,
                page_size,
                ..Default::default()
            },
            Some(&admin),
        )
    };
    let first = c.list_audit_events(page(0, 3)).await.unwrap().into_inner();
    assert_eq!((first.page, first.page_size, first.total), (1, 3, 7));
    assert_eq!(first.events.len(), 3);
    let third = c.list_audit_events(page(3, 3)).await.unwrap().into_inner();
    assert_eq!((third.page, third.events.len(), third.total), (3, 1, 7));
    let beyond = c.list_audit_events(page(9, 3)).await.unwrap().into_inner();
    assert!(beyond.events.is_empty());
    assert_eq!(beyond.total, 7);
    let mut ids: Vec<String> = Vec::new();
    for p in 1..=3 {
        ids.extend(
            c.list_audit_events(page(p, 3))
                .await
                .unwrap()
                .into_inner()
                .events
                .into_iter()
                .map(|e| e.id),
        );
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7, "pages neither overlap nor skip");
    let defaults = c.list_audit_events(page(0, 0)).await.unwrap().into_inner();
    assert_eq!((defaults.page_size, defaults.events.len()), (50, 7));
    let capped = c
        .list_audit_events(page(1, 100_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capped.page_size, 500);
    let other = c
        .list_audit_events(req(
            pb::AuditQuery {
                fatman_name: "subtractor".into(),
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(other.total, 0);
    // A user's own events: alice did none of these.
    let alice = app.user("alice@example.com", true).await;
    let mine = c
        .list_audit_events(req(
            pb::AuditQuery {
                related_to_me: true,
                ..Default::default()
            },
            Some(&alice),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.total, 0);
    // ESC tokens do not read the log.
    let (_, esc_token) = app.esc("billing").await;
    assert_eq!(
        code(
            c.list_audit_events(req(pb::AuditQuery::default(), Some(&esc_token)))
                .await
        ),
        Code::PermissionDenied
    );

    // Deployments, newest first.
    let (deployed, built) = app.seed_deployed_then_built("adder", "1.0.0");
    app.seed_deployed_then_built("subtractor", "2.0.0");
    let all = c
        .list_deployments(req(pb::DeploymentQuery::default(), Some(&admin)))
        .await
        .unwrap()
        .into_inner()
        .deployments;
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].create_time >= w[1].create_time));
    let adder = c
        .list_deployments(req(
            pb::DeploymentQuery {
                fatman_name: "adder".into(),
                fatman_version: "1.0.0".into(),
                limit: 0,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .deployments;
    let images: Vec<&str> = adder.iter().map(|d| d.image_name.as_str()).collect();
    assert_eq!(images, [built.as_str(), deployed.as_str()]);
    assert_eq!(adder[0].status, "done");
    let one = c
        .list_deployments(req(
            pb::DeploymentQuery {
                fatman_name: "adder".into(),
                limit: 1,
                ..Default::default()
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .deployments;
    assert_eq!(one.len(), 1);
    let got = c
        .get_deployment(req(
            pb::DeploymentRef {
                id: one[0].id.clone(),
            },
            Some(&alice),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, one[0]);
    assert_eq!(
        code(
            c.get_deployment(req(pb::DeploymentRef { id: "nope".into() }, Some(&admin)))
                .await
        ),
        Code::NotFound
    );
});

both_backends!(public_endpoint_requests, |app: TestApp| async move {
    let mut c = client(&app).await;
    let admin = app.admin_token.clone();
    app.seed_fatman("adder", "1.0.0", Some("admin")).await;
    {
        let mut conn = app.db();
        let f = racetrack_db::repo::fatmen::find(&mut conn, "adder", "1.0.0")
            .unwrap()
            .unwrap();
        racetrack_db::repo::fatmen::request_public_endpoint(&mut conn, &f.id, "/api/v1/perform")
            .unwrap();
    }
    let list = c
        .list_public_endpoint_requests(req(pb::Empty {}, Some(&admin)))
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].fatman_name.as_str(),
            list[0].endpoint.as_str(),
            list[0].active
        ),
        ("adder", "/api/v1/perform", false)
    );
    let approved = c
        .set_public_endpoint_request(req(
            pb::SetPublicEndpointRequestRequest {
                id: list[0].id.clone(),
                active: true,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(approved.active);
    let (status, body) = app
        .get("/api/v1/fatman/adder/1.0.0/public-endpoints", Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["endpoint"], "/api/v1/perform");
    let withdrawn = c
        .set_public_endpoint_request(req(
            pb::SetPublicEndpointRequestRequest {
                id: list[0].id.clone(),
                active: false,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!withdrawn.active);
    assert_eq!(
        code(
            c.set_public_endpoint_request(req(
                pb::SetPublicEndpointRequestRequest {
                    id: "nope".into(),
                    active: true,
                },
                Some(&admin),
            ))
            .await
        ),
        Code::NotFound
    );
});

/// Serves the log lines the test appends; runs nothing.
#[derive(Default)]
struct FakeTarget {
    lines: Mutex<Vec<String>>,
    reads: AtomicUsize,
}

impl FakeTarget {
    fn write(&self, line: &str) {
        self.lines.lock().unwrap().push(line.to_string());
    }
}

#[async_trait::async_trait]
impl InfrastructureTarget for FakeTarget {
    fn name(&self) -> &str {
        "fake"
    }

    async fn deploy(&self, _spec: &FatmanSpec) -> Result<DeployedFatman, InfraError> {
        Err(InfraError::Invalid("the fake target runs nothing".into()))
    }

    async fn delete(&self, _name: &str, _version: &str) -> Result<(), InfraError> {
        Ok(())
    }

    async fn exists(&self, _name: &str, _version: &str) -> Result<bool, InfraError> {
        Ok(false)
    }

    async fn list(&self) -> Result<Vec<DeployedFatman>, InfraError> {
        Ok(Vec::new())
    }

    async fn logs(&self, name: &str, _version: &str, tail: usize) -> Result<String, InfraError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if name != "adder" {
            return Err(InfraError::NotFound(format!("no container for {name}")));
        }
        let lines = self.lines.lock().unwrap();
        let start = if tail == 0 {
            0
        } else {
            lines.len().saturating_sub(tail)
        };
        Ok(lines[start..].iter().map(|l| format!("{l}\n")).collect())
    }
}

async fn on_fake_target(app: &TestApp, name: &str, version: &str) {
    app.seed_fatman(name, version, Some("admin")).await;
    let mut conn = app.db();
    let mut f = racetrack_db::repo::fatmen::find(&mut conn, name, version)
        .unwrap()
        .unwrap();
    f.infrastructure_target = Some("fake".into());
    racetrack_db::repo::fatmen::update(&mut conn, &f).unwrap();
}

async fn next_lines(stream: &mut tonic::Streaming<pb::LogChunk>) -> String {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a chunk within 10 s")
        .expect("no stream error")
        .expect("the stream goes on")
        .lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_runtime_logs_and_redeploys_on_a_fake_target() {
    let fake = Arc::new(FakeTarget::default());
    let target: Arc<dyn InfrastructureTarget> = fake.clone();
    let Some(app) =
        TestApp::spawn_with_targets(Backend::Sqlite, &[], vec![("fake".into(), target)]).await
    else {
        return;
    };
    let mut c = client(&app).await;
    let admin = app.admin_token.clone();
    on_fake_target(&app, "adder", "1.0.0").await;
    for n in 1..=5 {
        fake.write(&format!("old line {n}"));
    }

    let logs = c
        .runtime_logs(req(
            pb::LogsRequest {
                name: "adder".into(),
                version: "latest".into(),
                tail: 2,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .logs;
    assert_eq!(logs, "old line 4\nold line 5\n");

    // Callers who may not read the fatman may not follow its log either.
    let (_, esc_token) = app.esc("billing").await;
    let refused = c
        .follow_runtime_logs(req(
            pb::LogsRequest {
                name: "adder".into(),
                version: "1.0.0".into(),
                tail: 2,
            },
            Some(&esc_token),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    let mut stream = c
        .follow_runtime_logs(req(
            pb::LogsRequest {
                name: "adder".into(),
                version: "1.0.0".into(),
                tail: 2,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_lines(&mut stream).await, "old line 4\nold line 5\n");
    fake.write("new line 1");
    fake.write("new line 2");
    let mut got = String::new();
    while got.lines().count() < 2 {
        got.push_str(&next_lines(&mut stream).await);
    }
    assert_eq!(got, "new line 1\nnew line 2\n");
    fake.write("new line 3");
    assert_eq!(next_lines(&mut stream).await, "new line 3\n");

    // Once the client drops the stream, the follower stops reading.
    drop(stream);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let reads = fake.reads.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fake.reads.load(Ordering::SeqCst), reads, "still polling");

    // A fatman whose container is gone: the stream ends.
    on_fake_target(&app, "gone", "1.0.0").await;
    let mut ended = c
        .follow_runtime_logs(req(
            pb::LogsRequest {
                name: "gone".into(),
                version: "1.0.0".into(),
                tail: 0,
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    let end = tokio::time::timeout(Duration::from_secs(10), ended.message())
        .await
        .expect("ends at once");
    assert!(matches!(end, Ok(None)), "{end:?}");

    // Redeploy answers the deployment at once; it fails in the background (no image-builder),
    // and the dashboard sees that by polling.
    let started = c
        .redeploy_fatman(req(fatman_ref("adder", "1.0.0"), Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.status, "in_progress");
    assert_eq!(
        (
            started.fatman_name.as_str(),
            started.infrastructure_target.as_str()
        ),
        ("adder", "fake")
    );
    let finished = wait_for_deployment(&mut c, &admin, &started.id).await;
    assert_eq!(finished.status, "failed", "{finished:?}");
    assert!(!finished.error.is_empty());

    // Reprovision needs an image a deployment provisioned; the fake target then refuses it.
    assert_eq!(
        code(
            c.reprovision_fatman(req(fatman_ref("adder", "1.0.0"), Some(&admin)))
                .await
        ),
        Code::InvalidArgument
    );
    {
        let mut conn = app.db();
        let now = racetrack_db::now();
        racetrack_db::repo::deployments::insert(
            &mut conn,
            &racetrack_db::models::Deployment {
                id: racetrack_db::new_id(),
                status: racetrack_model::DeploymentStatus::Done,
                create_time: now,
                update_time: now,
                manifest: String::new(),
                fatman_name: "adder".into(),
                fatman_version: "1.0.0".into(),
                error: None,
                deployed_by: Some("admin".into()),
                build_logs: None,
                phase: None,
                image_name: Some("127.0.0.1:5000/fake/adder:1".into()),
                infrastructure_target: Some("fake".into()),
            },
        )
        .unwrap();
    }
    let started = c
        .reprovision_fatman(req(fatman_ref("adder", "1.0.0"), Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.status, "in_progress");
    let finished = wait_for_deployment(&mut c, &admin, &started.id).await;
    assert_eq!(finished.status, "failed", "{finished:?}");
    assert!(
        finished.error.contains("runs nothing"),
        "the target's reason: {finished:?}"
    );

    // A user without deploy rights on it cannot redeploy.
    let alice = app.user("alice@example.com", true).await;
    assert_eq!(
        code(
            c.redeploy_fatman(req(fatman_ref("adder", "1.0.0"), Some(&alice)))
                .await
        ),
        Code::PermissionDenied
    );
}

async fn wait_for_deployment(
    c: &mut DashboardClient<Channel>,
    token: &str,
    id: &str,
) -> pb::Deployment {
    for _ in 0..150 {
        let d = c
            .get_deployment(req(pb::DeploymentRef { id: id.into() }, Some(token)))
            .await
            .unwrap()
            .into_inner();
        if d.status != "in_progress" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("deployment {id} still in progress after 30 s");
}

/// Login throttling counts the browser's address the dashboard passes on: one address is cut
/// off (RESOURCE_EXHAUSTED), another still gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttle_counts_the_client_address() {
    let Some(app) =
        TestApp::spawn_with(Backend::Sqlite, &[("LOGIN_MAX_FAILURES_PER_ADDRESS", "3")]).await
    else {
        return;
    };
    let mut c = client(&app).await;
    let login = |username: &str, password: &str, address: &str| {
        req(
            pb::LoginRequest {
                username: username.into(),
                password: password.into(),
                client_address: address.into(),
            },
            None,
        )
    };
    for n in 0..3 {
        let user = format!("nobody{n}@example.com");
        assert_eq!(
            code(
                c.login(login(&user, "Wrong-Passw0rd-1", "198.51.100.1"))
                    .await
            ),
            Code::Unauthenticated
        );
    }
    let throttled = c
        .login(login("admin", common::ADMIN_PASSWORD, "198.51.100.1"))
        .await
        .unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted, "{throttled:?}");
    assert!(throttled.message().contains("try again"), "{throttled:?}");
    let reply = c
        .login(login("admin", common::ADMIN_PASSWORD, "198.51.100.2"))
        .await
        .unwrap()
        .into_inner();
    assert!(reply.user.unwrap().is_superuser);
}
