//! What Lifecycle does for the lifecycle supervisor (docs/architecture.md, "The supervisor"): it
//! grants the supervisors' leadership lease, lists the fatmen they follow, writes what they
//! observed (statuses, check times, orphans) with its audit events, and re-provisions lost
//! fatmen. The supervisor only observes; the registry and the audit log are written here.
//!
//! Application logic only: callers pass a connection (or the state, for re-provisioning) and
//! plain inputs; the gRPC adapter is `grpc_supervision`.

use std::time::Duration;

use chrono::NaiveDateTime;
use std::sync::Arc;

use racetrack_db::models::{AuditLogEvent, Fatman};
use racetrack_db::repo::{fatmen, supervisor as repo};
use racetrack_db::{Connection as _, DbConnection, DbError};
use racetrack_model::{AuditLogEventType, FatmanStatus};
use serde_json::json;

use crate::app::{AppError, Caller};
use crate::deploy::Mode;
use crate::state::AppState;

/// The longest lease a supervisor may ask for.
pub const MAX_LEASE: Duration = Duration::from_secs(3600);
/// Error text of an orphan's row.
pub const ORPHAN_ERROR: &str = "found in the infrastructure without a registry entry";

#[derive(Debug, thiserror::Error)]
pub enum SupervisionError {
    #[error("{0}")]
    Invalid(String),
    /// The reporting supervisor does not hold the leadership lease (any more).
    #[error("{0}")]
    NotLeader(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<racetrack_db::QueryError> for SupervisionError {
    fn from(e: racetrack_db::QueryError) -> Self {
        SupervisionError::App(e.into())
    }
}

impl From<DbError> for SupervisionError {
    fn from(e: DbError) -> Self {
        SupervisionError::App(e.into())
    }
}

/// The outcome of a lease request.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub granted: bool,
    /// Who holds it now.
    pub holder: Option<String>,
}

fn check_lease_names(name: &str, holder: &str) -> Result<(), SupervisionError> {
    if name.is_empty() || name.len() > 128 || holder.is_empty() || holder.len() > 256 {
        return Err(SupervisionError::Invalid(
            "lease name (1-128 characters) and holder (1-256 characters) are required".into(),
        ));
    }
    Ok(())
}

/// Grants (or renews) lease `name` to `holder` for `ttl` when free, expired or already theirs.
pub fn acquire_lease(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Lease, SupervisionError> {
    check_lease_names(name, holder)?;
    if ttl.is_zero() || ttl > MAX_LEASE {
        return Err(SupervisionError::Invalid(format!(
            "lease duration must be positive and at most {} s",
            MAX_LEASE.as_secs()
        )));
    }
    let granted = racetrack_db::lease::acquire_row(conn, name, holder, ttl)?;
    let holder = racetrack_db::lease::sqlite_lease_holder(conn, name)?.map(|(h, _)| h);
    Ok(Lease { granted, holder })
}

/// Releases lease `name` when `holder` has it.
pub fn release_lease(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
) -> Result<bool, SupervisionError> {
    check_lease_names(name, holder)?;
    Ok(racetrack_db::lease::release_row(conn, name, holder)?)
}

fn require_holder(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
) -> Result<(), SupervisionError> {
    check_lease_names(name, holder)?;
    if racetrack_db::lease::holds(conn, name, holder)? {
        Ok(())
    } else {
        Err(SupervisionError::NotLeader(format!(
            "{holder} does not hold the {name} lease"
        )))
    }
}

/// The fatmen a supervisor follows, with when it last checked each.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub fatmen: Vec<(Fatman, Option<NaiveDateTime>)>,
    /// `(name, version)` with a deployment in progress updated within the staleness limit.
    pub deploying: Vec<(String, String)>,
}

/// Every fatman (or one version: `only`) and the deployments in progress.
pub fn list_fatmen(
    conn: &mut DbConnection,
    only: Option<(&str, &str)>,
    deployment_stale: Duration,
) -> Result<Listing, SupervisionError> {
    let mut fatmen = repo::list_with_check_time(conn)?;
    if let Some((name, version)) = only {
        fatmen.retain(|(f, _)| f.name == name && f.version == version);
    }
    let stale = chrono::Duration::from_std(deployment_stale).unwrap_or(chrono::Duration::MAX);
    let since = racetrack_db::now()
        .checked_sub_signed(stale)
        .unwrap_or(NaiveDateTime::MIN);
    let deploying = repo::deployments_in_progress(conn, since)?;
    Ok(Listing { fatmen, deploying })
}

/// The columns the supervisor observes.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub status: FatmanStatus,
    pub error: Option<String>,
    pub internal_name: Option<String>,
    pub infrastructure_target: Option<String>,
    pub last_call_time: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub id: String,
    pub name: String,
    pub version: String,
    pub read_status: FatmanStatus,
    pub read_update_time: NaiveDateTime,
    pub observed: Observed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FoundOrphan {
    pub target: String,
    pub name: String,
    pub version: String,
    pub resource_name: String,
    pub internal_name: String,
    pub image: Option<String>,
    pub container_status: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GoneOrphan {
    pub id: String,
    pub name: String,
    pub version: String,
    pub target: String,
    /// The supervisor removed its container (after the grace period); else it was already gone.
    pub removed: bool,
    pub found_at: i64,
    pub grace_secs: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileFailure {
    pub name: String,
    pub version: String,
    pub error: String,
}

/// What one supervisor observed, to be written at once.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lease: String,
    pub holder: String,
    pub changes: Vec<StatusChange>,
    pub checked: Vec<String>,
    pub new_orphans: Vec<FoundOrphan>,
    pub gone_orphans: Vec<GoneOrphan>,
    pub reconcile_failures: Vec<ReconcileFailure>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub written: Vec<String>,
    pub superseded: usize,
    pub registered: Vec<(String, String)>,
    pub dropped: Vec<String>,
}

/// Writes a report in one transaction, as the supervisor's leader: status changes (only to rows
/// unchanged since read; `fatman_lost` audited), check times, new orphans (`fatman_orphaned`),
/// dropped orphans (`fatman_orphan_removed`) and failed re-provisionings
/// (`fatman_reconcile_failed`), all with `executor` as the audit executor.
pub fn apply_report(
    conn: &mut DbConnection,
    executor: &str,
    report: Report,
) -> Result<Outcome, SupervisionError> {
    conn.transaction(|conn| {
        require_holder(conn, &report.lease, &report.holder)?;
        write_report(conn, executor, report)
    })
}

fn write_report(
    conn: &mut DbConnection,
    executor: &str,
    report: Report,
) -> Result<Outcome, SupervisionError> {
    let now = racetrack_db::now();
    let mut out = Outcome::default();
    for c in report.changes {
        let Some(row) = fatmen::find_by_id(conn, &c.id)? else {
            out.superseded += 1;
            continue;
        };
        let observed = repo::Observation {
            status: c.observed.status,
            error: c.observed.error.as_deref(),
            internal_name: c.observed.internal_name.as_deref(),
            infrastructure_target: c.observed.infrastructure_target.as_deref(),
            last_call_time: c.observed.last_call_time,
        };
        let read_status = c.read_status;
        if !repo::record_observation(conn, &c.id, c.read_update_time, read_status, &observed, now)?
        {
            out.superseded += 1;
            continue;
        }
        if c.observed.status == FatmanStatus::Lost && c.read_status != FatmanStatus::Lost {
            audit(
                conn,
                executor,
                AuditLogEventType::FatmanLost,
                &row.name,
                &row.version,
                row.deployed_by.as_deref(),
                Some(json!({"previous_status": read_status.as_str()})),
            )?;
        }
        out.written.push(c.id);
    }
    repo::touch_checked(conn, &report.checked, now)?;
    for found in report.new_orphans {
        if fatmen::find(conn, &found.name, &found.version)?.is_some() {
            continue;
        }
        let (family, _) = fatmen::get_or_create_family(conn, &found.name)?;
        let image_tag = found
            .image
            .as_deref()
            .and_then(|image| image.rsplit_once(':'))
            .map(|(_, tag)| tag.to_string())
            .filter(|tag| !tag.contains('/'));
        let id = racetrack_db::new_id();
        fatmen::insert(
            conn,
            &Fatman {
                id: id.clone(),
                family_id: family.id,
                name: found.name.clone(),
                version: found.version.clone(),
                status: FatmanStatus::Orphaned,
                create_time: now,
                update_time: now,
                manifest: None,
                internal_name: (!found.internal_name.is_empty())
                    .then(|| found.internal_name.clone()),
                error: Some(ORPHAN_ERROR.into()),
                image_tag,
                deployed_by: None,
                last_call_time: None,
                infrastructure_target: Some(found.target.clone()),
            },
        )?;
        repo::touch_checked(conn, std::slice::from_ref(&id), now)?;
        audit(
            conn,
            executor,
            AuditLogEventType::FatmanOrphaned,
            &found.name,
            &found.version,
            None,
            Some(json!({
                "target": found.target,
                "container": found.resource_name,
                "image": found.image,
                "container_status": found.container_status,
            })),
        )?;
        out.registered.push((found.name, found.version));
    }
    for orphan in report.gone_orphans {
        if !repo::delete_orphan(conn, &orphan.id)? {
            continue;
        }
        let properties = if orphan.removed {
            json!({
                "target": orphan.target,
                "container": racetrack_model::names::resource_name(&orphan.name, &orphan.version),
                "found_at": orphan.found_at,
                "grace_secs": orphan.grace_secs,
            })
        } else {
            json!({"container": "already gone"})
        };
        audit(
            conn,
            executor,
            AuditLogEventType::FatmanOrphanRemoved,
            &orphan.name,
            &orphan.version,
            None,
            Some(properties),
        )?;
        out.dropped.push(orphan.id);
    }
    for failure in report.reconcile_failures {
        let owner =
            fatmen::find(conn, &failure.name, &failure.version)?.and_then(|f| f.deployed_by);
        audit(
            conn,
            executor,
            AuditLogEventType::FatmanReconcileFailed,
            &failure.name,
            &failure.version,
            owner.as_deref(),
            Some(json!({ "error": failure.error })),
        )?;
    }
    Ok(out)
}

fn audit(
    conn: &mut DbConnection,
    executor: &str,
    event: AuditLogEventType,
    name: &str,
    version: &str,
    owner: Option<&str>,
    properties: Option<serde_json::Value>,
) -> Result<(), DbError> {
    racetrack_db::repo::audit::insert(
        conn,
        &AuditLogEvent {
            id: racetrack_db::new_id(),
            version: 1,
            timestamp: racetrack_db::now(),
            event_type: event,
            properties: properties.as_ref().map(|p| p.to_string()),
            username_executor: Some(executor.to_string()),
            username_subject: owner.map(String::from),
            fatman_name: Some(name.to_string()),
            fatman_version: Some(version.to_string()),
        },
    )?;
    tracing::info!(
        event_type = event.as_str(),
        executor,
        fatman = %name,
        version = %version,
        "Audit log event saved"
    );
    Ok(())
}

/// Runs a fatman's last provisioned image again for the leading supervisor, with the rules of
/// REST `POST /fatman/{name}/{version}/reprovision` (the application's `rerun`:
/// `reprovision_fatman` on the fatman, only images of deployments provisioned on a target);
/// returns once it runs again, or with why not.
pub async fn reprovision(
    state: &Arc<AppState>,
    caller: &Caller,
    lease: String,
    holder: String,
    name: &str,
    version: &str,
) -> Result<(), SupervisionError> {
    let db = state.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get()?;
        require_holder(&mut conn, &lease, &holder)
    })
    .await
    .map_err(AppError::internal)??;
    Ok(crate::app::fatmen::rerun(state, caller, name, version, Mode::Reprovision).await?)
}
