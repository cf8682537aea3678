use actix_web::{web, HttpResponse};
use serde_json::json;

use super::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/live", web::get().to(live))
        .route("/ready", web::get().to(ready))
        .route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics))
        .route("/metrics/", web::get().to(metrics))
        .route("/api/v1/info", web::get().to(info));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"service": "lifecycle", "live": true}))
}

async fn db_ok(state: &State) -> bool {
    let db = state.db.clone();
    web::block(move || db.ping()).await.unwrap_or(false)
}

async fn ready(state: State) -> HttpResponse {
    let ok = db_ok(&state).await;
    let body = json!({"service": "lifecycle", "ready": ok});
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn health(state: State) -> HttpResponse {
    let ok = db_ok(&state).await;
    let body = json!({
        "service": "lifecycle",
        "live": true,
        "ready": ok,
        "database_connected": ok,
        "git_version": state.config.git_version,
        "docker_tag": state.config.docker_tag,
        "auth_required": state.config.auth_required,
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::InternalServerError().json(body)
    }
}

async fn metrics(state: State) -> HttpResponse {
    state.db_connected.set(i64::from(db_ok(&state).await));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

async fn info(state: State) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "service": "lifecycle",
        "git_version": state.config.git_version,
        "docker_tag": state.config.docker_tag,
        "auth_required": state.config.auth_required,
    }))
}
