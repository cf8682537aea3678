//! The access log written by `RequestTelemetry`: one line per request,
//! inside the request span, without secrets.
//!
//! Alone in its binary: it installs a thread-local subscriber, and tracing's
//! per-callsite interest cache races with tests on other threads.

use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{test, web, App, HttpResponse};
use racetrack_telemetry::{Metrics, RequestTelemetry};
use tracing_subscriber::layer::SubscriberExt;

const FATMAN_ROUTE: &str = "/api/v1/fatman/{fatman_name}/{fatman_version}";
const SECRET_SEGMENT: &str = "sk-SECRET-token-1f2e3d";
const SECRET_QUERY: &str = "apikey=hunter2";

async fn fatman() -> HttpResponse {
    tracing::info!("handling fatman request");
    HttpResponse::Ok().finish()
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().body("live")
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn logs_one_line_per_request_inside_the_span_without_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_writer(move || writer.clone()),
        );
    // Thread-local: the actix test runtime is single-threaded.
    let _default = tracing::subscriber::set_default(subscriber);

    let metrics = Arc::new(Metrics::new("lifecycle"));
    let app = test::init_service(
        App::new()
            .wrap(RequestTelemetry::new(metrics))
            .route(FATMAN_ROUTE, web::get().to(fatman))
            .route("/live", web::get().to(live)),
    )
    .await;

    let req = test::TestRequest::get()
        .uri(&format!(
            "/api/v1/fatman/{SECRET_SEGMENT}/1.2.3?{SECRET_QUERY}"
        ))
        .insert_header(("X-Request-Id", "log-test-1"))
        .insert_header(("Authorization", "Bearer sk-header-secret"))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    // Probe routes log at debug only: filtered out at INFO.
    let req = test::TestRequest::get().uri("/live").to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);

    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "handler line + access line only:\n{out}");

    // The handler's own event runs inside the request span.
    assert_eq!(lines[0]["message"], "handling fatman request");
    assert_eq!(lines[0]["span"]["name"], "http_request");
    assert_eq!(lines[0]["span"]["request_id"], "log-test-1");
    assert_eq!(lines[0]["span"]["route"], FATMAN_ROUTE);

    let access = &lines[1];
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["message"], "request completed");
    assert_eq!(access["status"], 200);
    let span = &access["span"];
    assert_eq!(span["method"], "GET");
    assert_eq!(span["route"], FATMAN_ROUTE);
    assert_eq!(span["request_id"], "log-test-1");
    assert_eq!(span["status"], 200);
    assert!(span["latency_ms"].as_f64().unwrap() >= 0.0, "{span}");

    for leaked in [
        SECRET_SEGMENT,
        "hunter2",
        "apikey",
        "sk-header-secret",
        "Bearer",
    ] {
        assert!(!out.contains(leaked), "{leaked:?} leaked into logs:\n{out}");
    }
}
