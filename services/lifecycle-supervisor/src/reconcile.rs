//! Reconcile (docs/architecture.md, "The supervisor"): every `RECONCILE_INTERVAL_SECS`, each `lost`
//! fatman that has a manifest is re-provisioned from its last built image. The supervisor asks
//! Lifecycle to do it (`Reprovision` of the `Supervision` gRPC API with the supervisor's internal
//! token, whose deployments are recorded as `racetrack`), so the provisioning rules (env vars,
//! family tokens, audit `fatman_deployed`) live in one place. One fatman at a time; a failure is
//! logged, counted and reported to Lifecycle, which audits it (`fatman_reconcile_failed`); it
//! does not stop the others.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use racetrack_proto::supervisor as wire;
use serde::Serialize;

use crate::lifecycle::LifecycleError;
use crate::plan::LOST;
use crate::Supervisor;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    pub finished_at: i64,
    pub attempted: usize,
    pub succeeded: usize,
    pub failed: Vec<ReconcileFailure>,
    /// Why the round could not start (Lifecycle could not list the fatmen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcileFailure {
    pub name: String,
    pub version: String,
    pub error: String,
}

impl Supervisor {
    /// Reconciles every `RECONCILE_INTERVAL_SECS` while leading (first run one interval after
    /// start, as the original's scheduler), until `stop`.
    pub async fn reconcile_loop(self: Arc<Self>, stop: Arc<AtomicBool>) {
        loop {
            if self.pause(self.config.reconcile_interval, &stop).await {
                break;
            }
            if !self.until_leader(&stop).await {
                break;
            }
            let report = self.reconcile_once().await;
            if report.attempted > 0 {
                tracing::info!(
                    attempted = report.attempted,
                    succeeded = report.succeeded,
                    failed = report.failed.len(),
                    "reconcile done"
                );
            }
        }
    }

    #[tracing::instrument(name = "reconcile", skip_all)]
    pub async fn reconcile_once(&self) -> ReconcileReport {
        let lost = self
            .lifecycle
            .list(None, self.config.deployment_stale)
            .await
            .map(|listing| {
                listing
                    .rows
                    .into_iter()
                    .filter(|f| f.status == LOST && f.has_manifest)
                    .filter(|f| !listing.busy.contains(&(f.name.clone(), f.version.clone())))
                    .map(|f| (f.name, f.version, f.deployed_by))
                    .collect::<Vec<_>>()
            });
        let mut report = ReconcileReport::default();
        let lost = match lost {
            Ok(lost) => lost,
            Err(e) => {
                tracing::error!(error = %e, "reconcile: cannot read lost fatmen");
                report.error = Some(e.to_string());
                report.finished_at = chrono::Utc::now().timestamp();
                let stored = report.clone();
                self.update_report(|r| r.last_reconcile = Some(stored));
                return report;
            }
        };
        for (name, version, _owner) in lost {
            if !self.leadership.is_leader() {
                tracing::warn!("reconcile stopped: not the leader any more");
                break;
            }
            report.attempted += 1;
            match self.reprovision_reported(&name, &version).await {
                Ok(()) => report.succeeded += 1,
                Err((unreachable, error)) => {
                    report.failed.push(ReconcileFailure {
                        name,
                        version,
                        error,
                    });
                    if unreachable {
                        // The others would fail alike: try again at the next interval.
                        tracing::warn!("reconcile round stopped: Lifecycle is unreachable");
                        break;
                    }
                }
            }
        }
        report.finished_at = chrono::Utc::now().timestamp();
        let stored = report.clone();
        self.update_report(|r| r.last_reconcile = Some(stored));
        report
    }

    /// Re-provisions one fatman through Lifecycle, counting, logging and reporting (Lifecycle
    /// audits `fatman_reconcile_failed`) the outcome. `Err((unreachable, message))`.
    pub(crate) async fn reprovision_reported(
        &self,
        name: &str,
        version: &str,
    ) -> Result<(), (bool, String)> {
        self.metrics.reconcile_attempts.inc();
        tracing::info!(fatman = %name, version = %version, "re-provisioning fatman");
        match self.lifecycle.reprovision(name, version).await {
            Ok(()) => {
                tracing::info!(fatman = %name, version = %version, "fatman re-provisioned: running again");
                self.events.publish(racetrack_events::Event::Fatman {
                    name: name.to_string(),
                });
                Ok(())
            }
            Err(e) => {
                let unreachable = matches!(e, LifecycleError::Unreachable(_));
                let error = e.to_string();
                self.metrics.reconcile_failures.inc();
                tracing::error!(fatman = %name, version = %version, %error, "failed to reconcile fatman");
                let failure = wire::ObservationReport {
                    reconcile_failures: vec![wire::ReconcileFailure {
                        name: name.to_string(),
                        version: version.to_string(),
                        error: error.clone(),
                    }],
                    ..Default::default()
                };
                if let Err(report_error) = self.lifecycle.report(failure).await {
                    tracing::error!(error = %report_error, "could not report the failed reconcile to Lifecycle");
                }
                Err((unreachable, error))
            }
        }
    }

    /// `LIFECYCLE_AUTH_TOKEN`: a stored internal token Lifecycle can revoke, minted by
    /// `lifecycle generate-auth lifecycle-supervisor` with only `supervise_fatmen` and
    /// `reprovision_fatman`. The supervisor holds no `AUTH_KEY` and signs nothing itself.
    pub fn lifecycle_token(&self) -> Result<String, String> {
        self.config.lifecycle_auth_token.clone().ok_or_else(|| {
            "LIFECYCLE_AUTH_TOKEN is not set: create one with `lifecycle generate-auth lifecycle-supervisor`"
                .to_string()
        })
    }
}
