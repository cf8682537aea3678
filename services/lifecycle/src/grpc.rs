//! Lifecycle's internal gRPC API (`proto/lifecycle.proto`): what PUB asks on a cache miss.
//! Only internal service tokens may use it.

use std::net::SocketAddr;

use actix_web::web;
use racetrack_db::repo::fatmen;
use racetrack_model::AuthScope;
use racetrack_proto::lifecycle::call_decision::Outcome;
use racetrack_proto::lifecycle::lifecycle_server::{Lifecycle, LifecycleServer};
use racetrack_proto::lifecycle::{
    AuthorizeCallRequest, CallDecision, FatmanRoute, ResolveFatmanRequest,
};
use tonic::{Request, Response, Status};

use crate::api::with_db;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Metadata key carrying the calling service's internal token.
pub const AUTH_METADATA: &str = "x-racetrack-auth";

pub struct LifecycleApi {
    state: web::Data<AppState>,
}

impl LifecycleApi {
    pub fn new(state: web::Data<AppState>) -> LifecycleServer<LifecycleApi> {
        LifecycleServer::new(LifecycleApi { state })
    }

    /// The caller must be a Racetrack service whose stored internal token holds `authorize_calls`
    /// (PUB's scope); unstored, revoked or otherwise scoped tokens are refused.
    async fn require_service<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let token = req
            .metadata()
            .get(AUTH_METADATA)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Status::unauthenticated("internal token missing in x-racetrack-auth"))?
            .to_string();
        with_db(self.state.clone(), move |conn, state| {
            let caller = crate::caller::authenticate(conn, state, Some(&token))?;
            if !matches!(caller, Caller::Internal { .. }) {
                return Err(ApiError::Forbidden(
                    "only internal service tokens may use this API".into(),
                ));
            }
            crate::caller::require_scope(&caller, AuthScope::AuthorizeCalls)
        })
        .await
        .map_err(|e| match e {
            ApiError::Unauthenticated(m) => {
                Status::unauthenticated(format!("invalid internal token: {m}"))
            }
            ApiError::Forbidden(m) => Status::permission_denied(m),
            other => status_of(other),
        })
    }
}

fn status_of(err: ApiError) -> Status {
    match err {
        ApiError::NotFound(m) => Status::not_found(m),
        ApiError::Validation(_) | ApiError::BadRequest(_) => {
            Status::invalid_argument(err.to_string())
        }
        other => {
            tracing::error!(error = %other, "grpc request failed");
            Status::unavailable(other.to_string())
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
        self.require_service(&req).await?;
        let ResolveFatmanRequest { name, version } = req.into_inner();
        let route = with_db(self.state.clone(), move |conn, _| {
            let f = crate::registry::resolve_fatman(conn, &name, &version)?;
            let public_endpoints = fatmen::active_public_endpoints(conn, &f.id)?
                .into_iter()
                .map(|e| racetrack_auth::permission::normalize_endpoint(&e.endpoint))
                .collect();
            Ok(FatmanRoute {
                id: f.id,
                name: f.name,
                version: f.version,
                status: f.status.to_string(),
                internal_name: f.internal_name.unwrap_or_default(),
                public_endpoints,
            })
        })
        .await
        .map_err(status_of)?;
        Ok(Response::new(route))
    }

    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().fatman_name, version = %req.get_ref().fatman_version))]
    async fn authorize_call(
        &self,
        req: Request<AuthorizeCallRequest>,
    ) -> Result<Response<CallDecision>, Status> {
        self.require_service(&req).await?;
        let r = req.into_inner();
        let debug = self.state.config.auth_debug;
        let token = Some(r.token).filter(|t| !t.is_empty());
        let endpoint = racetrack_auth::permission::normalize_endpoint(&r.endpoint);
        let result = with_db(self.state.clone(), move |conn, state| {
            crate::calls::check_allowed_scope(
                conn,
                state,
                token.as_deref(),
                &r.fatman_name,
                &r.fatman_version,
                AuthScope::CallFatman,
                Some(&endpoint),
            )
        })
        .await;
        let decision = match result {
            Ok(caller) => {
                let (subject_id, subject_name) = match &caller {
                    Caller::Internal {
                        subject_id,
                        service,
                        ..
                    } => (subject_id.clone(), service.clone()),
                    Caller::Subject {
                        subject_id, name, ..
                    } => (subject_id.clone(), name.clone()),
                };
                CallDecision {
                    outcome: Outcome::Allowed.into(),
                    reason: String::new(),
                    subject_type: caller.subject_type_name().to_string(),
                    subject_name,
                    subject_id,
                }
            }
            Err(ApiError::Unauthenticated(msg)) => denial(Outcome::Unauthenticated, msg, debug),
            Err(ApiError::Forbidden(msg)) => denial(Outcome::Forbidden, msg, debug),
            Err(other) => return Err(status_of(other)),
        };
        Ok(Response::new(decision))
    }
}

/// Like `/auth/allowed/*`: the reason's details only with AUTH_DEBUG.
fn denial(outcome: Outcome, msg: String, debug: bool) -> CallDecision {
    let reason = if debug {
        msg
    } else {
        msg.split(": ").next().unwrap_or_default().to_string()
    };
    CallDecision {
        outcome: outcome.into(),
        reason,
        ..Default::default()
    }
}

/// Serves the gRPC API on its own small runtime, so it shares nothing with actix's workers.
pub fn spawn(state: web::Data<AppState>, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
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
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                // A span per call, child of the caller's (PUB's call span): docs/architecture.md,
                // "Tracing".
                if let Err(e) = tonic::transport::Server::builder()
                    .trace_fn(racetrack_telemetry::grpc_server_span)
                    .add_service(LifecycleApi::new(state))
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
