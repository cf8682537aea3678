//! The `Supervision` gRPC service (`proto/supervisor.proto`) for the lifecycle supervisor: a thin
//! adapter over [`crate::app::supervision`]. Every call needs a stored internal token with
//! `supervise_fatmen` (the supervisor's); `Reprovision` also checks `reprovision_fatman`.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use racetrack_model::{AuthScope, FatmanStatus as ModelStatus};
use racetrack_proto::supervisor::supervision_server::{Supervision, SupervisionServer};
use racetrack_proto::supervisor::{
    AcquireLeaseRequest, FatmanRef, FatmanStatus, FatmenList, LeaseGrant, ListFatmenRequest,
    ObservationReport, ReleaseLeaseRequest, ReleaseLeaseResponse, ReportOutcome,
    ReprovisionRequest, ReprovisionResponse, SupervisedFatman,
};
use tonic::{Request, Response, Status};

use crate::app::supervision::{self, SupervisionError};
use crate::app::{AppError, Caller, Denial};
use crate::grpc::AUTH_METADATA;
use crate::state::AppState;

pub struct SupervisionApi {
    state: Arc<AppState>,
}

impl SupervisionApi {
    pub fn new(state: Arc<AppState>) -> SupervisionServer<SupervisionApi> {
        SupervisionServer::new(SupervisionApi { state })
    }

    /// The caller must be a Racetrack service whose stored internal token holds
    /// `supervise_fatmen`; others get PERMISSION_DENIED, no or unknown tokens UNAUTHENTICATED.
    async fn supervisor<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        let token = req
            .metadata()
            .get(AUTH_METADATA)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Status::unauthenticated("internal token missing in x-racetrack-auth"))?
            .to_string();
        self.blocking(move |conn, state| {
            let caller = crate::app::permissions::authenticate(conn, &state.signer, Some(&token))?;
            if !matches!(caller, Caller::Internal { .. }) {
                return Err(AppError::Forbidden(Denial::new(
                    "only internal service tokens may use this API",
                ))
                .into());
            }
            crate::app::permissions::require_scope(&caller, AuthScope::SuperviseFatmen)?;
            Ok(caller)
        })
        .await
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut racetrack_db::DbConnection, &AppState) -> Result<T, SupervisionError>
            + Send
            + 'static,
    {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().map_err(SupervisionError::from)?;
            f(&mut conn, &state)
        })
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?
        .map_err(status_of)
    }
}

/// The supervisor's own refusals, then [`crate::grpc::status_of`] (a report that no longer
/// applies is a failed precondition for the supervisor, not bad input).
fn status_of(err: SupervisionError) -> Status {
    match err {
        SupervisionError::Invalid(m) => Status::invalid_argument(m),
        SupervisionError::NotLeader(m) => Status::failed_precondition(m),
        SupervisionError::App(e @ (AppError::Validation(_) | AppError::BadRequest(_))) => {
            Status::failed_precondition(e.to_string())
        }
        SupervisionError::App(e) => crate::grpc::status_of(e),
    }
}

fn nanos(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn from_nanos(n: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_nanos(n).naive_utc()
}

fn model_status(s: i32, what: &str) -> Result<ModelStatus, Status> {
    FatmanStatus::try_from(s)
        .ok()
        .and_then(|s| ModelStatus::try_from(s).ok())
        .ok_or_else(|| Status::invalid_argument(format!("{what}: a fatman status is required")))
}

fn secs(s: f64, what: &str) -> Result<Duration, Status> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| Status::invalid_argument(format!("{what} must be a non-negative number")))
}

fn report_of(r: ObservationReport) -> Result<supervision::Report, Status> {
    let mut changes = Vec::with_capacity(r.changes.len());
    for c in r.changes {
        let o = c.observed.unwrap_or_default();
        changes.push(supervision::StatusChange {
            read_status: model_status(c.read_status, "read_status")?,
            read_update_time: from_nanos(c.read_update_time_nanos),
            observed: supervision::Observed {
                status: model_status(o.status, "observed status")?,
                error: o.error,
                internal_name: o.internal_name,
                infrastructure_target: o.infrastructure_target,
                last_call_time: o.last_call_time_nanos.map(from_nanos),
            },
            id: c.id,
            name: c.name,
            version: c.version,
        });
    }
    Ok(supervision::Report {
        lease: r.lease,
        holder: r.holder,
        changes,
        checked: r.checked_ids,
        new_orphans: r
            .new_orphans
            .into_iter()
            .map(|o| supervision::FoundOrphan {
                target: o.target,
                name: o.name,
                version: o.version,
                resource_name: o.resource_name,
                internal_name: o.internal_name,
                image: o.image,
                container_status: o.container_status,
            })
            .collect(),
        gone_orphans: r
            .gone_orphans
            .into_iter()
            .map(|o| supervision::GoneOrphan {
                id: o.id,
                name: o.name,
                version: o.version,
                target: o.target,
                removed: o.removed,
                found_at: o.found_at,
                grace_secs: o.grace_secs,
            })
            .collect(),
        reconcile_failures: r
            .reconcile_failures
            .into_iter()
            .map(|f| supervision::ReconcileFailure {
                name: f.name,
                version: f.version,
                error: f.error,
            })
            .collect(),
    })
}

#[tonic::async_trait]
impl Supervision for SupervisionApi {
    #[tracing::instrument(skip_all, fields(lease = %req.get_ref().name, holder = %req.get_ref().holder))]
    async fn acquire_lease(
        &self,
        req: Request<AcquireLeaseRequest>,
    ) -> Result<Response<LeaseGrant>, Status> {
        self.supervisor(&req).await?;
        let r = req.into_inner();
        let ttl = secs(r.ttl_secs, "ttl_secs")?;
        let lease = self
            .blocking(move |conn, _| supervision::acquire_lease(conn, &r.name, &r.holder, ttl))
            .await?;
        Ok(Response::new(LeaseGrant {
            granted: lease.granted,
            holder: lease.holder.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(lease = %req.get_ref().name, holder = %req.get_ref().holder))]
    async fn release_lease(
        &self,
        req: Request<ReleaseLeaseRequest>,
    ) -> Result<Response<ReleaseLeaseResponse>, Status> {
        self.supervisor(&req).await?;
        let r = req.into_inner();
        let released = self
            .blocking(move |conn, _| supervision::release_lease(conn, &r.name, &r.holder))
            .await?;
        Ok(Response::new(ReleaseLeaseResponse { released }))
    }

    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().name, version = %req.get_ref().version))]
    async fn list_fatmen(
        &self,
        req: Request<ListFatmenRequest>,
    ) -> Result<Response<FatmenList>, Status> {
        self.supervisor(&req).await?;
        let r = req.into_inner();
        let stale = secs(r.deployment_stale_secs, "deployment_stale_secs")?;
        let listing = self
            .blocking(move |conn, _| {
                let only = (!r.name.is_empty()).then_some((r.name.as_str(), r.version.as_str()));
                supervision::list_fatmen(conn, only, stale)
            })
            .await?;
        Ok(Response::new(FatmenList {
            fatmen: listing
                .fatmen
                .into_iter()
                .map(|(f, checked)| SupervisedFatman {
                    status: FatmanStatus::from(f.status) as i32,
                    has_manifest: f.manifest.is_some(),
                    create_time_nanos: nanos(f.create_time),
                    update_time_nanos: nanos(f.update_time),
                    last_call_time_nanos: f.last_call_time.map(nanos),
                    last_check_time_nanos: checked.map(nanos),
                    id: f.id,
                    name: f.name,
                    version: f.version,
                    error: f.error,
                    internal_name: f.internal_name,
                    infrastructure_target: f.infrastructure_target,
                    deployed_by: f.deployed_by,
                })
                .collect(),
            deploying: listing
                .deploying
                .into_iter()
                .map(|(name, version)| FatmanRef { name, version })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(holder = %req.get_ref().holder, changes = req.get_ref().changes.len()))]
    async fn report_observations(
        &self,
        req: Request<ObservationReport>,
    ) -> Result<Response<ReportOutcome>, Status> {
        let caller = self.supervisor(&req).await?;
        let report = report_of(req.into_inner())?;
        let outcome = self
            .blocking(move |conn, _| supervision::apply_report(conn, caller.username(), report))
            .await?;
        Ok(Response::new(ReportOutcome {
            written: outcome.written,
            superseded: outcome.superseded as u32,
            registered: outcome
                .registered
                .into_iter()
                .map(|(name, version)| FatmanRef { name, version })
                .collect(),
            dropped: outcome.dropped,
        }))
    }

    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().name, version = %req.get_ref().version))]
    async fn reprovision(
        &self,
        req: Request<ReprovisionRequest>,
    ) -> Result<Response<ReprovisionResponse>, Status> {
        let caller = self.supervisor(&req).await?;
        let r = req.into_inner();
        supervision::reprovision(&self.state, &caller, r.lease, r.holder, &r.name, &r.version)
            .await
            .map_err(status_of)?;
        Ok(Response::new(ReprovisionResponse {}))
    }
}
