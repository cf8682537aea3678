//! The `RequestTelemetry` actix-web middleware.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpMessage};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use tracing::field::Empty;
use tracing::Instrument;

use crate::metrics::{method_label, Metrics, UNMATCHED_ROUTE};
use crate::request_id::{RequestId, REQUEST_ID_HEADER};

/// Last path segments of probe/scrape routes, logged at `debug` instead of
/// `info` so they don't drown the request log.
const QUIET_ROUTES: [&str; 4] = ["live", "ready", "health", "metrics"];

/// Request telemetry middleware: request id, tracing span, access log line
/// and Prometheus HTTP metrics.
///
/// For every request it
/// 1. takes the request id from `X-Request-Id` when it is sane
///    (see [`crate::is_valid_request_id`]), else generates a UUID v4, stores it
///    as a [`RequestId`] request extension and echoes it in the response's
///    `X-Request-Id`;
/// 2. runs the rest of the chain inside an `http_request` info span (child of
///    the caller's span when a valid W3C `traceparent` came with the request) with
///    fields `method`, `route` (matched pattern or `unmatched`),
///    `request_id`, and at the end `status` and `latency_ms`;
/// 3. records `http_requests_total` / `http_request_duration_seconds`;
/// 4. logs one `request completed` line (at `debug` for routes ending in
///    `/live`, `/ready`, `/health` or `/metrics`, else `info`).
///
/// It never records headers, query strings, raw paths or bodies.
///
/// Register it with `App::wrap` so that it is the outermost middleware and
/// sees every request, including unmatched ones. If an inner middleware
/// returns an `Err` instead of a response, metrics and log still record the
/// error's status, but the `X-Request-Id` header cannot be added.
#[derive(Clone, Debug)]
pub struct RequestTelemetry {
    metrics: Arc<Metrics>,
}

impl RequestTelemetry {
    /// Middleware recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        RequestTelemetry { metrics }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestTelemetry
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RequestTelemetryMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestTelemetryMiddleware {
            service,
            metrics: Arc::clone(&self.metrics),
        }))
    }
}

/// The service produced by [`RequestTelemetry`]; not used directly.
pub struct RequestTelemetryMiddleware<S> {
    service: S,
    metrics: Arc<Metrics>,
}

impl<S, B> Service<ServiceRequest> for RequestTelemetryMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let start = Instant::now();
        let request_id = RequestId::from_headers_or_generate(req.headers());
        let method = req.method().clone();
        let method_str = method_label(&method);
        // The resource map can resolve the pattern before routing happened;
        // it is refined from the response's request below.
        let route = req
            .match_pattern()
            .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());

        let span = tracing::info_span!(
            "http_request",
            method = method_str,
            route = %route,
            request_id = %request_id,
            status = Empty,
            latency_ms = Empty,
            otel.name = %format_args!("{method_str} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
        );

        // The caller's span (W3C `traceparent`), if any, is this request's parent; set before
        // the span is first entered, when OpenTelemetry fixes it.
        let headers = req.headers();
        crate::propagation::set_parent(
            &span,
            crate::propagation::extract(|key| headers.get(key).and_then(|v| v.to_str().ok())),
        );
        req.extensions_mut().insert(request_id.clone());
        let fut = span.in_scope(|| self.service.call(req));
        let metrics = Arc::clone(&self.metrics);

        let handled = async move {
            let result = fut.await;
            let elapsed = start.elapsed();

            let (status, final_route) = match &result {
                Ok(res) => (
                    res.status(),
                    res.request().match_pattern().unwrap_or(route.clone()),
                ),
                Err(err) => (err.as_response_error().status_code(), route.clone()),
            };

            let span = tracing::Span::current();
            if final_route != route {
                span.record("route", final_route.as_str());
                span.record(
                    "otel.name",
                    tracing::field::display(format_args!("{method_str} {final_route}")),
                );
            }
            span.record("status", status.as_u16());
            span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }

            metrics.observe_http_request(&method, &final_route, status.as_u16(), elapsed);
            log_completion(&final_route, status);

            result.map(|mut res| {
                if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
                    res.headers_mut()
                        .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
                }
                res
            })
        };
        Box::pin(handled.instrument(span))
    }
}

/// Emits the access-log event (inside the request span, whose fields carry
/// the details).
fn log_completion(route: &str, status: StatusCode) {
    let quiet = route
        .rsplit('/')
        .next()
        .is_some_and(|last| QUIET_ROUTES.contains(&last));
    if quiet {
        tracing::debug!(status = status.as_u16(), "request completed");
    } else {
        tracing::info!(status = status.as_u16(), "request completed");
    }
}
