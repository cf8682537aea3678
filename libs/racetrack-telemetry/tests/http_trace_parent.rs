//! A caller's W3C `traceparent` becomes the parent of the middleware's `http_request` span
//! (docs/architecture.md, "Tracing"), as exported to an in-test OTLP receiver.
//!
//! One test only: the global subscriber can be installed once per process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{test, web, App, HttpResponse};
use racetrack_telemetry::testing::OtlpReceiver;
use racetrack_telemetry::{init_with, Metrics, RequestTelemetry, TelemetryConfig};

#[actix_web::test]
async fn the_callers_span_is_the_request_spans_parent() {
    let receiver = OtlpReceiver::start();
    let guard = init_with(TelemetryConfig {
        otlp_endpoint: Some(receiver.endpoint()),
        ..TelemetryConfig::new("lifecycle-test")
    })
    .expect("telemetry");
    let app = test::init_service(
        App::new()
            .wrap(RequestTelemetry::new(Arc::new(Metrics::new(
                "lifecycle-test",
            ))))
            .route("/traced", web::get().to(HttpResponse::Ok))
            .route("/untraced", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/traced")
        .insert_header((
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ))
        .to_request();
    assert!(test::call_service(&app, req).await.status().is_success());
    let req = test::TestRequest::get()
        .uri("/untraced")
        .insert_header(("traceparent", "00-0af7651916cd43dd8448eb211c80319c-zz-01"))
        .to_request();
    assert!(test::call_service(&app, req).await.status().is_success());
    // Flushes everything (on the runtime's only thread; the receiver has its own).
    drop(guard);

    let deadline = Instant::now() + Duration::from_secs(30);
    let find = |name: &str| receiver.spans().into_iter().find(|s| s.name == name);
    while (find("GET /traced").is_none() || find("GET /untraced").is_none())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let traced = find("GET /traced").expect("the traced request's span");
    assert_eq!(traced.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(traced.parent_span_id, "b7ad6b7169203331");
    let untraced = find("GET /untraced").expect("the other request's span");
    assert_eq!(
        untraced.parent_span_id, "",
        "an invalid traceparent is no parent"
    );
    assert_ne!(untraced.trace_id, traced.trace_id);
}
