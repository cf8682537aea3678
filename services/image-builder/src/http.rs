//! The HTTP side: the shared probes server (racetrack_telemetry::probes) with `/health` and
//! `/ready` following the Docker engine: without it no build can run.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use racetrack_telemetry::probes::{self, Fields, ProbeFuture, Readiness, ServiceProbes};
use serde_json::{json, Map};

use crate::App;

struct BuilderProbes(App);

impl ServiceProbes for BuilderProbes {
    fn ready(&self) -> ProbeFuture<'_, Readiness> {
        Box::pin(async move {
            self.0
                .docker
                .ping()
                .await
                .map(|()| Map::new())
                .map_err(|e| (Map::new(), e))
        })
    }

    fn health(&self) -> ProbeFuture<'_, (bool, Fields)> {
        Box::pin(async move {
            let docker = self.0.docker.ping().await;
            let mut body = Map::new();
            body.insert("service".into(), json!("image-builder"));
            body.insert("git_version".into(), json!(self.0.config.git_version));
            body.insert("docker_tag".into(), json!(self.0.config.racetrack_version));
            if let Err(e) = &docker {
                body.insert("details".into(), json!(e));
            }
            (docker.is_ok(), body)
        })
    }
}

/// The probes server on an already bound listener.
pub fn server(app: App, listener: TcpListener) -> std::io::Result<Server> {
    let telemetry = app.telemetry.clone();
    probes::server(listener, telemetry, Arc::new(BuilderProbes(app)), |_| {})
}
