//! Event-driven healing (README, "Event-driven healing"): while it leads, the supervisor follows
//! each target's event stream ([`racetrack_infra::InfrastructureTarget::events`]). A fatman whose
//! container died or vanished is re-checked at once (its registry row gets `lost`, or `error`
//! with the exit code and last log lines, exactly as a sync would write them) and, when it has a
//! manifest to run again, re-provisioned through Lifecycle as reconcile does, under the backoff and
//! crash-loop rule of [`crate::heal`].
//!
//! The periodic sync and reconcile stay as the backstop; a broken stream asks for a full sync at
//! once, since events were missed while it was down.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use racetrack_infra::{InfraEvent, InfraStatus, InfrastructureTarget};
use racetrack_model::FatmanStatus;

use crate::heal::Verdict;
use crate::plan::{self, Inputs, Probe, ERROR, LOST};
use crate::Supervisor;

/// Events of one fatman arriving this close together (`kill`, `die`, `destroy` of one `docker
/// rm -f`) are handled by one check.
const SETTLE: Duration = Duration::from_millis(150);
/// A running container failing its health check right after an event is checked again this
/// many times, this far apart.
const DYING_RECHECKS: usize = 5;
const DYING_RECHECK_PAUSE: Duration = Duration::from_millis(300);
/// Waits between attempts to (re)open an event stream: from the first to the last, doubling.
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

type Key = (String, String, String);

/// How the Docker target describes a container being stopped or removed (racetrack-infra).
const IN_TRANSITION: &str = "being stopped or removed";

/// Fatmen being handled (target, name, version) → whether another event came in meanwhile.
#[derive(Default)]
pub struct InFlight(Mutex<HashMap<Key, bool>>);

impl InFlight {
    /// `true` when the caller should start handling `key` (nobody does yet).
    fn enter(&self, key: &Key) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(key) {
            Some(again) => {
                *again = true;
                false
            }
            None => {
                map.insert(key.clone(), false);
                true
            }
        }
    }

    /// Whether events came in for `key` since it was entered (or last left).
    fn pending(&self, key: &Key) -> bool {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key) == Some(&true)
    }

    /// `true` when events came in while handling: handle once more.
    fn leave(&self, key: &Key) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key) == Some(&true) {
            map.insert(key.clone(), false);
            true
        } else {
            map.remove(key);
            false
        }
    }
}

/// What one check of one fatman found.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The registry status after the check.
    pub status: FatmanStatus,
    pub error: Option<String>,
    /// What the infrastructure shows (`None`: no container).
    pub container: Option<InfraStatus>,
    pub owner: Option<String>,
    /// It has a manifest to run again (Lifecycle refuses when it has no built image).
    pub can_reprovision: bool,
    /// Its target restarts crashed fatmen itself (Kubernetes): only a vanished one is restarted.
    pub target_restarts_crashed: bool,
}

impl Checked {
    /// Dead or gone, and something to run again. A container still being stopped or removed is
    /// left to the event that ends its transition (a restart would race the removal). Where the
    /// infrastructure restarts crashed fatmen itself, only a gone one (`lost`) is.
    fn needs_restart(&self) -> bool {
        if self.target_restarts_crashed {
            return self.can_reprovision && self.status == LOST;
        }
        let in_transition = self.container == Some(InfraStatus::Error)
            && self
                .error
                .as_deref()
                .is_some_and(|e| e.contains(IN_TRANSITION));
        self.can_reprovision
            && !in_transition
            && (self.status == LOST
                || (self.status == ERROR
                    && matches!(
                        self.container,
                        None | Some(InfraStatus::Exited | InfraStatus::Error)
                    )))
    }
}

impl Supervisor {
    /// Follows every watched target's events while leading, until `stop`.
    pub async fn watch_loop(self: Arc<Self>, stop: Arc<AtomicBool>) {
        let tasks: Vec<_> = self
            .targets
            .iter()
            .map(|(name, target)| {
                tokio::spawn(
                    self.clone()
                        .watch_target(name.clone(), target.clone(), stop.clone()),
                )
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn watch_target(
        self: Arc<Self>,
        target_name: String,
        target: Arc<dyn InfrastructureTarget>,
        stop: Arc<AtomicBool>,
    ) {
        let mut retry = RECONNECT_FIRST;
        let mut connected_before = false;
        while self.until_leader(&stop).await {
            let mut stream = match target.events().await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(target = %target_name, error = %e, retry_secs = retry.as_secs_f64(), "cannot follow the target's events; the periodic sync covers meanwhile");
                    if self.pause(retry, &stop).await {
                        break;
                    }
                    retry = (retry * 2).min(RECONNECT_MAX);
                    continue;
                }
            };
            if connected_before {
                tracing::info!(target = %target_name, "following the target's events again; syncing now for what was missed");
                self.resync.notify_one();
            }
            connected_before = true;
            retry = RECONNECT_FIRST;
            self.metrics.event_stream_connects.inc();
            loop {
                let next = tokio::select! {
                    next = stream.next() => Some(next),
                    _ = self.stopping.notified() => return,
                    // Leadership is re-read at least this often (a lost lease must stop reactions).
                    _ = tokio::time::sleep(Duration::from_secs(1)) => None,
                };
                if !self.leadership.is_leader() {
                    break;
                }
                let Some(next) = next else {
                    continue;
                };
                match next {
                    Some(Ok(event)) => self.on_event(&target_name, event),
                    Some(Err(e)) => {
                        tracing::warn!(target = %target_name, error = %e, "the target's event stream broke; reconnecting");
                        break;
                    }
                    None => {
                        tracing::warn!(target = %target_name, "the target's event stream ended; reconnecting");
                        break;
                    }
                }
            }
            if self.pause(RECONNECT_FIRST, &stop).await {
                break;
            }
        }
    }

    fn on_event(self: &Arc<Self>, target: &str, event: InfraEvent) {
        self.metrics
            .infra_events
            .with_label_values(&[event.kind.as_str()])
            .inc();
        tracing::debug!(target = %target, fatman = %event.name, version = %event.version, kind = %event.kind, exit_code = ?event.exit_code, reason = event.reason.as_deref().unwrap_or(""), "infrastructure event");
        let key = (target.to_string(), event.name, event.version);
        if !self.in_flight.enter(&key) {
            return;
        }
        let sup = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SETTLE).await;
                if let Err(e) = sup.react(&key).await {
                    tracing::error!(fatman = %key.1, version = %key.2, error = %e, "reacting to an infrastructure event failed; the periodic sync will retry");
                }
                if !sup.in_flight.leave(&key) {
                    break;
                }
            }
        });
    }

    /// Checks the fatman; restarts it when the rule allows.
    async fn react(&self, key: &Key) -> Result<(), String> {
        let (target, name, version) = key;
        let mut checked = None;
        for attempt in 0..=DYING_RECHECKS {
            if attempt > 0 {
                tokio::time::sleep(DYING_RECHECK_PAUSE).await;
            }
            checked = {
                let _slot = self.heal_slots.acquire().await.map_err(|e| e.to_string())?;
                self.check_one(target, name, version).await?
            };
            // The engine may list a container as running for a moment after its `die` event
            // (seen under load): a running one failing its health check right after an event is
            // looked at again before the verdict. So is one still being stopped or removed
            // (`docker rm -f` under load): it is about to be gone (lost), not crashed.
            let dying = checked.as_ref().is_some_and(|c| {
                (c.container == Some(InfraStatus::Running) && c.status != plan::RUNNING)
                    || (c.container == Some(InfraStatus::Error)
                        && c.error
                            .as_deref()
                            .is_some_and(|e| e.contains(IN_TRANSITION)))
            });
            if !dying {
                break;
            }
        }
        let Some(checked) = checked.filter(Checked::needs_restart) else {
            return Ok(());
        };
        // A container may be on its way out (`docker rm -f`: `die` comes before the removal
        // starts, and a container being removed may already be missing from listings before its
        // `destroy` event): a moment is left for further events. Another event of this fatman
        // arriving meanwhile means the picture changed, so it is checked again (by the caller's
        // loop) before anything is restarted; a restart never races the removal.
        tokio::time::sleep(DYING_RECHECK_PAUSE).await;
        if self.in_flight.pending(key) {
            return Ok(());
        }
        match self
            .healer
            .decide(name, version, checked.error.as_deref(), Instant::now())
        {
            Verdict::Hold { reason, newly } => {
                if newly {
                    self.metrics.crash_loops.inc();
                    tracing::error!(fatman = %name, version = %version, %reason, "fatman keeps crashing: left in error");
                    // Writes the crash-loop reason (the plan applies it to held fatmen).
                    let _slot = self.heal_slots.acquire().await.map_err(|e| e.to_string())?;
                    self.check_one(target, name, version).await?;
                }
                Ok(())
            }
            Verdict::RestartAfter(wait) => {
                if !wait.is_zero() {
                    tracing::info!(fatman = %name, version = %version, wait_secs = wait.as_secs_f64(), "restart backing off");
                    let stopping = self.stopping.notified();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stopping => return Ok(()),
                    }
                }
                let _slot = self.heal_slots.acquire().await.map_err(|e| e.to_string())?;
                if !self.leadership.is_leader() {
                    return Ok(());
                }
                // After a wait the picture may have changed (deployed, deleted, restarted).
                if !wait.is_zero() {
                    match self.check_one(target, name, version).await? {
                        Some(c) if c.needs_restart() => {}
                        _ => return Ok(()),
                    }
                }
                self.healer.record_restart(name, version, Instant::now());
                // Failures are counted, logged and audited there; the next event or reconcile retries.
                let _ = self.reprovision_reported(name, version).await;
                Ok(())
            }
        }
    }

    /// One fatman's sync: the same plan and writes as a full sync, for one registry row. `None`
    /// when there is nothing to judge: not registered (orphans are left to the full sync), an
    /// orphan, or a deployment of it in progress.
    pub async fn check_one(
        &self,
        target_name: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<Checked>, String> {
        let target = self
            .targets
            .get(target_name)
            .ok_or_else(|| format!("target {target_name} is not watched"))?;
        let found = target
            .get(name, version)
            .await
            .map_err(|e| format!("looking up {name} {version} on the {target_name} target: {e}"))?;
        let listing = self
            .lifecycle
            .list(Some((name, version)), self.config.deployment_stale)
            .await
            .map_err(|e| format!("asking Lifecycle about {name} {version}: {e}"))?;
        let busy = listing
            .busy
            .contains(&(name.to_string(), version.to_string()));
        let row = listing
            .rows
            .into_iter()
            .find(|r| r.name == name && r.version == version);
        let Some(row) = row else {
            return Ok(None);
        };
        if busy || (row.status == plan::ORPHANED && !row.has_manifest) {
            return Ok(None);
        }
        let cluster: Vec<(String, racetrack_infra::DeployedFatman)> = found
            .iter()
            .map(|f| (target_name.to_string(), f.clone()))
            .collect();
        let mut probes: HashMap<String, Probe> = HashMap::new();
        for (target, resource, address) in
            plan::to_probe(std::slice::from_ref(&row), &cluster, &HashSet::new())
        {
            probes.insert(resource, self.probe(&target, &address).await);
        }
        let watched: Vec<String> = self.targets.keys().cloned().collect();
        let held = self.healer.held();
        let mut decided = plan::plan(&Inputs {
            rows: std::slice::from_ref(&row),
            cluster: &cluster,
            probes: &probes,
            busy: &HashSet::new(),
            watched: &watched,
            now: chrono::Utc::now().naive_utc(),
            orphan_grace: self.config.orphan_grace,
            held: &held,
        });
        let (status, error) = match decided.changes.first() {
            Some(c) => (c.to.status, c.to.error.clone()),
            None => (row.status, row.error.clone()),
        };
        if !self.leadership.is_leader() {
            return Err("not the leader any more; nothing written".into());
        }
        let changes = std::mem::take(&mut decided.changes);
        let unchanged = std::mem::take(&mut decided.unchanged);
        let (written, _, _) = self.write(changes, unchanged, vec![], vec![]).await?;
        self.announce(&written);
        Ok(Some(Checked {
            status,
            error,
            container: found.map(|f| f.status),
            owner: row.deployed_by.clone(),
            can_reprovision: row.has_manifest,
            target_restarts_crashed: target.restarts_crashed(),
        }))
    }
}
