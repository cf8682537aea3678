//! The dashboard over plain HTTP on the real platform: headers, cookies, CSRF, who may open what,
//! Lifecycle's errors on the page, and live changes reaching another replica through Redis.

mod harness;

use std::time::{Duration, Instant};

use harness::dashboard::WebSession;
use harness::*;
use serde_json::json;

const CSP_MUST: [&str; 3] = [
    "script-src 'self'",
    "frame-ancestors 'none'",
    "default-src 'self'",
];

async fn headers_of(url: &str) -> reqwest::header::HeaderMap {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
        .headers()
        .clone()
}

/// A user made through the REST API and activated by the admin.
async fn active_user(p: &Platform) -> (String, String) {
    let username = format!("{}@example.com", unique("http-user"));
    let password = "Http-User-Passw0rd";
    let (status, body) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/users/register",
            Some(json!({"username": username, "password": password})),
        )
        .await;
    assert!(status == 200 || status == 201, "register: {status} {body}");
    let (status, body) = p
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{username}"),
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(status, 200, "activate: {body}");
    (username, password.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cookies_csrf_headers_and_errors() {
    if !require("Redis on 127.0.0.1:6379", redis_ok()) {
        return;
    }
    let mut p = Platform::start().await;
    let dash = p.start_dashboard("http://127.0.0.1:1/pub").await;

    // Security headers on pages, redirects, static files and unknown paths alike.
    for path in [
        "/dashboard/accounts/login",
        "/dashboard/",
        "/dashboard/static/app.js",
        "/dashboard/no-such-page",
    ] {
        let h = headers_of(&format!("{dash}{path}")).await;
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for must in CSP_MUST {
            assert!(csp.contains(must), "{path}: CSP {csp:?} lacks {must}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
    }
    let (status, location, _) = WebSession::new(&dash).get("/dashboard/portfolio").await;
    assert_eq!(status, 303);
    assert_eq!(
        location,
        "/dashboard/accounts/login?next=%2Fdashboard%2Fportfolio"
    );

    // Sign-in without the form's CSRF token is refused before the password is even checked.
    let mut anon = WebSession::new(&dash);
    anon.get("/dashboard/accounts/login").await;
    let (status, _, body) = anon
        .post_form(
            "/dashboard/accounts/login",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("csrf_token", "forged"),
            ],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    assert!(anon.cookie("X-Racetrack-Auth").is_none());

    // A wrong password: the form again, with the username kept and Lifecycle's words.
    let (status, _, body) = anon
        .post_form(
            "/dashboard/accounts/login",
            &[("username", "admin"), ("password", "not-the-password")],
        )
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("wrong username or password"), "{body}");
    assert!(
        body.contains("value=\"admin\""),
        "the username was not kept: {body}"
    );

    // A plain user: signed in, gets the PUB cookie (HttpOnly, SameSite=Lax), no admin pages.
    let (user, password) = active_user(&p).await;
    let mut s = WebSession::new(&dash);
    s.get("/dashboard/accounts/login").await;
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Read the Set-Cookie attributes of a real sign-in directly.
    let login_page = raw
        .get(format!("{dash}/dashboard/accounts/login"))
        .send()
        .await
        .unwrap();
    let session_cookie = login_page
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = login_page.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let signed = raw
        .post(format!("{dash}/dashboard/accounts/login"))
        .header("Cookie", &session_cookie)
        .form(&[
            ("username", user.as_str()),
            ("password", password.as_str()),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let auth_cookie = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("X-Racetrack-Auth="))
        .expect("the PUB cookie is set at sign-in")
        .to_string();
    assert!(auth_cookie.contains("HttpOnly"), "{auth_cookie}");
    assert!(auth_cookie.contains("SameSite=Lax"), "{auth_cookie}");
    assert!(auth_cookie.contains("Path=/"), "{auth_cookie}");
    s.sign_in(&user, &password).await;
    let (status, _, body) = s.get("/dashboard/administration").await;
    assert_eq!(
        status, 403,
        "a plain user opened the administration: {body}"
    );
    let (status, _, body) = s.get("/dashboard/profile").await;
    assert_eq!(status, 200);
    assert!(body.contains(&user), "{body}");

    // Sign out removes both the session and the PUB cookie.
    let (status, _, _) = s.post_form("/dashboard/accounts/logout", &[]).await;
    assert_eq!(status, 303);
    assert!(
        s.cookie("X-Racetrack-Auth").is_none(),
        "PUB cookie left after sign-out"
    );
    let (status, _, _) = s.get("/dashboard/profile").await;
    assert_eq!(status, 303, "still signed in after signing out");

    // Lifecycle down: the page says so in words, not a blank page or a stack trace.
    let mut admin = WebSession::new(&dash);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let idx = p
        .services
        .iter()
        .position(|s| s.name == "lifecycle")
        .unwrap();
    drop(p.services.remove(idx));
    let (status, _, body) = admin.get("/dashboard/").await;
    assert!(
        body.contains("Lifecycle is unreachable"),
        "{status}: {body}"
    );
    assert!(
        body.contains("<nav"),
        "the error is not inside the page: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_on_one_replica_reaches_a_page_open_on_another() {
    if !deploy_prerequisites() || !require("Redis on 127.0.0.1:6379", redis_ok()) {
        return;
    }
    let mut p = Platform::start().await;
    let name = unique("live");
    let sample = workspace_root().join("sample/python-class");
    let d = p
        .deploy(json!({"manifest": sample_manifest("python-class", &name, "0.0.1"), "build_context": build_context(&sample)}))
        .await;
    assert_eq!(d["status"], "done", "{d}");
    let dash_a = p.start_dashboard("http://127.0.0.1:1/pub").await;
    let dash_b = p.start_dashboard("http://127.0.0.1:1/pub").await;
    let mut a = WebSession::new(&dash_a);
    a.sign_in("admin", ADMIN_PASSWORD).await;
    let mut b = WebSession::new(&dash_b);
    b.sign_in("admin", ADMIN_PASSWORD).await;

    // Replica B's fatmen page listens; replica A deletes the fatman.
    let stream = b.open_stream("/dashboard/api/events").await;
    assert_eq!(stream.status(), 200);
    assert!(stream
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = stream;
    let (status, _, answer) = a
        .post_action(&format!("/dashboard/api/delete-fatman/{name}/0.0.1"), true)
        .await;
    assert!(
        status == 200 || status == 204,
        "delete through replica A: {status} {answer}"
    );
    let mut seen = String::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        match tokio::time::timeout(Duration::from_secs(1), stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) => break,
            Err(_) => {}
        }
        if removed_in(&seen, &name) {
            return;
        }
    }
    panic!("replica B's stream never reported {name} removed; it sent:\n{seen}");
}

/// Whether an `event: fatmen` in the SSE text lists `name` among the removed rows.
fn removed_in(sse: &str, name: &str) -> bool {
    sse.split("\n\n").any(|event| {
        let mut lines = event.lines();
        if !lines.any(|l| l.trim() == "event: fatmen") {
            return false;
        }
        let data: String = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .collect();
        serde_json::from_str::<serde_json::Value>(&data).is_ok_and(|v| {
            v["removed"]
                .as_array()
                .is_some_and(|rows| rows.iter().any(|r| r["name"] == name))
        })
    })
}
