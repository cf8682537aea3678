//! The probes and metrics server every Racetrack service without its own HTTP API runs beside its
//! main listener (image-builder, lifecycle supervisor): `/live`, `/ready`, `/health`, `/metrics`,
//! plus any routes the service adds. One implementation, so the probes answer alike everywhere
//! (docs/architecture.md, "One service kit").
//!
//! `/live` answers as long as the process serves HTTP; `/ready` and `/health` ask the service
//! ([`ServiceProbes`]): ready means "send me work", health is a JSON report with `status`
//! `pass`/`fail` for people and dashboards.

use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use crate::{metrics_handler, Metrics, RequestTelemetry};

/// A boxed future answering a probe.
pub type ProbeFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Fields a probe adds to its JSON answer.
pub type Fields = Map<String, Value>;

/// `Ok(fields)`: ready, the fields are added to `{"ready": true}`; `Err((fields, details))`: not
/// ready (503) with the reason in `details`.
pub type Readiness = Result<Fields, (Fields, String)>;

/// What a service answers on `/ready` and `/health`.
pub trait ServiceProbes: Send + Sync + 'static {
    fn ready(&self) -> ProbeFuture<'_, Readiness>;

    /// The health report (its `status` field is set from the flag: `pass`/200 or `fail`/500).
    fn health(&self) -> ProbeFuture<'_, (bool, Fields)>;
}

type Probes = web::Data<Arc<dyn ServiceProbes>>;

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"live": true}))
}

async fn ready(probes: Probes) -> HttpResponse {
    match probes.ready().await {
        Ok(mut fields) => {
            fields.insert("ready".into(), Value::Bool(true));
            HttpResponse::Ok().json(Value::Object(fields))
        }
        Err((mut fields, details)) => {
            fields.insert("ready".into(), Value::Bool(false));
            fields.insert("details".into(), Value::String(details));
            HttpResponse::ServiceUnavailable().json(Value::Object(fields))
        }
    }
}

async fn health(probes: Probes) -> HttpResponse {
    let (pass, mut body) = probes.health().await;
    body.insert(
        "status".into(),
        Value::String(if pass { "pass" } else { "fail" }.into()),
    );
    if pass {
        HttpResponse::Ok().json(Value::Object(body))
    } else {
        HttpResponse::InternalServerError().json(Value::Object(body))
    }
}

/// Starts the probes server on an already bound listener: one worker (it only answers probes),
/// no signal handling of its own (the service stops it as part of its shutdown). `extra` adds
/// service-specific routes (the supervisor's `/fatmen`).
pub fn server(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    probes: Arc<dyn ServiceProbes>,
    extra: impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
) -> std::io::Result<Server> {
    let probes: Probes = web::Data::new(probes);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(RequestTelemetry::new(metrics.clone()))
            .app_data(probes.clone())
            .app_data(web::Data::from(metrics.clone()))
            .route("/live", web::get().to(live))
            .route("/ready", web::get().to(ready))
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics_handler))
            .configure(extra.clone())
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
