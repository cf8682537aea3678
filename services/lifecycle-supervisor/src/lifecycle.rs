//! The supervisor's side of Lifecycle's `Supervision` gRPC API (`proto/supervisor.proto`;
//! docs/architecture.md, "The supervisor"): Lifecycle grants the leadership lease, lists the
//! fatmen, writes what the supervisor observed and re-provisions. The supervisor holds no
//! database connection and no `AUTH_KEY`; every call carries its internal token.

use std::collections::HashSet;
use std::time::Duration;

use chrono::NaiveDateTime;
use racetrack_proto::supervisor::supervision_client::SupervisionClient;
use racetrack_proto::supervisor::{
    AcquireLeaseRequest, FatmanStatus, ListFatmenRequest, ObservationReport, ReleaseLeaseRequest,
    ReportOutcome, ReprovisionRequest, SupervisedFatman,
};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::plan::FatmanRow;

/// Metadata key carrying the supervisor's internal token.
pub const AUTH_METADATA: &str = "x-racetrack-auth";

/// Why a call to Lifecycle failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LifecycleError {
    /// Lifecycle could not be reached or asked (no token, connection refused, timeout): every
    /// other call would fail alike.
    #[error("{0}")]
    Unreachable(String),
    /// Lifecycle answered with a refusal or a failure.
    #[error("Lifecycle answered {code:?}: {message}")]
    Refused { code: tonic::Code, message: String },
}

impl LifecycleError {
    fn of(status: tonic::Status, url: &str) -> LifecycleError {
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                LifecycleError::Unreachable(format!(
                    "Lifecycle at {url} is unreachable: {}",
                    status.message()
                ))
            }
            code => LifecycleError::Refused {
                code,
                message: status.message().to_string(),
            },
        }
    }
}

/// What Lifecycle lists: the registered fatmen and the versions a deploy is working on.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub rows: Vec<FatmanRow>,
    pub busy: HashSet<(String, String)>,
}

pub struct Lifecycle {
    client: SupervisionClient<Channel>,
    url: String,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
    token_error: Option<String>,
    timeout: Duration,
    reprovision_timeout: Duration,
    /// The lease's name and this replica's holder id, sent with every write.
    pub lease: String,
    pub holder: String,
}

pub fn nanos(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub fn from_nanos(n: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_nanos(n).naive_utc()
}

/// A status as the wire enum.
pub fn wire_status(s: racetrack_model::FatmanStatus) -> i32 {
    FatmanStatus::from(s) as i32
}

/// A listed row; `None` (skipped, logged) for a status this supervisor does not know.
fn row_of(f: SupervisedFatman) -> Option<FatmanRow> {
    let Some(status) = FatmanStatus::try_from(f.status)
        .ok()
        .and_then(|s| racetrack_model::FatmanStatus::try_from(s).ok())
    else {
        tracing::warn!(fatman = %f.name, version = %f.version, status = f.status, "Lifecycle listed a fatman with an unknown status; skipped");
        return None;
    };
    Some(FatmanRow {
        id: f.id,
        name: f.name,
        version: f.version,
        status,
        create_time: from_nanos(f.create_time_nanos),
        update_time: from_nanos(f.update_time_nanos),
        has_manifest: f.has_manifest,
        internal_name: f.internal_name,
        error: f.error,
        deployed_by: f.deployed_by,
        last_call_time: f.last_call_time_nanos.map(from_nanos),
        infrastructure_target: f.infrastructure_target,
        last_check_time: f.last_check_time_nanos.map(from_nanos),
    })
}

impl Lifecycle {
    /// Connects lazily: Lifecycle may start after the supervisor.
    pub fn new(
        url: &str,
        token: Option<&str>,
        timeout: Duration,
        reprovision_timeout: Duration,
        lease: &str,
        holder: &str,
    ) -> Result<Lifecycle, String> {
        let channel = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("LIFECYCLE_GRPC_URL {url:?}: {e}"))?
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        let (token, token_error) = match token {
            Some(t) => match t.parse() {
                Ok(v) => (Some(v), None),
                Err(_) => return Err("LIFECYCLE_AUTH_TOKEN is not a valid header value".into()),
            },
            None => (
                None,
                Some("LIFECYCLE_AUTH_TOKEN is not set: create one with `lifecycle generate-auth lifecycle-supervisor`".to_string()),
            ),
        };
        Ok(Lifecycle {
            client: SupervisionClient::new(channel),
            url: url.to_string(),
            token,
            token_error,
            timeout,
            reprovision_timeout,
            lease: lease.to_string(),
            holder: holder.to_string(),
        })
    }

    fn request<T>(&self, msg: T, timeout: Duration) -> Result<tonic::Request<T>, LifecycleError> {
        let token = self.token.clone().ok_or_else(|| {
            LifecycleError::Unreachable(self.token_error.clone().unwrap_or_default())
        })?;
        let mut req = tonic::Request::new(msg);
        req.set_timeout(timeout);
        req.metadata_mut().insert(AUTH_METADATA, token);
        // Lifecycle's span for this call becomes a child of the caller's (docs/architecture.md,
        // "Tracing").
        racetrack_telemetry::inject_grpc(&mut req);
        Ok(req)
    }

    async fn within<T>(
        &self,
        timeout: Duration,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, LifecycleError> {
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(LifecycleError::of(status, &self.url)),
            Err(_) => Err(LifecycleError::Unreachable(format!(
                "Lifecycle at {} did not answer within {timeout:?}",
                self.url
            ))),
        }
    }

    /// Takes or renews the lease; `Ok(true)` while this replica holds it.
    #[tracing::instrument(name = "supervision.acquire_lease", level = "debug", skip_all)]
    pub async fn acquire_lease(&self, ttl: Duration) -> Result<bool, LifecycleError> {
        let req = self.request(
            AcquireLeaseRequest {
                name: self.lease.clone(),
                holder: self.holder.clone(),
                ttl_secs: ttl.as_secs_f64(),
            },
            self.timeout,
        )?;
        let mut client = self.client.clone();
        let grant = self.within(self.timeout, client.acquire_lease(req)).await?;
        Ok(grant.granted)
    }

    #[tracing::instrument(name = "supervision.release_lease", skip_all)]
    pub async fn release_lease(&self) -> Result<bool, LifecycleError> {
        let req = self.request(
            ReleaseLeaseRequest {
                name: self.lease.clone(),
                holder: self.holder.clone(),
            },
            self.timeout,
        )?;
        let mut client = self.client.clone();
        Ok(self
            .within(self.timeout, client.release_lease(req))
            .await?
            .released)
    }

    /// Every registered fatman (or one version) and the deployments in progress.
    #[tracing::instrument(name = "supervision.list_fatmen", skip_all)]
    pub async fn list(
        &self,
        only: Option<(&str, &str)>,
        deployment_stale: Duration,
    ) -> Result<Listing, LifecycleError> {
        let (name, version) = only.unwrap_or(("", ""));
        let req = self.request(
            ListFatmenRequest {
                name: name.to_string(),
                version: version.to_string(),
                deployment_stale_secs: deployment_stale.as_secs_f64(),
            },
            self.timeout,
        )?;
        let mut client = self.client.clone();
        let list = self.within(self.timeout, client.list_fatmen(req)).await?;
        Ok(Listing {
            rows: list.fatmen.into_iter().filter_map(row_of).collect(),
            busy: list
                .deploying
                .into_iter()
                .map(|d| (d.name, d.version))
                .collect(),
        })
    }

    /// Sends a report (its lease and holder are filled in here).
    #[tracing::instrument(name = "supervision.report", skip_all)]
    pub async fn report(
        &self,
        mut report: ObservationReport,
    ) -> Result<ReportOutcome, LifecycleError> {
        report.lease = self.lease.clone();
        report.holder = self.holder.clone();
        let req = self.request(report, self.timeout)?;
        let mut client = self.client.clone();
        self.within(self.timeout, client.report_observations(req))
            .await
    }

    /// Asks Lifecycle to run the fatman's last image again; waits for the outcome.
    #[tracing::instrument(name = "supervision.reprovision", skip(self))]
    pub async fn reprovision(&self, name: &str, version: &str) -> Result<(), LifecycleError> {
        let req = self.request(
            ReprovisionRequest {
                lease: self.lease.clone(),
                holder: self.holder.clone(),
                name: name.to_string(),
                version: version.to_string(),
            },
            self.reprovision_timeout,
        )?;
        let mut client = self.client.clone();
        self.within(self.reprovision_timeout, client.reprovision(req))
            .await
            .map(|_| ())
    }
}
