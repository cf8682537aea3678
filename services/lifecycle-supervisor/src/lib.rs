//! Lifecycle Supervisor: keeps the registry true to what runs, and heals (docs/architecture.md,
//! "The supervisor").
//!
//! Config ([`config`]) → wiring (here and `main.rs`) → Lifecycle's `Supervision` gRPC API
//! ([`lifecycle`]: the only way to the registry) → loops: leadership ([`leader`]), sync
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
pub mod lifecycle;
pub mod metrics;
pub mod plan;
pub mod reconcile;
pub mod sync;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use racetrack_infra::InfrastructureTarget;
use racetrack_telemetry::Metrics;
use serde::Serialize;

use crate::config::Config;
use crate::leader::{Leadership, LEASE_NAME};
use crate::lifecycle::Lifecycle;
use crate::metrics::SupervisorMetrics;

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
    /// Lifecycle's `Supervision` API: lease, fatmen, observations, re-provisioning.
    pub lifecycle: Lifecycle,
    /// Whether Lifecycle answered the last lease request (`/ready`).
    pub lifecycle_ok: AtomicBool,
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
}

impl Supervisor {
    /// Connects to the infrastructure targets (Lifecycle lazily). Fails with a clear message on
    /// bad configuration: without `LIFECYCLE_AUTH_TOKEN` the supervisor could do nothing.
    /// Kubernetes: the cluster from `KUBECONFIG` (or `~/.kube/config`), else the pod's service
    /// account; it only reads (docs/architecture.md, "The Kubernetes target", RBAC).
    pub async fn prepare(config: Config) -> Result<Supervisor, String> {
        config.check_required()?;
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
                "kubernetes" => {
                    let settings = config.kubernetes.clone().unwrap_or_default();
                    let kubernetes = racetrack_infra::KubernetesTarget::connect(settings)
                        .await
                        .map_err(|e| format!("kubernetes infrastructure target: {e}"))?;
                    targets.insert(name.clone(), Arc::new(kubernetes));
                }
                other => return Err(format!("unsupported infrastructure target {other:?}")),
            }
        }
        let events = racetrack_events::Publisher::new(config.redis_url.as_deref())
            .map_err(|e| e.to_string())?;
        Self::new(config, targets, events)
    }

    /// Wiring with given parts (tests pass their own targets). Fails only on a token that is no
    /// valid header value.
    pub fn new(
        config: Config,
        targets: BTreeMap<String, Arc<dyn InfrastructureTarget>>,
        events: racetrack_events::Publisher,
    ) -> Result<Supervisor, String> {
        let telemetry = Arc::new(Metrics::new("lifecycle-supervisor"));
        let metrics = SupervisorMetrics::new(&telemetry);
        let http = reqwest::Client::builder()
            .no_proxy()
            // Idle connections to hundreds of fatmen would only hold memory between syncs.
            .pool_max_idle_per_host(0)
            .timeout(racetrack_infra::health::REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        let holder = Leadership::new_holder_id();
        let lifecycle = Lifecycle::new(
            &config.lifecycle_grpc_url,
            config.lifecycle_auth_token.as_deref(),
            config.lifecycle_timeout,
            config.reconcile_timeout,
            LEASE_NAME,
            &holder,
        )?;
        Ok(Supervisor {
            leadership: Leadership::new(holder),
            lifecycle,
            lifecycle_ok: AtomicBool::new(false),
            healer: heal::Healer::new(config.heal),
            heal_slots: tokio::sync::Semaphore::new(config.heal_concurrency),
            in_flight: watch::InFlight::default(),
            resync: tokio::sync::Notify::new(),
            config,
            targets,
            telemetry,
            metrics,
            report: Mutex::new(Report::default()),
            wake: tokio::sync::Notify::new(),
            stopping: tokio::sync::Notify::new(),
            events,
            http,
        })
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

pub(crate) fn unix(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
}
