//! Reconcile (docs/architecture.md, "The supervisor"): every `RECONCILE_INTERVAL_SECS`, each `lost`
//! fatman that has a manifest is re-provisioned from its last built image. The supervisor asks
//! Lifecycle to do it (`POST /api/v1/fatman/{name}/{version}/reprovision` with the supervisor's
//! internal token, whose deployments are recorded as `racetrack`), so the provisioning rules (env
//! vars, family tokens, audit `fatman_deployed`) live in one place. One fatman at a time; a failure
//! is logged, counted and audited (`fatman_reconcile_failed`) and does not stop the others.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use racetrack_db::repo::{fatmen, supervisor as repo};
use racetrack_model::AuditLogEventType;
use serde::Serialize;
use serde_json::json;

use crate::plan::LOST;
use crate::{audit, Supervisor};

/// Why one re-provisioning failed.
enum Failure {
    /// Lifecycle could not be reached (or there is no token to ask it with): the rest of the
    /// round would fail alike.
    Unreachable(String),
    /// Lifecycle (or the token) refused or failed this fatman.
    Refused(String),
}

impl Failure {
    fn into_message(self) -> String {
        match self {
            Failure::Unreachable(m) | Failure::Refused(m) => m,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    pub finished_at: i64,
    pub attempted: usize,
    pub succeeded: usize,
    pub failed: Vec<ReconcileFailure>,
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

    pub async fn reconcile_once(&self) -> ReconcileReport {
        let stale = chrono::Duration::from_std(self.config.deployment_stale)
            .unwrap_or(chrono::Duration::MAX);
        let lost = self
            .blocking(move |conn| {
                let since = racetrack_db::now()
                    .checked_sub_signed(stale)
                    .unwrap_or(chrono::NaiveDateTime::MIN);
                let busy = repo::deployments_in_progress(conn, since)?;
                Ok(fatmen::list(conn)?
                    .into_iter()
                    .filter(|f| f.status == LOST && f.manifest.is_some())
                    .filter(|f| !busy.contains(&(f.name.clone(), f.version.clone())))
                    .map(|f| (f.name, f.version, f.deployed_by))
                    .collect::<Vec<_>>())
            })
            .await;
        let mut report = ReconcileReport::default();
        let lost = match lost {
            Ok(lost) => lost,
            Err(e) => {
                tracing::error!(error = %e, "reconcile: cannot read lost fatmen");
                return report;
            }
        };
        for (name, version, owner) in lost {
            if !self.leadership.is_leader() {
                tracing::warn!("reconcile stopped: not the leader any more");
                break;
            }
            report.attempted += 1;
            match self.reprovision_reported(&name, &version, owner).await {
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

    /// Re-provisions one fatman through Lifecycle, counting, logging and auditing
    /// (`fatman_reconcile_failed`) the outcome. `Err((unreachable, message))`.
    pub(crate) async fn reprovision_reported(
        &self,
        name: &str,
        version: &str,
        owner: Option<String>,
    ) -> Result<(), (bool, String)> {
        self.metrics.reconcile_attempts.inc();
        tracing::info!(fatman = %name, version = %version, "re-provisioning fatman");
        match self.reprovision(name, version).await {
            Ok(()) => {
                tracing::info!(fatman = %name, version = %version, "fatman re-provisioned: running again");
                self.events.publish(racetrack_events::Event::Fatman {
                    name: name.to_string(),
                });
                Ok(())
            }
            Err(e) => {
                let unreachable = matches!(e, Failure::Unreachable(_));
                let error = e.into_message();
                self.metrics.reconcile_failures.inc();
                tracing::error!(fatman = %name, version = %version, %error, "failed to reconcile fatman");
                let (n, v, e) = (name.to_string(), version.to_string(), error.clone());
                if let Err(db_error) = self
                    .blocking(move |conn| {
                        audit(
                            conn,
                            AuditLogEventType::FatmanReconcileFailed,
                            &n,
                            &v,
                            owner.as_deref(),
                            Some(json!({ "error": e })),
                        )
                    })
                    .await
                {
                    tracing::error!(error = %db_error, "could not audit the failed reconcile");
                }
                Err((unreachable, error))
            }
        }
    }

    /// Asks Lifecycle to run the fatman's last image again; waits for the outcome.
    async fn reprovision(&self, name: &str, version: &str) -> Result<(), Failure> {
        // Without a token every attempt would fail alike: stop the round.
        let token = self.lifecycle_token().map_err(Failure::Unreachable)?;
        let url = format!(
            "{}/api/v1/fatman/{name}/{version}/reprovision",
            self.config.lifecycle_url
        );
        let response = self
            .lifecycle
            .post(&url)
            .header("X-Racetrack-Auth", token)
            .send()
            .await
            .map_err(|e| {
                Failure::Unreachable(format!(
                    "Lifecycle at {} is unreachable: {e}",
                    self.config.lifecycle_url
                ))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| body.chars().take(500).collect());
        Err(Failure::Refused(format!(
            "Lifecycle answered {status}: {message}"
        )))
    }

    /// `LIFECYCLE_AUTH_TOKEN`: a stored internal token Lifecycle can revoke, minted by
    /// `lifecycle generate-auth lifecycle-supervisor` with only `reprovision_fatman`. The supervisor
    /// holds no `AUTH_KEY` and signs nothing itself.
    pub fn lifecycle_token(&self) -> Result<String, String> {
        self.config.lifecycle_auth_token.clone().ok_or_else(|| {
            "LIFECYCLE_AUTH_TOKEN is not set: create one with `lifecycle generate-auth lifecycle-supervisor`"
                .to_string()
        })
    }
}
