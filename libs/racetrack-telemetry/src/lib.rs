//! Telemetry for Racetrack services: logs, traces, metrics and request ids.
//!
//! * [`init`] installs the global `tracing` subscriber from the environment:
//!
//!   | variable | meaning |
//!   | --- | --- |
//!   | `RUST_LOG` | `EnvFilter` directives, default `info` |
//!   | `LOG_FORMAT` | `text` (default, human readable) or `json` (one object per line, event fields at the top level, current span under `span`) |
//!   | `OTEL_EXPORTER_OTLP_ENDPOINT` | when set, spans are also exported over OTLP/gRPC to this endpoint with resource `service.name` |
//!
//!   Keep the returned [`TelemetryGuard`] alive until the end of `main`: its
//!   drop flushes pending spans. Calling [`init`] again is harmless (a no-op
//!   guard is returned), and `init_for_tests` (feature `testing`) suits test code. `log` crate
//!   records (actix-web, r2d2...) are forwarded to `tracing`.
//!   No async runtime is required, with or without OTLP: the exporter runs on
//!   a private single-worker Tokio runtime owned by the guard, so calling
//!   `init` first thing in a `#[actix_web::main]` / `#[tokio::main]` `main`
//!   (or before building any runtime) both work.
//! * [`Metrics`] is a Prometheus registry with `http_requests_total` and
//!   `http_request_duration_seconds`; services add their own collectors to
//!   [`Metrics::registry`] and serve [`Metrics::render`] (or
//!   [`metrics_handler`]) on `/metrics`.
//! * [`RequestTelemetry`] is the actix-web middleware tying it together: it
//!   assigns each request a [`RequestId`] (from a sane incoming
//!   `X-Request-Id`, else a UUID v4, echoed in the response), runs the
//!   handler inside an `http_request` span, records the metrics and logs one
//!   line per request. A caller's W3C `traceparent` becomes the parent of
//!   that span.
//! * Trace context crosses services as W3C `traceparent` / `tracestate`:
//!   [`PropagateTrace`] / [`inject_grpc`] on gRPC clients,
//!   [`grpc_server_span`] / [`set_parent_from_grpc`] on gRPC servers,
//!   [`extract`], [`set_parent`] and [`TraceHeaders`] for anything else
//!   (docs/architecture.md, "Tracing").
//!
//! ```no_run
//! use std::sync::Arc;
//! use actix_web::{web, App, HttpServer};
//! use racetrack_telemetry::{metrics_handler, Metrics, RequestTelemetry};
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let _telemetry = racetrack_telemetry::init("lifecycle").expect("telemetry setup");
//!     let metrics = Arc::new(Metrics::new("lifecycle"));
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(RequestTelemetry::new(metrics.clone()))
//!             .app_data(web::Data::from(metrics.clone()))
//!             .route("/metrics", web::get().to(metrics_handler))
//!     })
//!     .bind(("0.0.0.0", 7202))?
//!     .run()
//!     .await
//! }
//! ```
//!
//! # Secrets never go into spans or logs
//!
//! Logs are shipped to shared aggregators and spans to external collectors,
//! so neither may ever contain a credential. The rules, for this crate and
//! for every service using it:
//!
//! * Never record HTTP headers (`Authorization`, `X-Racetrack-Auth`, cookies),
//!   query strings, request or response bodies, or raw paths. The middleware
//!   records only the method, the matched route *pattern*, the status, the
//!   latency and the request id; metrics use the same bounded labels (a raw
//!   path would also explode label cardinality).
//! * Never put tokens, passwords, password hashes, API keys, JWTs, private
//!   keys or database URLs (they embed passwords) into span fields or event
//!   fields, not even at `debug`/`trace` level, and not via `?value` of a
//!   struct whose `Debug` prints them: give such structs a redacting `Debug`
//!   impl, or skip the field (`#[tracing::instrument(skip(token))]`).
//! * Identify principals by non-secret ids (username, token id/prefix),
//!   never by the secret itself.
//! * Error messages logged from failures must not echo the rejected secret
//!   (e.g. "invalid token", not "invalid token abc123").

mod error;
mod init;
mod metrics;
mod middleware;
pub mod probes;
mod propagation;
mod request_id;
mod shutdown;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::TelemetryError;
#[cfg(feature = "testing")]
pub use init::init_for_tests;
pub use init::{
    init, init_with, LogFormat, TelemetryConfig, TelemetryGuard, DEFAULT_LOG_FILTER,
    ENV_LOG_FILTER, ENV_LOG_FORMAT, ENV_OTLP_ENDPOINT,
};
pub use metrics::{method_label, metrics_handler, Metrics, METRICS_CONTENT_TYPE, UNMATCHED_ROUTE};
pub use middleware::{RequestTelemetry, RequestTelemetryMiddleware};
/// A caller's trace context as [`extract`] returns it, to hand to [`set_parent`] later (e.g. to
/// a span a spawned task creates).
pub use opentelemetry::Context as TraceContext;
pub use propagation::{
    extract, extract_grpc, grpc_server_span, has_remote_parent, inject_grpc, inject_metadata,
    set_parent, set_parent_from_grpc, PropagateTrace, TraceHeaders, TRACEPARENT, TRACESTATE,
};
pub use request_id::{is_valid_request_id, RequestId, MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER};
pub use shutdown::shutdown_signal;
