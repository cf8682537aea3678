//! The HTTP side: `/health` (pings the Docker engine), `/live`, `/ready`, `/metrics`.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, HttpResponse};
use racetrack_telemetry::{metrics_handler, RequestTelemetry};
use serde_json::json;

use crate::App;

async fn health(app: web::Data<App>) -> HttpResponse {
    let docker = app.docker.ping().await;
    let body = |status: &str, details: Option<String>| {
        let mut b = json!({
            "service": "image-builder",
            "git_version": app.config.git_version,
            "docker_tag": app.config.racetrack_version,
            "status": status,
        });
        if let Some(d) = details {
            b["details"] = json!(d);
        }
        b
    };
    match docker {
        Ok(()) => HttpResponse::Ok().json(body("pass", None)),
        Err(e) => HttpResponse::InternalServerError().json(body("fail", Some(e))),
    }
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"live": true}))
}

/// Ready when the Docker engine answers: without it no build can run.
async fn ready(app: web::Data<App>) -> HttpResponse {
    match app.docker.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"ready": true})),
        Err(e) => HttpResponse::ServiceUnavailable().json(json!({"ready": false, "details": e})),
    }
}

/// The HTTP server on an already bound listener (one worker: it only serves probes).
pub fn server(app: App, listener: TcpListener) -> std::io::Result<Server> {
    let telemetry = app.telemetry.clone();
    let data = web::Data::new(app);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(RequestTelemetry::new(telemetry.clone()))
            .app_data(data.clone())
            .app_data(web::Data::from(telemetry.clone()))
            .route("/health", web::get().to(health))
            .route("/live", web::get().to(live))
            .route("/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics_handler))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
