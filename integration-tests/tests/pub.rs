//! PUB in front of real fatmen: lifecycle + image-builder + PUB binaries, Redis, the Docker engine.

mod harness;

use std::time::{Duration, Instant};

use harness::*;
use reqwest::Method;
use serde_json::{json, Value};

fn prerequisites() -> bool {
    deploy_prerequisites() && require("Redis at 127.0.0.1:6379", redis_ok())
}

/// POSTs `body` to a fatman endpoint through PUB.
async fn call(
    pub_url: &str,
    fatman: &str,
    endpoint: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{pub_url}/fatman/{fatman}/latest{endpoint}"))
        .json(&body);
    if let Some(t) = token {
        req = req.header("X-Racetrack-Auth", t);
    }
    let resp = req.send().await.expect("pub reachable");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls until the call answers `want`; returns how long that took (the change's propagation).
async fn until_status(
    pub_url: &str,
    fatman: &str,
    endpoint: &str,
    token: Option<&str>,
    want: u16,
) -> Duration {
    let start = Instant::now();
    // The auxiliary /ping takes no arguments.
    let payload = if endpoint == "/api/v1/ping" {
        json!({})
    } else {
        json!({"numbers": [40, 2]})
    };
    loop {
        let (status, body) = call(pub_url, fatman, endpoint, token, payload.clone()).await;
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {status} instead of {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ok(p: &Platform, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, v) = p.call(method, path, body).await;
    assert_eq!(status, 200, "{path}: {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_let_in_exactly_as_permitted() {
    if !prerequisites() {
        return;
    }
    let mut p = Platform::start().await;
    let pub_url = p.start_pub(&[]).await;
    let sample = workspace_root().join("sample/python-chain");
    let a = unique("chain-a");
    let b = unique("chain-b");
    for name in [&a, &b] {
        let d = p
            .deploy(json!({"manifest": sample_manifest("python-chain", name, "0.0.1"), "build_context": build_context(&sample)}))
            .await;
        assert_eq!(d["status"], "done", "{d}");
    }
    let max_propagation = |d: Duration, what: &str| {
        println!("{what}: {d:?}");
        assert!(d <= Duration::from_secs(1), "{what} took {d:?}");
    };

    // An ESC: refused without permission, let in once allowed.
    let esc = ok(
        &p,
        Method::POST,
        "/api/v1/escs",
        Some(json!({"name": "consumer"})),
    )
    .await;
    let esc_id = esc["id"].as_str().unwrap().to_string();
    let esc_token = ok(
        &p,
        Method::GET,
        &format!("/api/v1/auth/token/esc/{esc_id}"),
        None,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = call(
        &pub_url,
        &a,
        "/api/v1/perform",
        Some(&esc_token),
        json!({"numbers": [40, 2]}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    ok(
        &p,
        Method::POST,
        &format!("/api/v1/auth/allow/esc/{esc_id}/fatman/{a}/scope/call_fatman"),
        None,
    )
    .await;
    max_propagation(
        until_status(&pub_url, &a, "/api/v1/perform", Some(&esc_token), 200).await,
        "ESC grant",
    );
    assert_eq!(
        call(
            &pub_url,
            &a,
            "/api/v1/perform",
            Some(&esc_token),
            json!({"numbers": [40, 2]})
        )
        .await,
        (200, json!(42))
    );
    // No token, forged token: 401.
    assert_eq!(
        call(&pub_url, &a, "/api/v1/perform", None, json!({}))
            .await
            .0,
        401
    );
    assert_eq!(
        call(
            &pub_url,
            &a,
            "/api/v1/perform",
            Some("eyJ0.forged.x"),
            json!({})
        )
        .await
        .0,
        401
    );

    // Token reset: the old token is refused within a second, the new one works.
    let reset = ok(
        &p,
        Method::POST,
        &format!("/api/v1/escs/{esc_id}/token/reset"),
        None,
    )
    .await;
    let new_token = reset["token"].as_str().unwrap().to_string();
    max_propagation(
        until_status(&pub_url, &a, "/api/v1/perform", Some(&esc_token), 401).await,
        "ESC token reset",
    );
    assert_eq!(
        call(
            &pub_url,
            &a,
            "/api/v1/perform",
            Some(&new_token),
            json!({"numbers": [1, 2]})
        )
        .await,
        (200, json!(3))
    );

    // Public endpoint: requested by the manifest, open only once an admin approves, and only it.
    assert_eq!(
        call(&pub_url, &a, "/api/v1/ping", None, json!({})).await.0,
        401
    );
    ok(
        &p,
        Method::PUT,
        &format!("/api/v1/fatman/{a}/0.0.1/public-endpoints"),
        Some(json!({"endpoint": "/api/v1/ping", "active": true})),
    )
    .await;
    max_propagation(
        until_status(&pub_url, &a, "/api/v1/ping", None, 200).await,
        "public endpoint approval",
    );
    assert_eq!(
        call(&pub_url, &a, "/api/v1/ping", None, json!({})).await,
        (200, json!("pong"))
    );
    assert_eq!(
        call(&pub_url, &a, "/api/v1/perform", None, json!({}))
            .await
            .0,
        401
    );

    // Fatman to fatman: family A may call B once allowed; B may not call A.
    ok(
        &p,
        Method::POST,
        &format!("/api/v1/auth/allow/esc/{esc_id}/fatman/{b}/scope/call_fatman"),
        None,
    )
    .await;
    let via = |target: &str| json!({"numbers": [40, 2], "target": target});
    let (status, body) = call(&pub_url, &a, "/api/v1/perform", Some(&new_token), via(&b)).await;
    assert_eq!(status, 500, "A may not call B yet: {body}");
    assert!(body.to_string().contains("403"), "{body}");
    ok(
        &p,
        Method::POST,
        &format!("/api/v1/auth/allow/fatman_family/{a}/fatman/{b}/scope/call_fatman"),
        None,
    )
    .await;
    let start = Instant::now();
    loop {
        let (status, body) = call(&pub_url, &a, "/api/v1/perform", Some(&new_token), via(&b)).await;
        if status == 200 {
            assert_eq!(body, json!(42));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "A → B still refused: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = call(&pub_url, &b, "/api/v1/perform", Some(&new_token), via(&a)).await;
    assert_eq!(status, 500, "B → A must be refused: {body}");
    assert!(body.to_string().contains("403"), "{body}");

    // A user: default call permission works; revoking it takes effect within a second.
    let user = format!("{}@example.com", unique("user"));
    let password = "Pub-Test-Passw0rd!";
    let (status, _) = p
        .call(
            Method::POST,
            "/api/v1/users/register",
            Some(json!({"username": user, "password": password})),
        )
        .await;
    assert_eq!(status, 201);
    ok(
        &p,
        Method::PATCH,
        &format!("/api/v1/users/{user}"),
        Some(json!({"is_active": true})),
    )
    .await;
    let login: Value = p
        .client
        .post(format!("{}/api/v1/users/login", p.lifecycle_url))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_token = login["token"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &pub_url,
            &b,
            "/api/v1/perform",
            Some(&user_token),
            json!({"numbers": [2, 3]})
        )
        .await,
        (200, json!(5))
    );
    let permissions = ok(&p, Method::GET, "/api/v1/auth/permissions", None).await;
    let call_permission = permissions
        .as_array()
        .unwrap()
        .iter()
        .find(|perm| perm["subject"] == format!("User: {user}") && perm["scope"] == "call_fatman")
        .unwrap_or_else(|| panic!("no call_fatman permission for {user}: {permissions}"))
        .clone();
    ok(
        &p,
        Method::DELETE,
        &format!("/api/v1/auth/permissions/{}", call_permission["id"]),
        None,
    )
    .await;
    max_propagation(
        until_status(&pub_url, &b, "/api/v1/perform", Some(&user_token), 403).await,
        "permission removal",
    );

    // Deleting the ESC: its token is refused at once.
    ok(&p, Method::DELETE, &format!("/api/v1/escs/{esc_id}"), None).await;
    max_propagation(
        until_status(&pub_url, &a, "/api/v1/perform", Some(&new_token), 401).await,
        "ESC deletion",
    );

    for name in [&a, &b] {
        ok(
            &p,
            Method::DELETE,
            &format!("/api/v1/fatman/{name}/0.0.1"),
            None,
        )
        .await;
    }
    // A deleted fatman is gone from PUB too.
    let (status, body) = call(&pub_url, &a, "/api/v1/ping", None, json!({})).await;
    assert_eq!(status, 404, "{body}");
}
