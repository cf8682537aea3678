//! Lifecycle: Racetrack's source of truth. Config → wiring (here) → adapters (`api` for REST,
//! `grpc`) → operations (`app`, free of actix and tonic) → storage (`racetrack_db`); see
//! docs/architecture.md, "Lifecycle's layers".

pub mod api;
pub mod app;
pub mod bootstrap;
pub mod config;
pub mod deploy;
pub mod error;
pub mod events;
pub mod grpc;
pub mod grpc_dashboard;
pub mod grpc_supervision;
pub mod state;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use racetrack_db::Database;
use racetrack_telemetry::{Metrics, RequestTelemetry};

use crate::config::Config;
use crate::state::AppState;

/// A started (not yet awaited) server and the address it listens on.
pub struct Running {
    pub server: Server,
    pub addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub state: Arc<AppState>,
}

/// Connects to the database, migrates it, prepares the auth key and the first admin.
pub fn prepare(config: Config) -> anyhow::Result<Arc<AppState>> {
    let state = prepare_state(config)?;
    // This process is the one running deployments from now on: earlier in-progress ones died.
    let interrupted = app::deployments::fail_interrupted(&mut *state.db.get()?)
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    if interrupted > 0 {
        tracing::warn!(
            count = interrupted,
            "marked deployments interrupted by a restart as failed"
        );
    }
    let backfilled = app::fatmen::backfill_manifest_json(&mut *state.db.get()?)
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    if backfilled > 0 {
        tracing::info!(
            count = backfilled,
            "stored the normalised manifests of fatmen deployed before they were kept"
        );
    }
    bootstrap::first_admin(&state)?;
    Ok(state)
}

/// Like [`prepare`] without creating the first admin (admin commands).
pub fn prepare_state(config: Config) -> anyhow::Result<Arc<AppState>> {
    let db = Database::connect(&config.database_url, config.database_max_connections)?;
    let applied = db.migrate()?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database migrated");
    }
    let auth_key = bootstrap::auth_key(&config, db.backend())?;
    let metrics = Arc::new(Metrics::new("lifecycle"));
    let targets = infrastructure_targets(&config);
    let events = racetrack_events::Publisher::new(config.redis_url.as_deref())?;
    let mut state = AppState::new(config, db, &auth_key, metrics);
    state.targets = targets;
    state.events = events;
    Ok(Arc::new(state))
}

/// The infrastructure targets this installation deploys to (Docker now; Kubernetes later).
fn infrastructure_targets(
    config: &Config,
) -> std::collections::BTreeMap<String, Arc<dyn racetrack_infra::InfrastructureTarget>> {
    let mut targets: std::collections::BTreeMap<
        String,
        Arc<dyn racetrack_infra::InfrastructureTarget>,
    > = Default::default();
    let docker_config = racetrack_infra::DockerTargetConfig {
        network: config.docker_network.clone(),
        pull: config.docker_pull,
        ..Default::default()
    };
    match racetrack_infra::DockerTarget::connect(docker_config) {
        Ok(docker) => {
            targets.insert("docker".into(), Arc::new(docker));
        }
        Err(e) => tracing::warn!(error = %e, "the docker infrastructure target is unavailable"),
    }
    targets
}

/// Binds the listener and starts serving.
pub fn start(state: Arc<AppState>) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(state.config.http_addr)?;
    let addr = listener.local_addr()?;
    let json_limit = state.config.max_body_bytes;
    let workers = state.config.http_workers.max(1);
    let app_state = web::Data::from(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(json_limit)
                    .error_handler(|err, _| error::json_error(err)),
            )
            .app_data(web::PathConfig::default().error_handler(|err, _| error::path_error(err)))
            .app_data(web::QueryConfig::default().error_handler(|err, _| error::query_error(err)))
            .wrap(RequestTelemetry::new(app_state.metrics.clone()))
            .configure(api::configure)
    })
    .workers(workers)
    // On SIGTERM/Ctrl-C actix stops accepting and lets requests in flight finish within this.
    .shutdown_timeout(state.config.shutdown_timeout.as_secs());
    let server = match &state.config.tls {
        Some((cert, key)) => {
            let tls = racetrack_tls::server_config(cert, key, &[b"http/1.1"])?;
            server.listen_rustls_0_23(listener, std::sync::Arc::unwrap_or_clone(tls))?
        }
        None => server.listen(listener)?,
    }
    .run();
    tracing::info!(%addr, "lifecycle listening");
    let grpc_addr = grpc::spawn(state.clone(), state.config.grpc_addr)?;
    Ok(Running {
        server,
        addr,
        grpc_addr,
        state,
    })
}
