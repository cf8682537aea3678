//! The shared probes server (racetrack_telemetry::probes): `/live`, `/ready`, `/health` (JSON:
//! leadership, last sync and reconcile, orphans), `/metrics`, plus `/fatmen` (each fatman's
//! status and last check time), served by every replica, leader or not.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, HttpResponse};
use racetrack_telemetry::probes::{self, Fields, ProbeFuture, Readiness, ServiceProbes};
use serde_json::{json, Value};

use crate::Supervisor;

struct SupervisorProbes(Arc<Supervisor>);

impl SupervisorProbes {
    /// Whether Lifecycle answered the last lease request (every replica asks at least every
    /// `LEASE_RETRY_SECS`): without it the supervisor can neither lead nor sync.
    fn lifecycle_ok(&self) -> bool {
        self.0.lifecycle_ok.load(Ordering::SeqCst)
    }
}

fn fields(value: Value) -> Fields {
    match value {
        Value::Object(map) => map,
        _ => Fields::new(),
    }
}

impl ServiceProbes for SupervisorProbes {
    /// Ready when Lifecycle answers.
    fn ready(&self) -> ProbeFuture<'_, Readiness> {
        Box::pin(async move {
            let leader = fields(json!({"leader": self.0.leadership.is_leader()}));
            if self.lifecycle_ok() {
                Ok(leader)
            } else {
                Err((leader, "Lifecycle unreachable".into()))
            }
        })
    }

    fn health(&self) -> ProbeFuture<'_, (bool, Fields)> {
        Box::pin(async move {
            let sup = &self.0;
            let lifecycle = self.lifecycle_ok();
            let report = sup.report();
            let config = &sup.config;
            let body = json!({
                "service": "lifecycle-supervisor",
                "git_version": config.git_version,
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
            (lifecycle, fields(body))
        })
    }
}

/// Every registered fatman as the supervisor last saw it: status, error and `last_check_time`
/// (unix seconds; `null` = never checked, e.g. while a deployment of it runs), as Lifecycle
/// lists them.
async fn fatmen(sup: web::Data<Arc<Supervisor>>) -> HttpResponse {
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

/// The probes server on an already bound listener.
pub fn server(sup: Arc<Supervisor>, listener: TcpListener) -> std::io::Result<Server> {
    let telemetry = sup.telemetry.clone();
    let data = web::Data::new(sup.clone());
    probes::server(
        listener,
        telemetry,
        Arc::new(SupervisorProbes(sup)),
        move |cfg| {
            cfg.app_data(data.clone())
                .route("/fatmen", web::get().to(fatmen));
        },
    )
}
