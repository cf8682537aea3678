//! `dashboard`: the Racetrack dashboard and admin panel on `DASHBOARD_ADDR` (default :7103).
//! Configuration comes from environment variables (see `dashboard::config`).

use dashboard::config::Config;
use racetrack_config::cli::{self, ServiceCommand};

const ABOUT: &str = "dashboard: Racetrack's web UI and admin panel, over Lifecycle's gRPC API \
                     with each signed-in user's own token";

fn main() {
    let command = cli::parse("dashboard", ABOUT);
    if let Err(err) = run(command) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(command: ServiceCommand) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    if command == ServiceCommand::CheckConfig {
        println!("{config:#?}");
        return Ok(());
    }
    let _telemetry = racetrack_telemetry::init("dashboard").map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("can't start the async runtime: {e}"))?;
    runtime.block_on(async move {
        tracing::info!(?config, "starting the dashboard");
        let listener = std::net::TcpListener::bind(config.addr)
            .map_err(|e| format!("can't listen on DASHBOARD_ADDR {}: {e}", config.addr))?;
        let server = dashboard::server(config, listener)?;
        server.await.map_err(|e| format!("server failed: {e}"))
    })
}
