//! Prometheus registry with the standard HTTP metrics of a Racetrack service.

use std::fmt;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// `route` label used when no route pattern matched the request (404s from
/// the default service, scanners...). Keeps label cardinality bounded.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Content type of [`Metrics::render`]'s output.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A service's Prometheus registry, pre-loaded with the HTTP metrics that
/// [`crate::RequestTelemetry`] feeds:
///
/// * `http_requests_total{service,method,route,status}` (counter)
/// * `http_request_duration_seconds{service,method,route}` (histogram)
///
/// `route` is always the matched route *pattern*
/// (`/api/v1/fatman/{fatman_name}/{fatman_version}`) or [`UNMATCHED_ROUTE`],
/// never the raw path: path values are unbounded and may be sensitive.
///
/// Services register their own collectors on [`Metrics::registry`]; they are
/// included in [`Metrics::render`].
pub struct Metrics {
    service: String,
    registry: Registry,
    http_requests_total: IntCounterVec,
    http_request_duration_seconds: HistogramVec,
}

impl Metrics {
    /// A fresh registry for `service` (used as the `service` label value).
    #[allow(
        clippy::expect_used,
        reason = "static metric definitions on a fresh registry: a failure is a programming error every test run catches"
    )]
    pub fn new(service: impl Into<String>) -> Self {
        let service = service.into();
        let registry = Registry::new();

        let http_requests_total = IntCounterVec::new(
            Opts::new("http_requests_total", "Number of HTTP requests handled."),
            &["service", "method", "route", "status"],
        )
        .expect("static metric definition is valid");
        let http_request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time spent handling HTTP requests, in seconds.",
            ),
            &["service", "method", "route"],
        )
        .expect("static metric definition is valid");

        // A brand-new registry cannot hold a conflicting collector yet.
        registry
            .register(Box::new(http_requests_total.clone()))
            .expect("fresh registry accepts http_requests_total");
        registry
            .register(Box::new(http_request_duration_seconds.clone()))
            .expect("fresh registry accepts http_request_duration_seconds");

        Metrics {
            service,
            registry,
            http_requests_total,
            http_request_duration_seconds,
        }
    }

    /// The service name used as the `service` label.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The underlying registry, to register service-specific collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records one handled request. `route` must be a route pattern or
    /// [`UNMATCHED_ROUTE`]; `method` is normalised by [`method_label`].
    pub fn observe_http_request(
        &self,
        method: &Method,
        route: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        let status = status.to_string();
        self.http_requests_total
            .with_label_values(&[self.service.as_str(), method, route, status.as_str()])
            .inc();
        self.http_request_duration_seconds
            .with_label_values(&[self.service.as_str(), method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// All metrics of the registry in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut buf = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::warn!(%error, "failed to encode Prometheus metrics");
        }
        String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// An HTTP 200 response with [`Metrics::render`]'s output.
    pub fn http_response(&self) -> HttpResponse {
        HttpResponse::Ok()
            .content_type(METRICS_CONTENT_TYPE)
            .body(self.render())
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// Ready-made `GET /metrics` handler; needs `web::Data<Metrics>` app data
/// (build it with `web::Data::from(arc_metrics)` to share the middleware's).
pub async fn metrics_handler(metrics: web::Data<Metrics>) -> HttpResponse {
    metrics.http_response()
}

/// The `method` label: standard methods as is, anything else `OTHER`
/// (arbitrary extension methods would otherwise create unbounded series).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_contains_observed_request_and_custom_metrics() {
        let metrics = Metrics::new("lifecycle");
        metrics.observe_http_request(
            &Method::GET,
            "/api/v1/fatman/{name}",
            404,
            Duration::from_millis(12),
        );
        let custom = prometheus::IntGauge::new("fatmen_running", "Running fatmen").unwrap();
        metrics
            .registry()
            .register(Box::new(custom.clone()))
            .unwrap();
        custom.set(3);

        let text = metrics.render();
        assert!(text.contains(
            r#"http_requests_total{method="GET",route="/api/v1/fatman/{name}",service="lifecycle",status="404"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"http_request_duration_seconds_count{method="GET",route="/api/v1/fatman/{name}",service="lifecycle"} 1"#
        ), "{text}");
        assert!(text.contains("fatmen_running 3"), "{text}");
    }

    #[test]
    fn unusual_methods_are_bucketed() {
        let custom = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(method_label(&custom), "OTHER");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
    }
}
