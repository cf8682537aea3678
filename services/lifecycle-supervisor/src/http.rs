//! `/live`, `/ready`, `/health` (JSON: leadership, last sync and reconcile, statuses, orphans),
//! `/fatmen` (each fatman's status and last check time) and `/metrics` — served by every replica,
//! leader or not.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, HttpResponse};
use racetrack_telemetry::{metrics_handler, RequestTelemetry};
use serde_json::json;

use crate::Supervisor;

type Data = web::Data<Arc<Supervisor>>;

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"live": true}))
}

/// Whether Lifecycle answered the last lease request (every replica asks at least every
/// `LEASE_RETRY_SECS`): without it the supervisor can neither lead nor sync.
fn lifecycle_ok(sup: &Data) -> bool {
    sup.lifecycle_ok.load(std::sync::atomic::Ordering::SeqCst)
}

/// Ready when Lifecycle answers.
async fn ready(sup: Data) -> HttpResponse {
    let leader = sup.leadership.is_leader();
    if lifecycle_ok(&sup) {
        HttpResponse::Ok().json(json!({"ready": true, "leader": leader}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "ready": false,
            "leader": leader,
            "details": "Lifecycle unreachable",
        }))
    }
}

async fn health(sup: Data) -> HttpResponse {
    let lifecycle = lifecycle_ok(&sup);
    let report = sup.report();
    let config = &sup.config;
    let body = json!({
        "service": "lifecycle-supervisor",
        "git_version": config.git_version,
        "status": if lifecycle { "pass" } else { "fail" },
        "lifecycle_connected": lifecycle,
        "lifecycle_grpc_url": config.lifecycle_grpc_url,
        "leader": sup.leadership.is_leader(),
        "holder": sup.leadership.holder(),
        "targets": sup.targets.keys().collect::<Vec<_>>(),
        "config": {
            "sync_interval_secs": config.sync_interval.as_secs_f64(),
            "reconcile_interval_secs": config.reconcile_interval.as_secs_f64(),
            "orphan_grace_secs": config.orphan_grace.as_secs_f64(),
            "orphan_dry_run": config.orphan_dry_run,
            "lease_secs": config.lease.as_secs_f64(),
            "lease_retry_secs": config.lease_retry.as_secs_f64(),
        },
        "syncs_completed": report.syncs_completed,
        "last_sync": report.last_sync,
        "last_sync_error": report.last_sync_error,
        "last_reconcile": report.last_reconcile,
        "orphans": report.orphans,
    });
    if lifecycle {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::InternalServerError().json(body)
    }
}

/// Every registered fatman as the supervisor last saw it: status, error and `last_check_time`
/// (unix seconds; `null` = never checked, e.g. while a deployment of it runs), as Lifecycle
/// lists them.
async fn fatmen(sup: Data) -> HttpResponse {
    let rows = sup.lifecycle.list(None, sup.config.deployment_stale).await;
    match rows {
        Ok(listing) => HttpResponse::Ok().json(
            listing
                .rows
                .into_iter()
                .map(|f| {
                    json!({
                        "name": f.name,
                        "version": f.version,
                        "status": f.status,
                        "error": f.error,
                        "internal_name": f.internal_name,
                        "infrastructure_target": f.infrastructure_target,
                        "update_time": crate::unix(f.update_time),
                        "last_check_time": f.last_check_time.map(crate::unix),
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Err(e) => HttpResponse::ServiceUnavailable().json(json!({"error": e.to_string()})),
    }
}

/// The probes server on an already bound listener (one worker: it only answers probes).
pub fn server(sup: Arc<Supervisor>, listener: TcpListener) -> std::io::Result<Server> {
    let telemetry = sup.telemetry.clone();
    let data: Data = web::Data::new(sup);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(RequestTelemetry::new(telemetry.clone()))
            .app_data(data.clone())
            .app_data(web::Data::from(telemetry.clone()))
            .route("/live", web::get().to(live))
            .route("/ready", web::get().to(ready))
            .route("/health", web::get().to(health))
            .route("/fatmen", web::get().to(fatmen))
            .route("/metrics", web::get().to(metrics_handler))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
