//! Lifecycle: Racetrack's source of truth. Config → wiring (here) → handlers (`api`).

pub mod accounts;
pub mod api;
pub mod bootstrap;
pub mod caller;
pub mod config;
pub mod error;
pub mod registry;
pub mod state;
pub mod subjects;

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
    pub state: web::Data<AppState>,
}

/// Connects to the database, migrates it, prepares the auth key and the first admin.
pub fn prepare(config: Config) -> anyhow::Result<web::Data<AppState>> {
    let state = prepare_state(config)?;
    bootstrap::first_admin(&state)?;
    Ok(state)
}

/// Like [`prepare`] without creating the first admin (admin commands).
pub fn prepare_state(config: Config) -> anyhow::Result<web::Data<AppState>> {
    let db = Database::connect(&config.database_url, config.database_max_connections)?;
    let applied = db.migrate()?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database migrated");
    }
    let auth_key = bootstrap::auth_key(&config, db.backend())?;
    let metrics = Arc::new(Metrics::new("lifecycle"));
    Ok(web::Data::new(AppState::new(
        config, db, &auth_key, metrics,
    )))
}

/// Binds the listener and starts serving.
pub fn start(state: web::Data<AppState>) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(state.config.http_addr)?;
    let addr = listener.local_addr()?;
    let json_limit = state.config.max_body_bytes;
    let workers = state.config.http_workers.max(1);
    let app_state = state.clone();
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
    .listen(listener)?
    .run();
    tracing::info!(%addr, "lifecycle listening");
    Ok(Running {
        server,
        addr,
        state,
    })
}
