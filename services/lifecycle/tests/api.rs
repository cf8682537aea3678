//! The Lifecycle REST API end to end, each test on SQLite and on Postgres.

mod common;

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(
    health_and_info_answer_with_and_without_prefix,
    |app: TestApp| async move {
        for prefix in ["", "/lifecycle"] {
            let (status, body) = app.get(&format!("{prefix}/health"), None).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["database_connected"], true);
            assert_eq!(body["service"], "lifecycle");
            let (status, body) = app.get(&format!("{prefix}/api/v1/info"), None).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["auth_required"], true);
            assert_eq!(
                app.get(&format!("{prefix}/live"), None).await.0,
                StatusCode::OK
            );
            assert_eq!(
                app.get(&format!("{prefix}/ready"), None).await.1["ready"],
                true
            );
        }
        let metrics = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("lifecycle_database_connected 1"),
            "{metrics}"
        );
        assert!(metrics.contains("http_requests_total"), "{metrics}");
        let (status, body) = app.get("/api/v1/nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["type"], "EntityNotFound");
    }
);

both_backends!(
    registration_activation_and_login,
    |app: TestApp| async move {
        let creds = json!({"username": "alice@example.com", "password": "Blue-Whale-Song-7"});
        let (status, body) = app
            .post("/api/v1/users/register", None, creds.clone())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["is_active"], false);

        let (status, body) = app
            .post("/api/v1/users/register", None, creds.clone())
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["type"], "AlreadyExists");

        let (status, body) = app.post("/api/v1/users/login", None, creds.clone()).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "inactive users cannot log in: {body}"
        );

        // Their token (seen by an admin) is refused while inactive.
        let (_, profile) = app
            .get(
                "/api/v1/users/alice@example.com/profile",
                Some(&app.admin_token),
            )
            .await;
        let token = profile["token"].as_str().unwrap().to_string();
        assert_eq!(
            app.get("/api/v1/users/validate_user_auth", Some(&token))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );

        let (status, _) = app
            .call(
                Method::PATCH,
                "/api/v1/users/alice@example.com",
                Some(&app.admin_token),
                Some(json!({"is_active": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app.post("/api/v1/users/login", None, creds).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["token"], token,
            "login shows the same token the profile shows"
        );
        let (status, body) = app
            .get("/api/v1/users/validate_user_auth", Some(&token))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["username"], "alice@example.com");

        // POST profile is get-or-create: same subject, same token, no duplicate.
        let (status, again) = app
            .post(
                "/api/v1/users/alice@example.com/profile",
                Some(&app.admin_token),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again["token"], token);

        // New users get the default global permissions: no global deploy_fatman (changed rule,
        // issue 10: the original's four let any user deploy into anyone's family).
        let (_, perms) = app
            .get("/api/v1/auth/permissions", Some(&app.admin_token))
            .await;
        let mut scopes: Vec<&str> = perms
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["subject"] == "User: alice@example.com")
            .map(|p| p["scope"].as_str().unwrap())
            .collect();
        scopes.sort();
        assert_eq!(scopes, ["call_fatman", "deploy_new_family", "read_fatman"]);
    }
);

both_backends!(bad_registrations_store_nothing, |app: TestApp| async move {
    let cases = [
        (
            json!({"username": "bob@example.com", "password": "short"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "bob@example.com", "password": "12345678901"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "bob@example.com", "password": "password"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "bob", "password": "Blue-Whale-Song-7"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "bob@example.com"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "bob@example.com", "password": "Blue-Whale-Song-7", "admin": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!(["not", "an", "object"]), StatusCode::BAD_REQUEST),
    ];
    for (body, expected) in cases {
        let (status, resp) = app.post("/api/v1/users/register", None, body.clone()).await;
        assert_eq!(status, expected, "{body} -> {resp}");
        assert!(resp["error"].is_string(), "{resp}");
    }
    let resp = app
        .client
        .post(app.url("/api/v1/users/register"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("malformed JSON"),
        "{body}"
    );

    let huge = "x".repeat(2 * 1024 * 1024);
    let (status, body) = app
        .post(
            "/api/v1/users/register",
            None,
            json!({"username": "big@example.com", "password": huge}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    let (_, users) = app.get("/api/v1/users", Some(&app.admin_token)).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin"], "nothing was stored");
});

both_backends!(login_failures_are_rate_limited, |app: TestApp| async move {
    app.user("carol@example.com", true).await;
    let wrong = json!({"username": "carol@example.com", "password": "not-her-password"});
    for _ in 0..5 {
        let (status, body) = app.post("/api/v1/users/login", None, wrong.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(
            !body.to_string().contains("not-her-password"),
            "passwords never echo"
        );
    }
    let resp = app
        .client
        .post(app.url("/api/v1/users/login"))
        .json(&json!({"username": "carol@example.com", "password": "Secret-Passw0rd-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    // Other users are not locked out by carol's attacker.
    assert_eq!(
        app.post(
            "/api/v1/users/login",
            None,
            json!({"username": "admin", "password": common::ADMIN_PASSWORD})
        )
        .await
        .0,
        StatusCode::OK
    );
    // Unknown users answer like wrong passwords.
    let (status, body) = app
        .post(
            "/api/v1/users/login",
            None,
            json!({"username": "ghost@example.com", "password": "whatever-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "Unauthorized: wrong username or password");
});

both_backends!(bad_tokens_are_refused, |app: TestApp| async move {
    let (forged, _) = racetrack_auth::TokenSigner::new("some-other-key")
        .subject_token("x", "pub", racetrack_model::AuthSubjectType::Internal)
        .unwrap();
    for token in [
        forged.as_str(),
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
    ] {
        let (status, body) = app.get("/api/v1/fatman", Some(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(body["error"], "Unauthorized: invalid JWT token");
        assert_eq!(body["type"], "UnauthorizedError");
    }
    let (status, body) = app.get("/api/v1/fatman", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"],
        "Unauthorized: auth token not found in a header X-Racetrack-Auth"
    );

    // Correctly signed but never issued (or rotated away): unknown.
    let signer = racetrack_auth::TokenSigner::new(&app.auth_key);
    let (unknown, _) = signer
        .subject_token(
            "never-stored",
            "admin",
            racetrack_model::AuthSubjectType::User,
        )
        .unwrap();
    let (status, body) = app.get("/api/v1/fatman", Some(&unknown)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"],
        "Unauthorized: wrong credentials: token is unknown"
    );

    // Legacy header names still work.
    let resp = app
        .client
        .get(app.url("/api/v1/users/validate_user_auth"))
        .header("X-Racetrack-User-Auth", &app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Revoked and expired subjects.
    let token = app.user("dave@example.com", true).await;
    let (_, subjects) = app
        .get("/api/v1/auth/subjects", Some(&app.admin_token))
        .await;
    let dave = subjects
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "dave@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let access =
        |active: bool, expiry: Option<i64>| json!({"active": active, "expiry_time": expiry});
    let path = format!("/api/v1/auth/subjects/{dave}/access");
    app.call(
        Method::PUT,
        &path,
        Some(&app.admin_token),
        Some(access(false, None)),
    )
    .await;
    let (status, body) = app
        .get("/api/v1/users/validate_user_auth", Some(&token))
        .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (
            StatusCode::UNAUTHORIZED,
            "Unauthorized: subject access has been revoked"
        )
    );
    app.call(
        Method::PUT,
        &path,
        Some(&app.admin_token),
        Some(access(true, Some(1_000_000_000))),
    )
    .await;
    let (status, body) = app
        .get("/api/v1/users/validate_user_auth", Some(&token))
        .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (
            StatusCode::UNAUTHORIZED,
            "Unauthorized: subject access has expired"
        )
    );
    app.call(
        Method::PUT,
        &path,
        Some(&app.admin_token),
        Some(access(true, None)),
    )
    .await;
    assert_eq!(
        app.get("/api/v1/users/validate_user_auth", Some(&token))
            .await
            .0,
        StatusCode::OK
    );
});

both_backends!(
    tokens_are_stored_hashed_and_compatible,
    |app: TestApp| async move {
        use diesel::prelude::*;
        use racetrack_db::schema::registry_authtoken::dsl;
        let token = app.user("erin@example.com", true).await;
        let hashes: Vec<String> = dsl::registry_authtoken
            .select(dsl::token_hash)
            .load(&mut *app.db())
            .unwrap();
        assert!(!hashes.is_empty());
        for h in &hashes {
            assert_eq!(h.len(), 64);
            assert!(!token.contains(h.as_str()) && !h.contains(&token));
        }
        // The admin token the original would have issued for this AUTH_KEY works here.
        let original_admin = racetrack_auth::TokenSigner::new(&app.auth_key)
            .sign(&racetrack_auth::token::admin_claims("admin"))
            .unwrap();
        let (status, body) = app
            .get("/api/v1/users/validate_user_auth", Some(&original_admin))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["username"], "admin");
        assert_eq!(
            original_admin, app.admin_token,
            "admin login shows the original's admin token"
        );
        // Internal tokens are stored like every other token, with their service's scopes only
        // (changed rule: an unstored full_access token signed with AUTH_KEY used to pass).
        let forged = app.forged_internal_token("dashboard");
        assert_eq!(
            app.get("/api/v1/escs", Some(&forged)).await.0,
            StatusCode::UNAUTHORIZED
        );
        let dashboard = app
            .service_token(racetrack_model::InternalService::Dashboard)
            .await;
        assert_eq!(
            app.get("/api/v1/escs", Some(&dashboard)).await.0,
            StatusCode::OK
        );
        let pub_token = app
            .service_token(racetrack_model::InternalService::Pub)
            .await;
        assert_eq!(
            app.get("/api/v1/escs", Some(&pub_token)).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.get("/api/v1/fatman", Some(&pub_token)).await.0,
            StatusCode::FORBIDDEN
        );
    }
);

both_backends!(
    esc_lifecycle_and_token_rotation,
    |app: TestApp| async move {
        let admin = Some(app.admin_token.as_str());
        app.seed_fatman("adder", "1.0.0", None).await;
        let (status, esc) = app
            .post(
                "/api/v1/escs",
                admin,
                json!({"name": "billing", "id": "esc-billing"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(esc, json!({"name": "billing", "id": "esc-billing"}));
        let (status, body) = app
            .post(
                "/api/v1/escs",
                admin,
                json!({"name": "again", "id": "esc-billing"}),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (StatusCode::CONFLICT, "ESC already exists")
        );
        let (status, _) = app
            .post("/api/v1/escs", admin, json!({"name": "", "id": "x"}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = app
            .post(
                "/api/v1/escs",
                admin,
                json!({"name": "n", "id": "../../etc"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        let (_, t) = app.get("/api/v1/auth/token/esc/esc-billing", admin).await;
        let token = t["token"].as_str().unwrap().to_string();
        let check = "/api/v1/auth/allowed/fatman_endpoint/adder/latest/scope/call_fatman/endpoint/api/v1/perform";
        let (status, body) = app.get(check, Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({"error": "Unauthorized: no permission to do this operation"}),
            "no type, no details"
        );

        let (status, _) = app
            .post(
                "/api/v1/auth/allow/esc/esc-billing/fatman/adder/scope/call_fatman",
                admin,
                json!(null),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let resp = app
            .client
            .get(app.url(check))
            .header("X-Racetrack-Auth", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert!(resp.text().await.unwrap().is_empty());
        assert_eq!(
            app.post(
                "/api/v1/auth/allow/esc/nope/fatman/adder/scope/call_fatman",
                admin,
                json!(null)
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.post(
                "/api/v1/auth/allow/esc/esc-billing/fatman/nope/scope/call_fatman",
                admin,
                json!(null)
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.post(
                "/api/v1/auth/allow/esc/esc-billing/fatman/adder/scope/everything",
                admin,
                json!(null)
            )
            .await
            .0,
            StatusCode::UNPROCESSABLE_ENTITY
        );

        // Zero-downtime rotation: add a second token, switch, revoke the first one.
        let (_, subjects) = app.get("/api/v1/auth/subjects", admin).await;
        let subject = subjects
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "esc-billing")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, second) = app
            .post(
                &format!("/api/v1/auth/subjects/{subject}/tokens"),
                admin,
                json!({"label": "rotation"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let second_token = second["token"].as_str().unwrap().to_string();
        assert_eq!(app.get(check, Some(&token)).await.0, StatusCode::ACCEPTED);
        assert_eq!(
            app.get(check, Some(&second_token)).await.0,
            StatusCode::ACCEPTED
        );
        let (_, tokens) = app
            .get(&format!("/api/v1/auth/subjects/{subject}/tokens"), admin)
            .await;
        let tokens = tokens.as_array().unwrap();
        assert_eq!(tokens.len(), 2);
        assert!(
            tokens.iter().all(|t| t.get("token").is_none()),
            "listing never shows tokens"
        );
        let first_id = tokens[0]["id"].as_str().unwrap();
        assert_eq!(
            app.delete(&format!("/api/v1/auth/tokens/{first_id}"), admin)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            app.get(check, Some(&token)).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.get(check, Some(&second_token)).await.0,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            app.delete(&format!("/api/v1/auth/tokens/{first_id}"), admin)
                .await
                .0,
            StatusCode::NOT_FOUND
        );

        // Reset: every old token dies at once.
        let (status, reset) = app
            .post("/api/v1/escs/esc-billing/token/reset", admin, json!(null))
            .await;
        assert_eq!(status, StatusCode::OK);
        let new_token = reset["token"].as_str().unwrap();
        assert_eq!(
            app.get(check, Some(&second_token)).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.get(check, Some(new_token)).await.0,
            StatusCode::ACCEPTED
        );
        let (_, shown) = app.get("/api/v1/auth/token/esc/esc-billing", admin).await;
        assert_eq!(shown["token"], new_token);

        // Rename, then delete: the caller token dies with the ESC.
        let (status, renamed) = app
            .call(
                Method::PUT,
                "/api/v1/escs/esc-billing",
                admin,
                Some(json!({"name": "billing-2"})),
            )
            .await;
        assert_eq!(
            (status, renamed["name"].as_str().unwrap()),
            (StatusCode::OK, "billing-2")
        );
        assert_eq!(
            app.delete("/api/v1/escs/esc-billing", admin).await.0,
            StatusCode::OK
        );
        assert_eq!(
            app.get(check, Some(new_token)).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.get("/api/v1/escs/esc-billing", admin).await.0,
            StatusCode::NOT_FOUND
        );
    }
);

both_backends!(
    legacy_caller_tokens_authenticate_when_stored,
    |app: TestApp| async move {
        let admin = Some(app.admin_token.as_str());
        app.seed_fatman("adder", "1.0.0", None).await;
        let (esc_id, _) = app.esc("old-consumer").await;
        app.post(
            &format!("/api/v1/auth/allow/esc/{esc_id}/fatman/adder/scope/call_fatman"),
            admin,
            json!(null),
        )
        .await;
        let legacy = racetrack_auth::token::legacy_caller_token(&esc_id, "old-api-key");
        let check = "/api/v1/auth/allowed/fatman/adder/1.0.0/scope/call_fatman";
        assert_eq!(
            app.get(check, Some(&legacy)).await.0,
            StatusCode::UNAUTHORIZED,
            "not stored yet"
        );
        {
            // What importing the original's ESC credentials stores: the digest only.
            use racetrack_db::repo::auth as repo;
            let mut conn = app.db();
            let (subject, _) =
                repo::get_or_create_subject(&mut conn, repo::SubjectKey::Esc(&esc_id)).unwrap();
            let claims = racetrack_auth::Claims {
                seed: "old-api-key".into(),
                subject: esc_id.clone(),
                subject_type: "esc".into(),
                scopes: Default::default(),
            };
            repo::insert_token(
                &mut conn,
                &racetrack_db::models::AuthToken {
                    id: racetrack_db::new_id(),
                    auth_subject_id: subject.id,
                    token_hash: racetrack_auth::token::digest(&claims),
                    public_seed: None,
                    label: "imported".into(),
                    create_time: racetrack_db::now(),
                    expiry_time: None,
                    last_use_time: None,
                },
            )
            .unwrap();
        }
        assert_eq!(app.get(check, Some(&legacy)).await.0, StatusCode::ACCEPTED);
    }
);

both_backends!(
    fatmen_listing_versions_and_families,
    |app: TestApp| async move {
        let admin = Some(app.admin_token.as_str());
        for v in ["1.0.0", "1.2.0", "1.10.0", "2.0.0-dev"] {
            app.seed_fatman("adder", v, None).await;
        }
        app.seed_fatman("badder", "0.1.0", None).await;
        let (status, list) = app.get("/api/v1/fatman", admin).await;
        assert_eq!(status, StatusCode::OK);
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 5);
        let first = &list[0];
        for key in [
            "name",
            "version",
            "status",
            "create_time",
            "update_time",
            "id",
            "manifest",
            "internal_name",
            "pub_url",
            "error",
            "image_tag",
            "deployed_by",
            "last_call_time",
            "infrastructure_target",
        ] {
            assert!(first.get(key).is_some(), "FatmanDto has {key}");
        }
        assert!(first["manifest"]["git"]["remote"].is_string());
        assert!(
            first["manifest"].get("public_endpoints").is_some(),
            "all manifest keys present"
        );

        let (status, f) = app.get("/api/v1/fatman/adder/latest", admin).await;
        assert_eq!(
            (status, f["version"].as_str().unwrap()),
            (StatusCode::OK, "1.10.0")
        );
        assert!(f.get("pub_url").is_none(), "details are the reduced shape");
        assert_eq!(
            app.get("/api/v1/fatman/adder/1.x", admin).await.1["version"],
            "1.10.0"
        );
        assert_eq!(
            app.get("/lifecycle/api/v1/fatman/adder/2.0.0-dev", admin)
                .await
                .1["version"],
            "2.0.0-dev"
        );
        let (status, body) = app.get("/api/v1/fatman/adder/3.x", admin).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (
                StatusCode::NOT_FOUND,
                "Not found any stable version matching pattern: 3.x"
            )
        );
        let (status, body) = app.get("/api/v1/fatman/nobody/latest", admin).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (StatusCode::NOT_FOUND, "No fatman named nobody")
        );

        let (_, families) = app.get("/api/v1/fatman_family", admin).await;
        let names: Vec<&str> = families
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["adder", "badder"]);

        // A family-scoped read permission (the original crashed here) lists just that family.
        let (esc_id, esc_token) = app.esc("reader").await;
        app.post(
            &format!("/api/v1/auth/allow/esc/{esc_id}/fatman/badder/scope/read_fatman"),
            admin,
            json!(null),
        )
        .await;
        let (status, families) = app.get("/api/v1/fatman_family", Some(&esc_token)).await;
        assert_eq!(status, StatusCode::OK, "{families}");
        assert_eq!(families.as_array().unwrap().len(), 1);
        assert_eq!(families[0]["name"], "badder");
        let (_, visible) = app.get("/api/v1/fatman", Some(&esc_token)).await;
        assert_eq!(visible.as_array().unwrap().len(), 1);
        assert_eq!(
            app.get("/api/v1/fatman/adder/latest", Some(&esc_token))
                .await
                .0,
            StatusCode::FORBIDDEN
        );

        let (status, graph) = app.get("/api/v1/fatman_graph", admin).await;
        assert_eq!(status, StatusCode::OK);
        assert!(graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == format!("esc-{esc_id}")));
        assert!(graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == "fatman-family-adder"));
    }
);

both_backends!(
    invalid_stored_version_is_a_400_on_alias,
    |app: TestApp| async move {
        app.seed_fatman("odd", "1.0.0", None).await;
        app.seed_fatman("odd", "not-semver", None).await;
        let (status, body) = app
            .get("/api/v1/fatman/odd/latest", Some(&app.admin_token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["error"],
            "Version 'not-semver' doesn't match SemVer format 'X.Y.Z[-label]'"
        );
        assert_eq!(
            app.get("/api/v1/fatman/odd/not-semver", Some(&app.admin_token))
                .await
                .0,
            StatusCode::OK
        );
    }
);

both_backends!(
    deleting_fatmen_trashes_and_audits,
    |app: TestApp| async move {
        let owner = app.user("owner@example.com", true).await;
        let other = app.user("other@example.com", true).await;
        app.seed_fatman("adder", "1.0.0", Some("owner@example.com"))
            .await;
        app.seed_fatman("subtractor", "1.0.0", Some("other@example.com"))
            .await;

        // The original matched fatman-level rows by version only: owner could delete subtractor 1.0.0.
        let (status, body) = app
            .delete("/api/v1/fatman/subtractor/1.0.0", Some(&owner))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("delete_fatman"),
            "{body}"
        );
        assert_eq!(
            app.delete("/api/v1/fatman/adder/1.0.0", Some(&other))
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.delete("/api/v1/fatman/adder/latest", Some(&owner))
                .await
                .0,
            StatusCode::FORBIDDEN,
            "no alias on delete"
        );

        let (status, body) = app.delete("/api/v1/fatman/adder/1.0.0", Some(&owner)).await;
        assert_eq!((status, body), (StatusCode::OK, Value::Null));
        assert_eq!(
            app.get("/api/v1/fatman/adder/1.0.0", Some(&app.admin_token))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.delete("/api/v1/fatman/adder/1.0.0", Some(&app.admin_token))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert!(racetrack_db::repo::fatmen::is_trashed(&mut app.db(), "adder", "1.0.0").unwrap());

        let (_, events) = app.get("/api/v1/audit/user_events", Some(&owner)).await;
        let events = events.as_array().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["event_type"], "fatman_deleted");
        assert_eq!(events[0]["username_executor"], "owner@example.com");
        assert_eq!(
            events[0]["description"],
            "Fatman adder 1.0.0 (owned by owner@example.com) deleted by owner@example.com"
        );

        app.delete("/api/v1/fatman/subtractor/1.0.0", Some(&app.admin_token))
            .await;
        let (_, all) = app.get("/api/v1/audit/events", Some(&owner)).await;
        assert_eq!(all.as_array().unwrap().len(), 2);
        assert_eq!(all[0]["fatman_name"], "subtractor", "newest first");
        let (_, mine) = app.get("/api/v1/audit/user_events", Some(&other)).await;
        assert_eq!(
            mine.as_array().unwrap().len(),
            1,
            "the owner sees deletions of their fatmen"
        );
        let (_, fam) = app
            .get("/api/v1/audit/events/fatman/adder", Some(&other))
            .await;
        assert_eq!(fam.as_array().unwrap().len(), 1);
        let (_, exact) = app
            .get("/api/v1/audit/events/fatman/adder/latest", Some(&other))
            .await;
        assert_eq!(
            exact.as_array().unwrap().len(),
            0,
            "audit filters are literal"
        );
        assert_eq!(
            app.get("/api/v1/audit/user_events/fatman/adder/1.0.0", Some(&owner))
                .await
                .1
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
);

both_backends!(
    permissions_crud_and_endpoint_checks,
    |app: TestApp| async move {
        let admin = Some(app.admin_token.as_str());
        app.seed_fatman("adder", "1.0.0", None).await;
        let family_token = app.seed_fatman("caller", "1.0.0", None).await;
        let (_, subjects) = app.get("/api/v1/auth/subjects", admin).await;
        let family_subject = subjects
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["display"] == "Fatman Family: caller")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, perm) = app
        .post("/api/v1/auth/permissions", admin, json!({"auth_subject_id": family_subject, "scope": "call_fatman", "fatman_family": "adder", "endpoint": "api/v1/perform/"}))
        .await;
        assert_eq!(status, StatusCode::OK, "{perm}");
        assert_eq!(perm["endpoint"], "/api/v1/perform");
        let base = "/api/v1/auth/allowed/fatman_endpoint/adder/1.0.0/scope/call_fatman/endpoint";
        assert_eq!(
            app.get(&format!("{base}/api/v1/perform"), Some(&family_token))
                .await
                .0,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            app.get(&format!("{base}/api/v1/perform/"), Some(&family_token))
                .await
                .0,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            app.get(&format!("{base}/api/v1/other"), Some(&family_token))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        // One way only: adder may not call caller.
        let (_, adder_subjects) = app.get("/api/v1/auth/subjects", admin).await;
        assert!(adder_subjects
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["display"] == "Fatman Family: adder"));

        // Idempotent grant, then revoke.
        let (_, again) = app
        .post("/api/v1/auth/permissions", admin, json!({"auth_subject_id": family_subject, "scope": "call_fatman", "fatman_family": "adder", "endpoint": "/api/v1/perform"}))
        .await;
        assert_eq!(again["id"], perm["id"]);
        let id = perm["id"].as_i64().unwrap();
        assert_eq!(
            app.delete(&format!("/api/v1/auth/permissions/{id}"), admin)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            app.get(&format!("{base}/api/v1/perform"), Some(&family_token))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.delete(&format!("/api/v1/auth/permissions/{id}"), admin)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.delete("/api/v1/auth/permissions/not-a-number", admin)
                .await
                .0,
            StatusCode::UNPROCESSABLE_ENTITY
        );

        for bad in [
            json!({"auth_subject_id": family_subject, "scope": "root"}),
            json!({"auth_subject_id": "missing", "scope": "read_fatman"}),
            json!({"auth_subject_id": family_subject, "scope": "read_fatman", "fatman_name": "adder"}),
            json!({"auth_subject_id": family_subject, "scope": "read_fatman", "fatman_family": "nope"}),
        ] {
            let (status, body) = app
                .post("/api/v1/auth/permissions", admin, bad.clone())
                .await;
            assert!(
                status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::NOT_FOUND,
                "{bad} -> {status} {body}"
            );
        }

        // Family-to-family grant through the original endpoint.
        assert_eq!(
            app.post(
                "/api/v1/auth/allow/fatman_family/caller/fatman/adder/scope/call_fatman",
                admin,
                json!(null)
            )
            .await
            .0,
            StatusCode::OK
        );
        assert_eq!(
            app.get(&format!("{base}/api/v1/anything"), Some(&family_token))
                .await
                .0,
            StatusCode::ACCEPTED
        );
        let (_, graph) = app.get("/api/v1/fatman_graph", admin).await;
        assert_eq!(
            graph["edges"],
            json!([{"from_id": "fatman-family-caller", "to_id": "fatman-family-adder"}])
        );
    }
);

both_backends!(user_admin_and_passwords, |app: TestApp| async move {
    let admin = Some(app.admin_token.as_str());
    let token = app.user("frank@example.com", true).await;
    let (status, user) = app.get("/api/v1/users/frank@example.com", admin).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        user.get("password").is_none(),
        "hashes never leave the server"
    );
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/v1/users/me/password",
            Some(&token),
            Some(json!({"old_password": "wrong-one-123", "new_password": "Another-Passw0rd-9"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/v1/users/me/password",
            Some(&token),
            Some(
                json!({"old_password": "Secret-Passw0rd-42", "new_password": "Another-Passw0rd-9"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.login("frank@example.com", "Another-Passw0rd-9").await;
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/v1/users/frank@example.com/password",
            admin,
            Some(json!({"password": "123"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/v1/users/frank@example.com/password",
            admin,
            Some(json!({"password": "Reset-By-Admin-77"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.login("frank@example.com", "Reset-By-Admin-77").await;
    assert_eq!(
        app.delete("/api/v1/users/admin", admin).await.0,
        StatusCode::BAD_REQUEST,
        "no self-deletion"
    );
    assert_eq!(
        app.delete("/api/v1/users/frank@example.com", admin).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/users/validate_user_auth", Some(&token))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/users/nobody@example.com", admin).await.0,
        StatusCode::NOT_FOUND
    );
});

#[tokio::test]
async fn large_build_contexts_reach_the_deploy_handler_and_oversized_ones_get_json_413() {
    let Some(app) =
        TestApp::spawn_with(Backend::Sqlite, &[("MAX_DEPLOY_BODY_BYTES", "3000000")]).await
    else {
        return;
    };
    let manifest = json!({"name": "big", "version": "0.0.1", "owner_email": "a@b.c", "lang": "python3:latest",
        "git": {"remote": "https://github.com/x/y"}, "python": {"entrypoint_path": "a.py", "entrypoint_class": "A"}});
    // 1 MB of base64 that is not a gzipped tar: refused for what it is, not for its size.
    let context = "A".repeat(1_000_000);
    let (status, body) = app
        .post(
            "/api/v1/deploy",
            Some(&app.admin_token),
            json!({"manifest": manifest, "build_context": context}),
        )
        .await;
    assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let context = "A".repeat(3_100_000);
    let (status, body) = app
        .post(
            "/api/v1/deploy",
            Some(&app.admin_token),
            json!({"manifest": manifest, "build_context": context}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("larger than")),
        "{body}"
    );
}

/// Lifecycle prepared on SQLite in `dir` with the given TLS files (not yet listening).
async fn tls_lifecycle(
    dir: &std::path::Path,
    db: &str,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::sync::Arc<lifecycle::state::AppState> {
    let env = [
        ("HTTP_ADDR", "127.0.0.1:0".to_string()),
        ("GRPC_ADDR", "127.0.0.1:0".to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join(db).display()),
        ),
        ("AUTH_KEY", "tls-test-key".to_string()),
        ("TLS_CERT_FILE", cert.display().to_string()),
        ("TLS_KEY_FILE", key.display().to_string()),
    ];
    let config = lifecycle::config::Config::from_lookup(|k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    tokio::task::spawn_blocking(move || lifecycle::prepare(config))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn rest_api_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = racetrack_tls::testing::self_signed(dir.path());
    let state = tls_lifecycle(dir.path(), "rt.db", &cert, &key).await;
    let running = lifecycle::start(state).expect("lifecycle starts with TLS");
    let addr = running.addr;
    tokio::spawn(running.server);
    let request = "GET /api/v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let resp = racetrack_tls::testing::https_raw(addr, &cert, request)
        .await
        .expect("TLS handshake");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"auth_required\":true"), "{resp}");
    // A certificate that is not there: a clear start-up error, not a panic.
    let missing = std::path::Path::new("/nonexistent/cert.pem");
    let state = tls_lifecycle(dir.path(), "rt2.db", missing, &key).await;
    let err = lifecycle::start(state)
        .err()
        .expect("missing certificate refused")
        .to_string();
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}
