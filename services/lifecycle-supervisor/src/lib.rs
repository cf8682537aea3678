//! Lifecycle Supervisor: keeps the registry true to what runs, and heals (docs/architecture.md,
//! "The supervisor").
//!
//! Config ([`config`]) → wiring (here and `main.rs`) → loops: leadership ([`leader`]), sync
//! ([`sync`]: statuses, health checks, orphans) and reconcile ([`reconcile`]: re-provisioning of
//! lost fatmen through Lifecycle), event-driven healing ([`watch`]: reacts to the targets' events
//! at once) and the probes/metrics server ([`http`]). The decisions are made without I/O: a
//! sync's in [`plan`], when to restart a dead fatman in [`heal`].
//!
//! Only the leader acts; every replica serves `/live`, `/ready`, `/health` and `/metrics`.

pub mod config;
pub mod heal;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod plan;
pub mod reconcile;
pub mod sync;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racetrack_db::models::AuditLogEvent;
use racetrack_db::{Database, DbConnection, DbError};
use racetrack_infra::InfrastructureTarget;
use racetrack_model::AuditLogEventType;
use racetrack_telemetry::Metrics;
use serde::Serialize;

use crate::config::Config;
use crate::leader::Leadership;
use crate::metrics::SupervisorMetrics;

/// The user the supervisor acts as: audit executor, and the subject of its internal token (so
/// re-provisioned fatmen are `deployed_by` `racetrack`, as the original's reconcile).
pub const EXECUTOR: &str = "racetrack";

/// What `/health` shows about the work done.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub last_sync: Option<sync::SyncReport>,
    /// The last failed sync (cleared by a successful one).
    pub last_sync_error: Option<TimedError>,
    pub last_reconcile: Option<reconcile::ReconcileReport>,
    /// Orphans present in the infrastructure after the last sync.
    pub orphans: Vec<sync::OrphanView>,
    pub syncs_completed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimedError {
    pub time: i64,
    pub error: String,
}

pub struct Supervisor {
    pub config: Config,
    pub db: Database,
    pub targets: BTreeMap<String, Arc<dyn InfrastructureTarget>>,
    pub telemetry: Arc<Metrics>,
    pub metrics: SupervisorMetrics,
    pub leadership: Leadership,
    pub report: Mutex<Report>,
    /// Wakes the work loops (e.g. on becoming the leader).
    pub wake: tokio::sync::Notify,
    /// Wakes sleeping loops when the process stops.
    pub stopping: tokio::sync::Notify,
    pub events: racetrack_events::Publisher,
    /// Restart history and crash-loop holds of event-driven healing.
    pub healer: heal::Healer,
    /// Bounds event-driven checks and restarts (`HEAL_CONCURRENCY`).
    pub heal_slots: tokio::sync::Semaphore,
    pub in_flight: watch::InFlight,
    /// Asks the sync loop for a full sync now (an event stream reconnected).
    pub resync: tokio::sync::Notify,
    http: reqwest::Client,
    lifecycle: reqwest::Client,
}

impl Supervisor {
    /// Connects to the database (migrating it, as the original supervisor did at start) and to
    /// the infrastructure targets. Fails with a clear message on bad configuration.
    pub fn prepare(config: Config) -> Result<Supervisor, String> {
        let db = Database::connect(&config.database_url, config.database_max_connections)
            .map_err(|e| e.to_string())?;
        migrate(&db)?;
        let mut targets: BTreeMap<String, Arc<dyn InfrastructureTarget>> = BTreeMap::new();
        for name in &config.infrastructure_targets {
            match name.as_str() {
                "docker" => {
                    let docker = racetrack_infra::DockerTarget::connect(
                        racetrack_infra::DockerTargetConfig {
                            network: config.docker_network.clone(),
                            list_network_only: config.docker_network_only,
                            ..Default::default()
                        },
                    )
                    .map_err(|e| format!("docker infrastructure target: {e}"))?;
                    targets.insert(name.clone(), Arc::new(docker));
                }
                other => return Err(format!("unsupported infrastructure target {other:?}")),
            }
        }
        let events = racetrack_events::Publisher::new(config.redis_url.as_deref())
            .map_err(|e| e.to_string())?;
        Ok(Self::new(config, db, targets, events))
    }

    /// Wiring with given parts (tests pass their own targets).
    pub fn new(
        config: Config,
        db: Database,
        targets: BTreeMap<String, Arc<dyn InfrastructureTarget>>,
        events: racetrack_events::Publisher,
    ) -> Supervisor {
        let telemetry = Arc::new(Metrics::new("lifecycle-supervisor"));
        let metrics = SupervisorMetrics::new(&telemetry);
        let http = reqwest::Client::builder()
            .no_proxy()
            // Idle connections to hundreds of fatmen would only hold memory between syncs.
            .pool_max_idle_per_host(0)
            .timeout(racetrack_infra::health::REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        let lifecycle = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.reconcile_timeout)
            .build()
            .unwrap_or_default();
        Supervisor {
            leadership: Leadership::new(Leadership::new_holder_id()),
            healer: heal::Healer::new(config.heal),
            heal_slots: tokio::sync::Semaphore::new(config.heal_concurrency),
            in_flight: watch::InFlight::default(),
            resync: tokio::sync::Notify::new(),
            config,
            db,
            targets,
            telemetry,
            metrics,
            report: Mutex::new(Report::default()),
            wake: tokio::sync::Notify::new(),
            stopping: tokio::sync::Notify::new(),
            events,
            http,
            lifecycle,
        }
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| format!("database task failed: {e}"))?
        .map_err(|e| e.to_string())
    }

    pub fn report(&self) -> Report {
        self.report.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn update_report(&self, f: impl FnOnce(&mut Report)) {
        if let Ok(mut r) = self.report.lock() {
            f(&mut r);
        }
    }

    /// Sleeps `pause`, or less when the process stops; `true` when it stops.
    async fn pause(&self, pause: Duration, stop: &AtomicBool) -> bool {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = self.stopping.notified() => {}
        }
        stop.load(Ordering::SeqCst)
    }

    /// Waits until this replica leads (or the process stops; then `false`).
    async fn until_leader(&self, stop: &AtomicBool) -> bool {
        loop {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            if self.leadership.is_leader() {
                return true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = self.wake.notified() => {}
                _ = self.stopping.notified() => {}
            }
        }
    }
}

/// Applies pending migrations; a Lifecycle migrating the same database at the same moment can
/// make one attempt fail, so it is retried a few times.
fn migrate(db: &Database) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..5 {
        match db.migrate() {
            Ok(applied) => {
                if !applied.is_empty() {
                    tracing::info!(migrations = ?applied, "database migrated");
                }
                return Ok(());
            }
            Err(e) => {
                last = e.to_string();
                tracing::warn!(attempt, error = %last, "migrating the database failed; retrying");
                std::thread::sleep(Duration::from_millis(500 * (attempt + 1)));
            }
        }
    }
    Err(last)
}

/// Writes an audit event of the supervisor (executor [`EXECUTOR`]) and logs it.
pub(crate) fn audit(
    conn: &mut DbConnection,
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
            username_executor: Some(EXECUTOR.to_string()),
            username_subject: owner.map(String::from),
            fatman_name: Some(name.to_string()),
            fatman_version: Some(version.to_string()),
        },
    )?;
    tracing::info!(
        event_type = event.as_str(),
        executor = EXECUTOR,
        fatman = %name,
        version = %version,
        "Audit log event saved"
    );
    Ok(())
}

pub(crate) fn unix(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
}
