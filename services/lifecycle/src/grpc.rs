//! Lifecycle's internal gRPC API (`proto/lifecycle.proto`): what PUB asks on a cache miss.
//! Only internal service tokens may use it. The listener also serves `Supervision`
//! (`grpc_supervision.rs`) and `Dashboard` (`grpc_dashboard.rs`), all with [`status_of`].

use std::net::SocketAddr;
use std::sync::Arc;

use racetrack_proto::lifecycle::call_decision::Outcome;
use racetrack_proto::lifecycle::lifecycle_server::{Lifecycle, LifecycleServer};
use racetrack_proto::lifecycle::{
    AuthorizeCallRequest, CallDecision, FatmanRoute, ResolveFatmanRequest,
};
use tonic::{Request, Response, Status};

use crate::app::permissions::{self, CallDecision as Decision};
use crate::app::{self, fatmen, AppError, Denial};
use crate::state::AppState;

/// Metadata key carrying the calling service's internal token.
pub const AUTH_METADATA: &str = "x-racetrack-auth";

pub struct LifecycleApi {
    state: Arc<AppState>,
}

impl LifecycleApi {
    pub fn new(state: Arc<AppState>) -> LifecycleServer<LifecycleApi> {
        LifecycleServer::new(LifecycleApi { state })
    }
}

/// The calling service's token (its authorization is each operation's own check).
fn service_token<T>(req: &Request<T>) -> Result<String, Status> {
    req.metadata()
        .get(AUTH_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .ok_or_else(|| Status::unauthenticated("internal token missing in x-racetrack-auth"))
}

/// The one mapping of the application layer's errors to gRPC statuses, for every gRPC service
/// Lifecycle serves. Messages are fit to show a user (the dashboard does); an internal error's
/// details go to the log only.
pub fn status_of(err: AppError) -> Status {
    match err {
        AppError::Unauthenticated(_) => Status::unauthenticated(err.to_string()),
        AppError::Forbidden(_) => Status::permission_denied(err.to_string()),
        AppError::NotFound(m) => Status::not_found(m),
        AppError::AlreadyExists(m) => Status::already_exists(m),
        AppError::Validation(_) | AppError::BadRequest(_) | AppError::PayloadTooLarge(_) => {
            Status::invalid_argument(err.to_string())
        }
        AppError::TooManyRequests(_) => Status::resource_exhausted(err.to_string()),
        AppError::DeploymentFailed(m) => Status::aborted(m),
        AppError::Unavailable(m) => {
            tracing::warn!(error = %m, "grpc request failed");
            Status::unavailable(m)
        }
        AppError::Internal(details) => {
            tracing::error!(error = %details, "grpc request failed");
            Status::internal("internal error")
        }
    }
}

#[tonic::async_trait]
impl Lifecycle for LifecycleApi {
    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().name, version = %req.get_ref().version))]
    async fn resolve_fatman(
        &self,
        req: Request<ResolveFatmanRequest>,
    ) -> Result<Response<FatmanRoute>, Status> {
        let token = service_token(&req)?;
        let ResolveFatmanRequest { name, version } = req.into_inner();
        let (f, public_endpoints) =
            app::as_caller(&self.state, Some(token), move |conn, _, caller| {
                fatmen::route(conn, caller, &name, &version)
            })
            .await
            .map_err(status_of)?;
        Ok(Response::new(FatmanRoute {
            id: f.id,
            name: f.name,
            version: f.version,
            status: f.status.to_string(),
            internal_name: f.internal_name.unwrap_or_default(),
            public_endpoints,
        }))
    }

    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().fatman_name, version = %req.get_ref().fatman_version))]
    async fn authorize_call(
        &self,
        req: Request<AuthorizeCallRequest>,
    ) -> Result<Response<CallDecision>, Status> {
        let service = service_token(&req)?;
        let r = req.into_inner();
        let debug = self.state.config.auth_debug;
        let decision = app::as_caller(&self.state, Some(service), move |conn, state, caller| {
            permissions::authorize_call(
                conn,
                &state.signer,
                caller,
                Some(&r.token),
                &r.fatman_name,
                &r.fatman_version,
                &r.endpoint,
            )
        })
        .await
        .map_err(status_of)?;
        Ok(Response::new(match decision {
            Decision::Allowed(caller) => CallDecision {
                outcome: Outcome::Allowed.into(),
                reason: String::new(),
                subject_type: caller.subject_type_name().to_string(),
                subject_name: caller.subject_name().to_string(),
                subject_id: caller.subject_id().to_string(),
            },
            Decision::Unauthenticated(d) => denial(Outcome::Unauthenticated, &d, debug),
            Decision::Forbidden(d) => denial(Outcome::Forbidden, &d, debug),
        }))
    }
}

/// Like `/auth/allowed/*`: the reason's details only with AUTH_DEBUG.
fn denial(outcome: Outcome, denial: &Denial, debug: bool) -> CallDecision {
    CallDecision {
        outcome: outcome.into(),
        reason: denial.shown(debug),
        ..Default::default()
    }
}

/// Serves the gRPC API on its own small runtime, so it shares nothing with actix's workers.
pub fn spawn(state: Arc<AppState>, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lifecycle-grpc")
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("lifecycle-grpc".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "grpc listener unusable");
                        return;
                    }
                };
                // No Nagle: a reply written in several segments otherwise waits out the peer's
                // delayed ACK (~40 ms), which showed as the dashboard's p95 (bench/dashboard.py).
                let incoming = tokio_stream::StreamExt::map(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    |conn| {
                        conn.inspect(|stream| {
                            if let Err(e) = stream.set_nodelay(true) {
                                tracing::debug!(error = %e, "TCP_NODELAY not set");
                            }
                        })
                    },
                );
                // A span per call, child of the caller's (PUB's call span): docs/architecture.md,
                // "Tracing".
                if let Err(e) = tonic::transport::Server::builder()
                    .trace_fn(racetrack_telemetry::grpc_server_span)
                    .add_service(LifecycleApi::new(state.clone()))
                    .add_service(crate::grpc_supervision::SupervisionApi::new(state.clone()))
                    .add_service(crate::grpc_dashboard::DashboardApi::new(state))
                    .serve_with_incoming(incoming)
                    .await
                {
                    tracing::error!(error = %e, "grpc server stopped");
                }
            })
        })?;
    tracing::info!(addr = %bound, "lifecycle gRPC listening");
    Ok(bound)
}
