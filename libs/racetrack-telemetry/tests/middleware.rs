//! End-to-end behaviour of `RequestTelemetry` in an actix test service.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use racetrack_telemetry::{
    metrics_handler, Metrics, RequestId, RequestTelemetry, REQUEST_ID_HEADER,
};

const FATMAN_ROUTE: &str = "/api/v1/fatman/{fatman_name}/{fatman_version}";
const SECRET_SEGMENT: &str = "sk-SECRET-token-1f2e3d";
const SECRET_QUERY: &str = "apikey=hunter2";

async fn fatman(path: web::Path<(String, String)>, request_id: RequestId) -> HttpResponse {
    let (name, version) = path.into_inner();
    HttpResponse::Ok().body(format!("{name}:{version}:{request_id}"))
}

async fn failing() -> HttpResponse {
    HttpResponse::InternalServerError().finish()
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().body("live")
}

macro_rules! app {
    ($metrics:expr) => {
        test::init_service(
            App::new()
                .wrap(RequestTelemetry::new($metrics.clone()))
                .app_data(web::Data::from($metrics.clone()))
                .route(FATMAN_ROUTE, web::get().to(fatman))
                .route("/api/v1/fail", web::post().to(failing))
                .route("/live", web::get().to(live))
                .route("/metrics", web::get().to(metrics_handler)),
        )
        .await
    };
}

fn response_request_id<B>(res: &actix_web::dev::ServiceResponse<B>) -> String {
    res.headers()
        .get(REQUEST_ID_HEADER)
        .expect("X-Request-Id in response")
        .to_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn request_id_is_echoed_or_generated() {
    let metrics = Arc::new(Metrics::new("lifecycle"));
    let app = app!(metrics);

    // A sane id is echoed, and handlers see the same one.
    let req = test::TestRequest::get()
        .uri("/api/v1/fatman/adder/0.0.1")
        .insert_header(("X-Request-Id", "client-req.42_a"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(response_request_id(&res), "client-req.42_a");
    let body = test::read_body(res).await;
    assert_eq!(body, "adder:0.0.1:client-req.42_a");

    // Absent: a UUID v4 is generated and handed to the handler.
    let req = test::TestRequest::get()
        .uri("/api/v1/fatman/adder/0.0.1")
        .to_request();
    let res = test::call_service(&app, req).await;
    let generated = response_request_id(&res);
    let parsed = uuid::Uuid::parse_str(&generated).expect("generated id is a UUID");
    assert_eq!(parsed.get_version_num(), 4);
    let body = test::read_body(res).await;
    assert_eq!(body, format!("adder:0.0.1:{generated}"));

    // Invalid (bad characters / too long): replaced by a generated one.
    for bad in ["evil id; drop", &"x".repeat(129), "a\"b"] {
        let req = test::TestRequest::get()
            .uri("/api/v1/fatman/adder/0.0.1")
            .insert_header(("X-Request-Id", bad))
            .to_request();
        let res = test::call_service(&app, req).await;
        let id = response_request_id(&res);
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    }

    // Unmatched routes get one too.
    let req = test::TestRequest::get().uri("/nope").to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(uuid::Uuid::parse_str(&response_request_id(&res)).is_ok());

    // Each generated id is fresh.
    let a = test::call_service(&app, test::TestRequest::get().uri("/live").to_request()).await;
    let b = test::call_service(&app, test::TestRequest::get().uri("/live").to_request()).await;
    assert_ne!(response_request_id(&a), response_request_id(&b));
}

#[actix_web::test]
async fn metrics_use_route_patterns_and_never_raw_paths() {
    let metrics = Arc::new(Metrics::new("lifecycle"));
    let app = app!(metrics);

    for _ in 0..2 {
        let req = test::TestRequest::get()
            .uri(&format!(
                "/api/v1/fatman/{SECRET_SEGMENT}/1.2.3?{SECRET_QUERY}"
            ))
            .insert_header(("Authorization", "Bearer sk-header-secret"))
            .to_request();
        assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    }
    let req = test::TestRequest::post().uri("/api/v1/fail").to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let req = test::TestRequest::get()
        .uri(&format!("/unknown/{SECRET_SEGMENT}"))
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::NOT_FOUND
    );

    // Served through the app, as Prometheus would scrape it.
    let req = test::TestRequest::get().uri("/metrics").to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();

    assert!(
        text.contains(&format!(
            r#"http_requests_total{{method="GET",route="{FATMAN_ROUTE}",service="lifecycle",status="200"}} 2"#
        )),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_requests_total{method="POST",route="/api/v1/fail",service="lifecycle",status="500"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="unmatched",service="lifecycle",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"http_request_duration_seconds_count{{method="GET",route="{FATMAN_ROUTE}",service="lifecycle"}} 2"#
        )),
        "{text}"
    );
    for leaked in [
        SECRET_SEGMENT,
        "hunter2",
        "apikey",
        "sk-header-secret",
        "1.2.3",
        "/unknown",
    ] {
        assert!(
            !text.contains(leaked),
            "{leaked:?} leaked into metrics:\n{text}"
        );
    }
}
