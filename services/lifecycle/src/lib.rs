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

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use racetrack_db::Database;
use racetrack_telemetry::{Metrics, RequestTelemetry};

use crate::config::{Config, TargetKind};
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
    let state = prepare_with(config, true)?;
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

/// Like [`prepare`] without creating the first admin (admin commands): no infrastructure target
/// is set up, since no admin command deploys.
pub fn prepare_state(config: Config) -> anyhow::Result<Arc<AppState>> {
    prepare_with(config, false)
}

fn prepare_with(config: Config, connect_targets: bool) -> anyhow::Result<Arc<AppState>> {
    let db = Database::connect(&config.database_url, config.database_max_connections)?;
    let applied = db.migrate()?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database migrated");
    }
    let auth_key = bootstrap::auth_key(&config, db.backend())?;
    let metrics = Arc::new(Metrics::new("lifecycle"));
    let targets = if connect_targets {
        infrastructure_targets(&config)
    } else {
        Targets::default()
    };
    let events = racetrack_events::Publisher::new(config.redis_url.as_deref())?;
    let mut state = AppState::new(config, db, &auth_key, metrics);
    state.targets = targets.available;
    state.unavailable_targets = targets.unavailable;
    state.events = events;
    Ok(Arc::new(state))
}

type TargetMap = BTreeMap<String, Arc<dyn racetrack_infra::InfrastructureTarget>>;

/// The enabled infrastructure targets: those set up, and those that failed with the reason.
#[derive(Default)]
struct Targets {
    available: TargetMap,
    unavailable: BTreeMap<String, String>,
}

/// Sets up each target `INFRASTRUCTURE_TARGETS` enables. One that fails is logged and left out
/// (deploys to it then fail naming the reason): Lifecycle still serves everything else.
fn infrastructure_targets(config: &Config) -> Targets {
    let mut targets = Targets::default();
    for kind in &config.infrastructure_targets {
        let connected: Result<Arc<dyn racetrack_infra::InfrastructureTarget>, String> = match kind {
            TargetKind::Docker => {
                racetrack_infra::DockerTarget::connect(racetrack_infra::DockerTargetConfig {
                    network: config.docker_network.clone(),
                    pull: config.docker_pull,
                    ..Default::default()
                })
                .map(|t| Arc::new(t) as _)
                .map_err(|e| e.to_string())
            }
            TargetKind::Kubernetes => {
                connect_kubernetes(config.kubernetes.clone()).map(|t| Arc::new(t) as _)
            }
        };
        match connected {
            Ok(target) => {
                tracing::info!(infra_target = %kind, "infrastructure target ready");
                targets.available.insert(kind.as_str().to_string(), target);
            }
            Err(reason) => {
                tracing::warn!(infra_target = %kind, error = %reason, "infrastructure target is unavailable");
                targets
                    .unavailable
                    .insert(kind.as_str().to_string(), reason);
            }
        }
    }
    targets
}

/// `KubernetesTarget::connect` from this synchronous start-up code. The client must be built
/// inside the runtime that will drive its connections (the caller's: actix's main runtime, or a
/// test's), yet a current-thread runtime cannot be blocked on from its own thread; so the
/// connecting runs on a helper thread entering that runtime. Reading the kubeconfig or the
/// service account files does no asynchronous I/O, so nothing waits for the blocked runtime.
fn connect_kubernetes(
    config: racetrack_infra::KubernetesTargetConfig,
) -> Result<racetrack_infra::KubernetesTarget, String> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| "no async runtime to run the Kubernetes client on".to_string())?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || handle.block_on(racetrack_infra::KubernetesTarget::connect(config)))
            .join()
    })
    .map_err(|_| "connecting to the Kubernetes API panicked".to_string())?
    .map_err(|e| e.to_string())
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
