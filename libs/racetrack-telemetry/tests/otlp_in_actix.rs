//! OTLP export of request spans when telemetry is initialised inside the
//! single-threaded actix runtime, and the guard dropped there (the shape of a
//! service's `main`). Must neither deadlock nor leak secrets into spans.
//!
//! One test only: the global subscriber can be installed once per process.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{test, web, App, HttpResponse};
use racetrack_telemetry::{init_with, LogFormat, Metrics, RequestTelemetry, TelemetryConfig};

use common::{contains, fake_collector, HTTP2_PREFACE};

const ROUTE: &str = "/api/v1/fatman/{fatman_name}/{fatman_version}";

async fn fatman() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[actix_web::test]
async fn request_spans_are_exported_without_secrets() {
    let (endpoint, exported) = fake_collector(b"/api/v1/fatman/{fatman_name}/{fatman_version}");
    let guard = init_with(TelemetryConfig {
        log_format: LogFormat::Text,
        otlp_endpoint: Some(endpoint),
        ..TelemetryConfig::new("lifecycle-test")
    })
    .expect("init with OTLP inside the actix runtime");
    assert!(guard.otlp_enabled());

    let metrics = Arc::new(Metrics::new("lifecycle-test"));
    let app = test::init_service(
        App::new()
            .wrap(RequestTelemetry::new(metrics))
            .route(ROUTE, web::get().to(fatman)),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/api/v1/fatman/sk-SECRET-segment/0.0.1?apikey=hunter2")
        .insert_header(("X-Request-Id", "otlp-req-7"))
        .insert_header(("Authorization", "Bearer sk-header-secret"))
        .to_request();
    assert!(test::call_service(&app, req).await.status().is_success());

    // Dropped on the runtime's only thread: the flush must still complete.
    let started = Instant::now();
    drop(guard);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "guard drop blocked for {:?}",
        started.elapsed()
    );

    let sent = exported
        .recv_timeout(Duration::from_secs(15))
        .expect("exporter connected to the collector");
    assert!(sent.starts_with(HTTP2_PREFACE));
    for expected in [
        // otel.name: the span is named after method and route pattern.
        &b"GET /api/v1/fatman/{fatman_name}/{fatman_version}"[..],
        b"otlp-req-7",
        b"lifecycle-test",
    ] {
        assert!(
            contains(&sent, expected),
            "{:?} missing from the export",
            String::from_utf8_lossy(expected)
        );
    }
    for secret in [
        &b"sk-SECRET-segment"[..],
        b"hunter2",
        b"apikey",
        b"sk-header-secret",
    ] {
        assert!(
            !contains(&sent, secret),
            "{:?} leaked into the exported span",
            String::from_utf8_lossy(secret)
        );
    }
}
