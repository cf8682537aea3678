//! `lifecycle-supervisor`: keeps fatman statuses true to the infrastructure, removes orphans and
//! re-provisions lost fatmen while it leads; serves probes and metrics until SIGTERM/Ctrl-C.
//! Configuration comes from environment variables (see `lifecycle_supervisor::config`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lifecycle_supervisor::config::Config;
use lifecycle_supervisor::leader;
use lifecycle_supervisor::Supervisor;
use racetrack_config::cli::{self, ServiceCommand};

const ABOUT: &str = "lifecycle-supervisor: syncs fatman statuses with the infrastructure, \
                     removes orphans, re-provisions lost fatmen through Lifecycle (one leader \
                     among replicas); probes and /metrics on HTTP_ADDR";

fn main() {
    let command = cli::parse("lifecycle-supervisor", ABOUT);
    if let Err(err) = run(command) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(command: ServiceCommand) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    if command == ServiceCommand::CheckConfig {
        println!("{config:#?}");
        return config.check_required();
    }
    let _telemetry =
        racetrack_telemetry::init("lifecycle-supervisor").map_err(|e| e.to_string())?;
    // One thread is plenty: the work is waiting on HTTP, Docker and Lifecycle. Fewer threads
    // also means fewer malloc arenas: idle RSS stays low after a check of hundreds of fatmen.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .map_err(|e| format!("can't start the async runtime: {e}"))?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), String> {
    tracing::info!(?config, "starting the lifecycle supervisor");
    let listener = std::net::TcpListener::bind(config.http_addr)
        .map_err(|e| format!("can't listen on HTTP_ADDR {}: {e}", config.http_addr))?;
    let sup = Arc::new(Supervisor::prepare(config).await?);
    let stop = Arc::new(AtomicBool::new(false));
    let server = lifecycle_supervisor::http::server(sup.clone(), listener)
        .map_err(|e| format!("can't start the HTTP server: {e}"))?;
    let server_handle = server.handle();
    let server_task = tokio::spawn(server);
    tracing::info!(addr = %sup.config.http_addr, "lifecycle supervisor listening");

    let leader_task = tokio::spawn(leader::run(sup.clone(), stop.clone()));
    let sync_task = tokio::spawn(sup.clone().sync_loop(stop.clone()));
    let reconcile_task = tokio::spawn(sup.clone().reconcile_loop(stop.clone()));
    let watch_task = sup
        .config
        .watch_events
        .then(|| tokio::spawn(sup.clone().watch_loop(stop.clone())));

    racetrack_telemetry::shutdown_signal().await;
    tracing::info!("stopping");
    stop.store(true, Ordering::SeqCst);
    sup.stopping.notify_waiters();
    // The leadership is released first so another replica can take over at once.
    let _ = tokio::time::timeout(Duration::from_secs(5), leader_task).await;
    sync_task.abort();
    reconcile_task.abort();
    if let Some(task) = watch_task {
        task.abort();
    }
    server_handle.stop(true).await;
    let _ = server_task.await;
    Ok(())
}
