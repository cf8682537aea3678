//! `image-builder`: serves the ImageBuilder gRPC API and the HTTP probes until SIGTERM/Ctrl-C.
//! Configuration comes from environment variables (see `image_builder::config`).

use std::time::Duration;

use image_builder::{App, Config};
use racetrack_config::cli::{self, ServiceCommand};

/// How long a stopping server waits for open gRPC streams (running builds) to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

const ABOUT: &str = "image-builder: builds fatman images through the Docker engine and pushes \
                     them (gRPC on GRPC_ADDR; probes and /metrics on HTTP_ADDR)";

fn main() {
    let command = cli::parse("image-builder", ABOUT);
    if let Err(err) = run(command) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(command: ServiceCommand) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    if command == ServiceCommand::CheckConfig {
        println!("{config:#?}");
    }
    config.check_files().map_err(|e| e.to_string())?;
    if config.auth_token.is_none() {
        return Err(
            "IMAGE_BUILDER_TOKEN is required: the internal token the Lifecycle sends (its own \
             IMAGE_BUILDER_TOKEN); generate one, e.g. `openssl rand -hex 32`"
                .into(),
        );
    }
    if command == ServiceCommand::CheckConfig {
        return Ok(());
    }
    let _telemetry = racetrack_telemetry::init("image-builder").map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("can't start the async runtime: {e}"))?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), String> {
    let app = App::new(config);
    app.prepare_dirs()?;
    let catalog = app.builder.job_types();
    for problem in &catalog.problems {
        tracing::warn!(%problem, "job type skipped");
    }
    tracing::info!(job_types = ?catalog.names(), dir = %app.config.job_types_dir.display(), "job types loaded");
    if app.config.build_network_mode.as_deref() == Some("host") {
        tracing::warn!("BUILD_NETWORK_MODE=host: build steps reach every service on this host's loopback (registry, this service, Redis, fatmen)");
    }
    if let Err(e) = app.docker.ping().await {
        tracing::warn!(error = %e, "Docker engine not reachable yet; builds will wait for it");
    }

    let grpc_listener = tokio::net::TcpListener::bind(app.config.grpc_addr)
        .await
        .map_err(|e| format!("can't listen on GRPC_ADDR {}: {e}", app.config.grpc_addr))?;
    let http_listener = std::net::TcpListener::bind(app.config.http_addr)
        .map_err(|e| format!("can't listen on HTTP_ADDR {}: {e}", app.config.http_addr))?;
    let http = image_builder::http::server(app.clone(), http_listener)
        .map_err(|e| format!("can't start the HTTP server: {e}"))?;
    let http_handle = http.handle();
    tracing::info!(grpc = %app.config.grpc_addr, http = %app.config.http_addr, "image-builder listening");

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let grpc_app = app.clone();
    let mut grpc_task = tokio::spawn(async move {
        grpc_app
            .serve_grpc(grpc_listener, async move {
                let _ = stop_rx.wait_for(|v| *v).await;
            })
            .await
    });
    let http_task = tokio::spawn(http);
    let early_end = tokio::select! {
        result = &mut grpc_task => Some(result),
        _ = racetrack_telemetry::shutdown_signal() => None,
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    http_handle.stop(true).await;
    let _ = http_task.await;
    let result = match early_end {
        Some(result) => result,
        // Open Build streams keep the server up; builds can take long, so wait only a while.
        None => match tokio::time::timeout(SHUTDOWN_GRACE, &mut grpc_task).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    "builds still streaming after {} s; exiting",
                    SHUTDOWN_GRACE.as_secs()
                );
                grpc_task.abort();
                Ok(Ok(()))
            }
        },
    };
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("gRPC server failed: {e}")),
        Err(e) => Err(format!("gRPC server task failed: {e}")),
    }
}
