//! Racetrack Image Builder: turns a fatman (code + `fatman.yaml`) into a container image.
//!
//! * gRPC (`GRPC_ADDR`, default `127.0.0.1:7101`): the `ImageBuilder` service of
//!   `proto/image_builder.proto` ([`grpc`]), for callers with the internal token only ([`auth`]).
//! * HTTP (`HTTP_ADDR`, default `127.0.0.1:7111`): `/health`, `/live`, `/ready`, `/metrics`
//!   ([`http`]).
//!
//! Configuration: [`config::Config`]. The algorithm: [`builder`].

pub mod auth;
pub mod builder;
pub mod builds;
pub mod config;
pub mod context;
pub mod docker;
pub mod extract;
pub mod git;
pub mod grpc;
pub mod http;
pub mod jobtype;
pub mod metrics;
pub mod naming;

pub mod template;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;

/// Everything the servers share.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub builder: Arc<builder::Builder>,
    pub store: Arc<builds::BuildStore>,
    pub docker: Arc<docker::DockerEngine>,
    pub telemetry: Arc<racetrack_telemetry::Metrics>,
}

impl App {
    /// Wires the parts together (no I/O; the Docker engine is connected to on first use).
    #[allow(
        clippy::expect_used,
        reason = "static metric definitions on a fresh registry: a failure is a programming error every test run catches"
    )]
    pub fn new(config: Config) -> App {
        let config = Arc::new(config);
        let telemetry = Arc::new(racetrack_telemetry::Metrics::new("image-builder"));
        let metrics = Arc::new(
            metrics::BuilderMetrics::register(telemetry.registry())
                .expect("image-builder metrics register on a fresh registry"),
        );
        let docker = Arc::new(docker::DockerEngine::new());
        let builder = Arc::new(builder::Builder::new(
            Arc::clone(&config),
            Arc::clone(&docker),
            metrics,
        ));
        let store = Arc::new(builds::BuildStore::new(
            config.finished_builds_kept,
            config.finished_build_ttl,
        ));
        App {
            config,
            builder,
            store,
            docker,
            telemetry,
        }
    }

    /// Creates the folders the builds write to.
    pub fn prepare_dirs(&self) -> Result<(), String> {
        for (var, dir) in [
            ("BUILD_LOGS_DIR", &self.config.build_logs_dir),
            ("WORKSPACES_DIR", &self.config.workspaces_dir),
        ] {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("can't create {var} {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// Serves gRPC on `listener` until `shutdown` completes.
    pub async fn serve_grpc(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let service =
            grpc::ImageBuilderService::new(Arc::clone(&self.builder), Arc::clone(&self.store));
        let check = auth::RequireToken::new(self.config.auth_token.as_ref().map(|t| t.0.as_str()));
        tonic::transport::Server::builder()
            .add_service(tonic::service::interceptor::InterceptedService::new(
                service.into_server(),
                check,
            ))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown,
            )
            .await
    }
}
