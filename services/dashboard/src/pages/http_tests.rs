//! The pages of this directory through HTTP, with Lifecycle unreachable (its server side is not
//! here): sign-in and CSRF checks come first, Lifecycle's failure shows inside the page or as a
//! JSON error, never as a blank page or a panic.

use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{Cookie, Key};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};

use crate::config::Config;
use crate::session::{self, SessionUser};
use crate::AppState;

const KEY: &str = "0123456789abcdef0123456789abcdef-test-key";

fn state() -> web::Data<AppState> {
    let config = Config::from_lookup(racetrack_config::lookup_in(&[
        ("SECRET_KEY", KEY),
        // Nothing listens on port 1: every call fails as "unreachable".
        ("LIFECYCLE_GRPC_URL", "http://127.0.0.1:1"),
        ("LIFECYCLE_TIMEOUT", "2"),
    ]))
    .unwrap();
    web::Data::new(AppState::new(config).unwrap())
}

/// Signs a test user in without Lifecycle (the real sign-in asks it for the token).
async fn test_sign_in(session: actix_session::Session) -> HttpResponse {
    session::sign_in(
        &session,
        SessionUser {
            username: "alice@example.com".into(),
            token: "not-a-real-token".into(),
            is_staff: false,
            is_superuser: false,
            expires: chrono::Utc::now().timestamp() + 3600,
        },
    )
    .unwrap();
    HttpResponse::Ok().body(session::csrf_token(&session))
}

/// The dashboard's pages under `/dashboard` with sessions, plus a test-only sign-in route.
macro_rules! app {
    () => {
        test::init_service(
            App::new()
                .wrap(
                    SessionMiddleware::builder(
                        CookieSessionStore::default(),
                        Key::derive_from(KEY.as_bytes()),
                    )
                    .cookie_name(session::SESSION_COOKIE.into())
                    .cookie_secure(false)
                    .build(),
                )
                .app_data(state())
                .route("/test/sign-in", web::get().to(test_sign_in))
                .service(web::scope("/dashboard").configure(super::routes)),
        )
        .await
    };
}

/// The session cookie and the CSRF token of a signed-in test user.
macro_rules! signed_in {
    ($app:expr) => {{
        let resp = test::call_service(
            $app,
            test::TestRequest::get().uri("/test/sign-in").to_request(),
        )
        .await;
        let cookie: Cookie<'static> = resp
            .response()
            .cookies()
            .find(|c| c.name() == session::SESSION_COOKIE)
            .unwrap()
            .into_owned();
        let csrf = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        (cookie, csrf)
    }};
}

fn header<'a>(resp: &'a ServiceResponse, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[actix_web::test]
async fn pages_need_a_sign_in_and_scripts_get_401() {
    let app = app!();
    let page = test::call_service(
        &app,
        test::TestRequest::get().uri("/dashboard/").to_request(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(header(&page, "location").starts_with("/dashboard/accounts/login?next="));
    for (method, uri) in [
        ("POST", "/dashboard/api/delete-fatman/adder/1.0.0"),
        ("POST", "/dashboard/api/redeploy-fatman/adder/1.0.0"),
        ("GET", "/dashboard/api/deployment/d1"),
        ("GET", "/dashboard/api/events"),
        ("GET", "/dashboard/fatman/adder/1.0.0/logs/stream"),
    ] {
        let req = match method {
            "POST" => test::TestRequest::post(),
            _ => test::TestRequest::get(),
        };
        let resp = test::call_service(&app, req.uri(uri).to_request()).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert!(
            body["error"].as_str().unwrap().contains("sign in"),
            "{uri}: {body}"
        );
    }
}

#[actix_web::test]
async fn actions_check_the_csrf_header_before_calling_lifecycle() {
    let app = app!();
    let (cookie, csrf) = signed_in!(&app);
    for action in ["delete-fatman", "redeploy-fatman", "reprovision-fatman"] {
        let uri = format!("/dashboard/api/{action}/adder/1.0.0");
        let missing = test::TestRequest::post()
            .uri(&uri)
            .cookie(cookie.clone())
            .to_request();
        let resp = test::call_service(&app, missing).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{uri}");
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert!(body["error"].as_str().unwrap().contains("CSRF"), "{body}");

        let wrong = test::TestRequest::post()
            .uri(&uri)
            .cookie(cookie.clone())
            .insert_header(("X-CSRF-Token", "forged"))
            .to_request();
        assert_eq!(
            test::call_service(&app, wrong).await.status(),
            StatusCode::FORBIDDEN
        );

        // The right token gets through to Lifecycle, which is down: 503 with its message.
        let right = test::TestRequest::post()
            .uri(&uri)
            .cookie(cookie.clone())
            .insert_header(("X-CSRF-Token", csrf.as_str()))
            .to_request();
        let resp = test::call_service(&app, right).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert!(
            body["error"].as_str().unwrap().contains("unreachable"),
            "{body}"
        );
    }
}

#[actix_web::test]
async fn pages_show_lifecycle_errors_inside_themselves() {
    let app = app!();
    let (cookie, _) = signed_in!(&app);
    for (uri, marker) in [
        ("/dashboard/?q=add&page=2", "id=\"fatmen-search\""),
        ("/dashboard/?page=not-a-number", "id=\"fatmen\""),
        (
            "/dashboard/activity?fatman_name=adder&related_to_me=1&page=3",
            "id=\"audit-filter\"",
        ),
        (
            "/dashboard/fatman/adder/1.0.0/logs/follow?tail=50",
            "id=\"log-lines\"",
        ),
    ] {
        let req = test::TestRequest::get()
            .uri(uri)
            .cookie(cookie.clone())
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(html.contains(marker), "{uri}: {html}");
        if !uri.contains("follow") {
            assert!(html.contains("class=\"alert error\""), "{uri}: {html}");
            assert!(html.contains("unreachable"), "{uri}: {html}");
        }
    }
}

#[actix_web::test]
async fn logs_are_plain_text_even_when_failing() {
    let app = app!();
    let (cookie, _) = signed_in!(&app);
    for uri in [
        "/dashboard/fatman/logs/adder/1.0.0?tail=20",
        "/dashboard/fatman/build-logs/adder/1.0.0",
    ] {
        let req = test::TestRequest::get()
            .uri(uri)
            .cookie(cookie.clone())
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(header(&resp, "content-type"), "text/plain; charset=utf-8");
    }
}

#[actix_web::test]
async fn a_followed_log_reports_lifecycle_failure_as_an_event() {
    let app = app!();
    let (cookie, _) = signed_in!(&app);
    let req = test::TestRequest::get()
        .uri("/dashboard/fatman/adder/1.0.0/logs/stream?tail=10")
        .cookie(cookie)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    // The stream ends after the failure event, so the whole body can be read.
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(body.starts_with("event: failure\ndata: \""), "{body}");
    assert!(body.contains("unreachable"), "{body}");
}

#[actix_web::test]
async fn live_statuses_are_an_event_stream_that_frees_its_slot() {
    let app = app!();
    let (cookie, _) = signed_in!(&app);
    let req = test::TestRequest::get()
        .uri("/dashboard/api/events")
        .cookie(cookie)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    assert_eq!(header(&resp, "cache-control"), "no-cache");
    assert!(super::events::STREAMS.open() >= 1);
    // The client goes away: the stream's task notices and gives its slot back.
    drop(resp);
    for _ in 0..50 {
        if super::events::STREAMS.open() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the stream's slot was not freed");
}
