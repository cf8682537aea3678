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

/// Nothing listens on port 1: every call fails as "unreachable".
const NO_LIFECYCLE: &str = "http://127.0.0.1:1";

fn state_at(lifecycle_url: &str) -> web::Data<AppState> {
    let config = Config::from_lookup(racetrack_config::lookup_in(&[
        ("SECRET_KEY", KEY),
        ("LIFECYCLE_GRPC_URL", lifecycle_url),
        ("LIFECYCLE_TIMEOUT", "5"),
        ("EXTERNAL_PUB_URL", "http://pub.example/pub/"),
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
            token: super::fake_lifecycle::TOKEN.into(),
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
        app!(state_at(NO_LIFECYCLE))
    };
    ($state:expr) => {
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
                .app_data($state)
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

// --- with a stand-in Lifecycle (fake_lifecycle.rs) -------------------------------------------

use super::fake_lifecycle::{self, fatman};
use actix_web::body::{BoxBody, MessageBody};

fn sample_fatmen() -> Vec<racetrack_proto::dashboard::Fatman> {
    let mut adder = fatman("adder", "1.0.0", "running");
    adder.labels = [("team".to_string(), "data".to_string())].into();
    adder.infrastructure_target = "docker".into();
    let mut old = fatman("adder", "0.9.0", "error");
    old.error = "container exited with code 1".into();
    vec![adder, old, fatman("zeta", "2.0.0", "created")]
}

async fn body_text(resp: ServiceResponse) -> String {
    String::from_utf8(test::read_body(resp).await.to_vec()).unwrap()
}

/// Reads a streamed body until `needle` has arrived (10 s at most).
async fn read_until(body: &mut BoxBody, seen: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(needle) {
        let next = tokio::time::timeout_at(
            deadline,
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_next(cx)),
        )
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} within 10 s; got {seen:?}"));
        match next {
            Some(Ok(bytes)) => seen.push_str(std::str::from_utf8(&bytes).unwrap()),
            other => panic!(
                "stream ended ({:?}) before {needle:?}; got {seen:?}",
                other.is_some()
            ),
        }
    }
}

#[actix_web::test]
async fn fatmen_page_lists_families_with_the_users_token() {
    let (url, _) = fake_lifecycle::start(sample_fatmen()).await;
    let app = app!(state_at(&url));
    let (cookie, _) = signed_in!(&app);
    let req = test::TestRequest::get()
        .uri("/dashboard/")
        .cookie(cookie.clone())
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = body_text(resp).await;
    for want in [
        r#"id="fatman-adder-1.0.0" data-name="adder" data-version="1.0.0""#,
        r#"id="fatman-adder-0.9.0""#,
        r#"id="fatman-zeta-2.0.0""#,
        r#"<span class="badge status running">RUNNING</span>"#,
        r#"<span class="badge status error">ERROR</span>"#,
        r#"<span class="badge status other">CREATED</span>"#,
        r#"<a class="open-fatman" href="http://pub.example/pub/fatman/adder/1.0.0/" target="_blank""#,
        "container exited with code 1",
        "team: data",
        "<span id=\"fatmen-count\">3</span>",
        r#"<script src="/dashboard/static/fatmen.js" defer>"#,
    ] {
        assert!(html.contains(want), "missing {want:?} in {html}");
    }
    assert!(
        !html.contains("class=\"alert error\" role=\"alert\">"),
        "no page alert: {html}"
    );
    assert_eq!(html.matches("class=\"open-fatman\"").count(), 1);

    let req = test::TestRequest::get()
        .uri("/dashboard/?q=ZET")
        .cookie(cookie)
        .to_request();
    let html = body_text(test::call_service(&app, req).await).await;
    assert!(
        html.contains("fatman-zeta-2.0.0") && !html.contains("fatman-adder-1.0.0"),
        "{html}"
    );
}

#[actix_web::test]
async fn actions_answer_json_and_deployments_can_be_polled() {
    let (url, shared) = fake_lifecycle::start(sample_fatmen()).await;
    let app = app!(state_at(&url));
    let (cookie, csrf) = signed_in!(&app);
    let post = |uri: &str| {
        test::TestRequest::post()
            .uri(uri)
            .cookie(cookie.clone())
            .insert_header(("X-CSRF-Token", csrf.as_str()))
            .to_request()
    };

    let resp = test::call_service(&app, post("/dashboard/api/redeploy-fatman/adder/1.0.0")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body["deployment"]["id"], "dep-1");
    assert_eq!(body["deployment"]["status"], "in_progress");
    assert_eq!(body["deployment"]["phase"], "building image");
    assert_eq!(body["deployment"]["final"], false);

    let poll = test::TestRequest::get()
        .uri("/dashboard/api/deployment/dep-1")
        .cookie(cookie.clone())
        .to_request();
    let body: serde_json::Value = test::read_body_json(test::call_service(&app, poll).await).await;
    assert_eq!(body["deployment"]["status"], "done");
    assert_eq!(body["deployment"]["final"], true);
    let missing = test::TestRequest::get()
        .uri("/dashboard/api/deployment/nope")
        .cookie(cookie.clone())
        .to_request();
    let resp = test::call_service(&app, missing).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let resp = test::call_service(&app, post("/dashboard/api/reprovision-fatman/zeta/2.0.0")).await;
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body["deployment"]["id"], "dep-2");

    let resp = test::call_service(&app, post("/dashboard/api/delete-fatman/adder/0.9.0")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = test::call_service(&app, post("/dashboard/api/delete-fatman/adder/0.9.0")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "fatman adder 0.9.0 not found");

    let req = test::TestRequest::get()
        .uri("/dashboard/")
        .cookie(cookie)
        .to_request();
    let html = body_text(test::call_service(&app, req).await).await;
    assert!(!html.contains("fatman-adder-0.9.0") && html.contains("fatman-adder-1.0.0"));
    assert_eq!(
        *shared.actions.lock().unwrap(),
        [
            "redeploy adder/1.0.0",
            "reprovision zeta/2.0.0",
            "delete adder/0.9.0",
            "delete adder/0.9.0"
        ]
    );
}

#[actix_web::test]
async fn logs_come_without_colour_codes() {
    let (url, _) = fake_lifecycle::start(sample_fatmen()).await;
    let app = app!(state_at(&url));
    let (cookie, _) = signed_in!(&app);
    for (uri, want) in [
        (
            "/dashboard/fatman/logs/adder/1.0.0?tail=7",
            "INFO runtime of adder 1.0.0 tail=7\n",
        ),
        (
            "/dashboard/fatman/build-logs/adder/1.0.0",
            "Step 1/2 build of adder tail=0\n",
        ),
    ] {
        let req = test::TestRequest::get()
            .uri(uri)
            .cookie(cookie.clone())
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        assert_eq!(header(&resp, "content-type"), "text/plain; charset=utf-8");
        assert_eq!(body_text(resp).await, want, "{uri}");
    }
}

#[actix_web::test]
async fn followed_logs_stream_lines_then_the_end_or_a_failure() {
    let (url, _) = fake_lifecycle::start(vec![]).await;
    let app = app!(state_at(&url));
    let (cookie, _) = signed_in!(&app);
    let req = test::TestRequest::get()
        .uri("/dashboard/fatman/adder/1.0.0/logs/stream?tail=5")
        .cookie(cookie.clone())
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    let body = body_text(resp).await;
    assert_eq!(
        body,
        ": connected\n\n\
         event: lines\ndata: \"first tail=5\\n\"\n\n\
         event: lines\ndata: \"second\\nthird\\n\"\n\n\
         event: end\ndata: \"the log stream ended\"\n\n"
    );

    let req = test::TestRequest::get()
        .uri("/dashboard/fatman/broken/1.0.0/logs/stream")
        .cookie(cookie)
        .to_request();
    let body = body_text(test::call_service(&app, req).await).await;
    assert!(
        body.contains("event: lines\ndata: \"second\\nthird\\n\"\n\n"),
        "{body}"
    );
    assert!(
        body.ends_with("event: failure\ndata: \"the fatman's container is gone\"\n\n"),
        "{body}"
    );
}

#[actix_web::test]
async fn audit_page_asks_with_the_filter_and_explains_each_event() {
    let (url, shared) = fake_lifecycle::start(vec![]).await;
    let app = app!(state_at(&url));
    let (cookie, _) = signed_in!(&app);
    let req = test::TestRequest::get()
        .uri(
            "/dashboard/activity?q=1&fatman_name=adder&fatman_version=1.0.0&related_to_me=1&page=2",
        )
        .cookie(cookie)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = body_text(resp).await;
    for want in [
        "<strong class=\"audit-type\">Fatman_Redeployed</strong>",
        "<div class=\"audit-sentence\">Fatman adder 1.0.0 (owned by alice@example.com) redeployed by bob@example.com</div>",
        "<div class=\"audit-sentence\">Event fatman_from_the_future on fatman adder 1.0.0 by bob@example.com (concerning alice@example.com)</div>",
        "<span class=\"page-current\" aria-current=\"page\">2</span>",
        "href=\"/dashboard/activity?page=3&amp;fatman_name=adder&amp;fatman_version=1.0.0&amp;related_to_me=1\"",
    ] {
        assert!(html.contains(want), "missing {want:?} in {html}");
    }
    let q = shared.audit_queries.lock().unwrap()[0].clone();
    assert!(q.related_to_me);
    assert_eq!(
        (q.fatman_name.as_str(), q.fatman_version.as_str(), q.page),
        ("adder", "1.0.0", 2)
    );
}

#[actix_web::test]
async fn live_statuses_send_the_rows_that_changed() {
    let (url, shared) = fake_lifecycle::start(sample_fatmen()).await;
    let state = state_at(&url);
    let app = app!(state.clone());
    let (cookie, _) = signed_in!(&app);
    let req = test::TestRequest::get()
        .uri("/dashboard/api/events")
        .cookie(cookie)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut seen = String::new();
    read_until(&mut body, &mut seen, ": connected\n\n").await;

    {
        let mut list = shared.fatmen.lock().unwrap();
        list[0].status = "error".into();
        list[0].error = "out of memory".into();
        list.retain(|f| f.name != "zeta");
        list.push(fatman("newcomer", "0.1.0", "created"));
    }
    state
        .live
        .notify(crate::live::Change::Family("adder".into()));
    read_until(&mut body, &mut seen, "event: fatmen\ndata: ").await;
    read_until(&mut body, &mut seen, "}\n\n").await;
    let data = seen
        .split("event: fatmen\ndata: ")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap();
    let diff: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(diff["changed"][0]["name"], "adder");
    assert_eq!(diff["changed"][0]["version"], "1.0.0");
    assert_eq!(diff["changed"][0]["status"], "error");
    assert_eq!(diff["changed"][0]["error"], "out of memory");
    assert_eq!(diff["removed"][0]["name"], "zeta");
    assert_eq!(diff["added"][0]["name"], "newcomer");
    assert_eq!(diff["changed"].as_array().unwrap().len(), 1);
}
