//! One sync: list every watched target, ask Lifecycle for the registry, health-check running
//! fatmen, then report what changed and new orphans to Lifecycle (which writes and audits them)
//! and remove orphans past their grace period.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use racetrack_infra::DeployedFatman;
use racetrack_proto::supervisor as wire;
use serde::Serialize;

use crate::lifecycle::{nanos, wire_status};
use crate::plan::{self, Change, Inputs, Orphan, Probe, LOST, ORPHANED, RUNNING};
use crate::{unix, Supervisor, TimedError};

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Unix time the sync ended.
    pub finished_at: i64,
    pub duration_ms: u64,
    /// Fatmen found in the infrastructure (all watched targets).
    pub found: usize,
    /// Running fatmen whose `/live` and `/ready` were checked (not those on a target that judges
    /// health itself, Kubernetes).
    pub health_checked: usize,
    pub status_changes: usize,
    /// Changes not written because a deploy changed the row meanwhile (retried next sync).
    pub superseded: usize,
    pub marked_lost: usize,
    pub orphans_registered: usize,
    pub orphans_removed: usize,
    pub skipped_busy: usize,
    pub skipped_unwatched: usize,
    /// Registered fatmen by status after this sync.
    pub counts: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrphanView {
    pub name: String,
    pub version: String,
    pub target: String,
    /// Unix time it was registered as an orphan.
    pub found_at: i64,
    /// Unix time its container is due for removal.
    pub removal_due_at: i64,
    /// `waiting` (grace period running), `kept (dry run)` or `removal failed: …`.
    pub state: String,
}

impl OrphanView {
    fn new(o: &Orphan, state: impl Into<String>) -> OrphanView {
        OrphanView {
            name: o.name.clone(),
            version: o.version.clone(),
            target: o.target.clone(),
            found_at: unix(o.found),
            removal_due_at: unix(o.due),
            state: state.into(),
        }
    }
}

impl Supervisor {
    /// Syncs every `SYNC_INTERVAL_SECS` while leading, until `stop`.
    pub async fn sync_loop(self: Arc<Self>, stop: Arc<AtomicBool>) {
        while self.until_leader(&stop).await {
            match self.sync_once().await {
                Ok(report) => tracing::info!(
                    duration_ms = report.duration_ms,
                    found = report.found,
                    health_checked = report.health_checked,
                    status_changes = report.status_changes,
                    orphans_removed = report.orphans_removed,
                    counts = ?report.counts,
                    "sync done"
                ),
                Err(e) => tracing::error!(error = %e, "sync failed; retrying at the next interval"),
            }
            // A broken event stream asks for a sync at once (events may have been missed).
            tokio::select! {
                stopped = self.pause(self.config.sync_interval, &stop) => if stopped { break },
                _ = self.resync.notified() => {}
            }
        }
    }

    /// One full sync. Errors (a target that cannot be listed, Lifecycle) leave every status
    /// as it was: half a picture must not mark fatmen lost.
    #[tracing::instrument(name = "sync", skip_all)]
    pub async fn sync_once(&self) -> Result<SyncReport, String> {
        let started = Instant::now();
        let result = self.sync_inner(started).await;
        let elapsed = started.elapsed();
        self.metrics.sync_duration.observe(elapsed.as_secs_f64());
        match &result {
            Ok(report) => {
                self.metrics.sync_runs.with_label_values(&["ok"]).inc();
                self.metrics.last_sync.set(report.finished_at);
                for status in racetrack_model::FatmanStatus::ALL {
                    let n = report.counts.get(status.as_str()).copied().unwrap_or(0);
                    self.metrics
                        .fatmen
                        .with_label_values(&[status.as_str()])
                        .set(n as i64);
                }
                let report = report.clone();
                self.update_report(|r| {
                    r.last_sync = Some(report);
                    r.last_sync_error = None;
                    r.syncs_completed += 1;
                });
            }
            Err(e) => {
                self.metrics.sync_runs.with_label_values(&["failed"]).inc();
                let error = TimedError {
                    time: chrono::Utc::now().timestamp(),
                    error: e.clone(),
                };
                self.update_report(|r| r.last_sync_error = Some(error));
            }
        }
        result
    }

    async fn sync_inner(&self, started: Instant) -> Result<SyncReport, String> {
        // 1. What runs.
        let mut cluster: Vec<(String, DeployedFatman)> = Vec::new();
        for (name, target) in &self.targets {
            let found = target
                .list()
                .await
                .map_err(|e| format!("listing fatmen on the {name} target: {e}"))?;
            cluster.extend(found.into_iter().map(|f| (name.clone(), f)));
        }

        // 2. What the registry says, and which fatmen a deploy is working on.
        let listing = self
            .lifecycle
            .list(None, self.config.deployment_stale)
            .await
            .map_err(|e| format!("listing fatmen at Lifecycle: {e}"))?;
        let (rows, busy) = (listing.rows, listing.busy);

        // 3. Health of the running ones, concurrently (bounded).
        let to_probe = plan::to_probe(&rows, &cluster, &busy);
        let health_checked = to_probe
            .iter()
            .filter(|(target, _, _)| !self.target_judges_health(target))
            .count();
        let probes: HashMap<String, Probe> = futures_util::stream::iter(to_probe)
            .map(|(target, resource, address)| async move {
                (resource, self.probe(&target, &address).await)
            })
            .buffer_unordered(self.config.check_concurrency)
            .collect()
            .await;

        // 4. Decide.
        let watched: Vec<String> = self.targets.keys().cloned().collect();
        let now = chrono::Utc::now().naive_utc();
        let held = self.healer.held();
        let mut decided = plan::plan(&Inputs {
            rows: &rows,
            cluster: &cluster,
            probes: &probes,
            busy: &busy,
            watched: &watched,
            now,
            orphan_grace: self.config.orphan_grace,
            held: &held,
        });

        // 5. Write (only while leading: a replica that lost the lease must not act).
        if !self.leadership.is_leader() {
            return Err("lost the leadership during the sync; nothing written".into());
        }
        let changes = std::mem::take(&mut decided.changes);
        let unchanged = std::mem::take(&mut decided.unchanged);
        let new_orphans = std::mem::take(&mut decided.new_orphans);
        let vanished = std::mem::take(&mut decided.vanished_orphans);
        let (written, superseded, registered) = self
            .write(changes, unchanged, new_orphans, vanished)
            .await?;
        let marked_lost = self.announce(&written);
        for (name, version, resource, _) in &registered {
            self.metrics.orphans_found.inc();
            tracing::warn!(fatman = %name, version = %version, container = %resource, grace_secs = self.config.orphan_grace.as_secs_f64(), dry_run = self.config.orphan_dry_run, "orphan found: registered as orphaned");
            self.events
                .publish(racetrack_events::Event::Fatman { name: name.clone() });
        }

        // 6. Orphans past their grace period.
        let mut views: Vec<OrphanView> = decided
            .waiting_orphans
            .iter()
            .map(|o| OrphanView::new(o, "waiting"))
            .collect();
        let mut removed = 0;
        for orphan in &decided.due_orphans {
            if self.config.orphan_dry_run {
                tracing::warn!(fatman = %orphan.name, version = %orphan.version, target = %orphan.target, "orphan is due for removal; kept because ORPHAN_DRY_RUN is set");
                views.push(OrphanView::new(orphan, "kept (dry run)"));
                continue;
            }
            match self.remove_orphan(orphan).await {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => {
                    self.metrics.orphan_removal_failures.inc();
                    tracing::error!(fatman = %orphan.name, version = %orphan.version, error = %e, "removing orphan failed");
                    views.push(OrphanView::new(orphan, format!("removal failed: {e}")));
                }
            }
        }
        for (name, version, _, target) in &registered {
            let due = now
                .checked_add_signed(
                    chrono::Duration::from_std(self.config.orphan_grace)
                        .unwrap_or(chrono::Duration::MAX),
                )
                .unwrap_or(chrono::NaiveDateTime::MAX);
            views.push(OrphanView {
                name: name.clone(),
                version: version.clone(),
                target: target.clone(),
                found_at: unix(now),
                removal_due_at: unix(due),
                state: "waiting".into(),
            });
        }
        self.metrics.orphans_pending.set(views.len() as i64);
        if removed > 0 {
            if let Some(n) = decided.counts.get_mut(ORPHANED.as_str()) {
                *n = n.saturating_sub(removed);
            }
        }
        self.update_report(|r| r.orphans = views);

        Ok(SyncReport {
            finished_at: chrono::Utc::now().timestamp(),
            duration_ms: started.elapsed().as_millis() as u64,
            found: cluster.len(),
            health_checked,
            status_changes: written.len(),
            superseded,
            marked_lost,
            orphans_registered: registered.len(),
            orphans_removed: removed,
            skipped_busy: decided.skipped_busy,
            skipped_unwatched: decided.skipped_unwatched,
            counts: decided.counts,
        })
    }

    /// Logs, counts and publishes written changes; returns how many were marked lost.
    pub(crate) fn announce(&self, written: &[Change]) -> usize {
        let mut marked_lost = 0;
        for c in written {
            if c.to.status == LOST {
                marked_lost += 1;
                tracing::warn!(fatman = %c.name, version = %c.version, from = %c.from, "fatman lost: not found in the infrastructure");
            } else if c.from != c.to.status {
                tracing::info!(
                    fatman = %c.name,
                    version = %c.version,
                    from = %c.from,
                    to = %c.to.status,
                    error = c.to.error.as_deref().unwrap_or(""),
                    "fatman status changed"
                );
            } else {
                tracing::debug!(fatman = %c.name, version = %c.version, "fatman details updated");
            }
            if c.from != c.to.status {
                self.metrics
                    .status_changes
                    .with_label_values(&[c.to.status.as_str()])
                    .inc();
            }
            self.events.publish(racetrack_events::Event::Fatman {
                name: c.name.clone(),
            });
            if c.to.status == RUNNING {
                self.healer.seen_running(&c.name, &c.version);
            }
        }
        marked_lost
    }

    /// Whether `target` reports health itself ([`racetrack_infra::InfrastructureTarget::judges_health`]).
    fn target_judges_health(&self, target: &str) -> bool {
        self.targets.get(target).is_some_and(|t| t.judges_health())
    }

    /// The health of a fatman `target` lists as running. Usually `/live` + `/ready` (3 s
    /// timeouts), and `last_call_timestamp` from `/metrics` when alive. On a target that judges
    /// health itself the listing is the verdict and nothing is called: on Kubernetes a pod is
    /// Ready only while its own `/ready` probe passes, and the NetworkPolicy lets only PUB reach
    /// fatman pods, so calls from the supervisor would fail (docs/architecture.md, "The
    /// supervisor").
    pub(crate) async fn probe(&self, target: &str, address: &str) -> Probe {
        if self.target_judges_health(target) {
            return Probe::judged_by_target();
        }
        let health = racetrack_infra::health::check(address).await;
        let last_call = if health.live {
            self.scrape_last_call(address).await
        } else {
            None
        };
        Probe { health, last_call }
    }

    async fn scrape_last_call(&self, address: &str) -> Option<chrono::NaiveDateTime> {
        let response = self
            .http
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        parse_last_call(&response.text().await.ok()?)
    }

    /// Removes an orphan's container (Lifecycle then drops its registry row), after checking once
    /// more with Lifecycle that it is still an orphan and no deploy of it started. `Ok(false)`: it
    /// no longer is one.
    async fn remove_orphan(&self, orphan: &Orphan) -> Result<bool, String> {
        if !self.leadership.is_leader() {
            return Err("not the leader any more".into());
        }
        let listing = self
            .lifecycle
            .list(
                Some((&orphan.name, &orphan.version)),
                self.config.deployment_stale,
            )
            .await
            .map_err(|e| e.to_string())?;
        let busy = listing
            .busy
            .contains(&(orphan.name.clone(), orphan.version.clone()));
        let still_orphan = !busy
            && listing
                .rows
                .iter()
                .any(|r| r.id == orphan.id && r.status == ORPHANED && !r.has_manifest);
        if !still_orphan {
            tracing::info!(fatman = %orphan.name, version = %orphan.version, "orphan was claimed meanwhile; not removed");
            return Ok(false);
        }
        let target = self
            .targets
            .get(&orphan.target)
            .ok_or_else(|| format!("target {} is not watched", orphan.target))?;
        target
            .delete(&orphan.name, &orphan.version)
            .await
            .map_err(|e| e.to_string())?;
        // Lifecycle drops the registry entry (if still an orphan) and audits the removal.
        self.lifecycle
            .report(wire::ObservationReport {
                gone_orphans: vec![wire::OrphanGone {
                    id: orphan.id.clone(),
                    name: orphan.name.clone(),
                    version: orphan.version.clone(),
                    target: orphan.target.clone(),
                    removed: true,
                    found_at: unix(orphan.found),
                    grace_secs: self.config.orphan_grace.as_secs_f64(),
                }],
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        self.metrics.orphans_removed.inc();
        tracing::warn!(fatman = %orphan.name, version = %orphan.version, target = %orphan.target, "orphan removed after its grace period");
        self.events.publish(racetrack_events::Event::Fatman {
            name: orphan.name.clone(),
        });
        Ok(true)
    }
}

/// Written changes, superseded changes, registered orphans `(name, version, container, target)`.
type Written = (Vec<Change>, usize, Vec<(String, String, String, String)>);

impl Supervisor {
    /// Reports a plan's outcome to Lifecycle, which writes it in one transaction (status changes
    /// only to rows unchanged since read) and audits it.
    pub(crate) async fn write(
        &self,
        changes: Vec<Change>,
        unchanged: Vec<String>,
        new_orphans: Vec<(String, DeployedFatman)>,
        vanished: Vec<Orphan>,
    ) -> Result<Written, String> {
        if changes.is_empty()
            && unchanged.is_empty()
            && new_orphans.is_empty()
            && vanished.is_empty()
        {
            return Ok((vec![], 0, vec![]));
        }
        let report = wire::ObservationReport {
            changes: changes
                .iter()
                .map(|c| wire::StatusChange {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    version: c.version.clone(),
                    read_status: wire_status(c.from),
                    read_update_time_nanos: nanos(c.read_update_time),
                    observed: Some(wire::Observation {
                        status: wire_status(c.to.status),
                        error: c.to.error.clone(),
                        internal_name: c.to.internal_name.clone(),
                        infrastructure_target: c.to.infrastructure_target.clone(),
                        last_call_time_nanos: c.to.last_call_time.map(nanos),
                    }),
                })
                .collect(),
            checked_ids: unchanged,
            new_orphans: new_orphans
                .iter()
                .map(|(target, found)| wire::FoundOrphan {
                    target: target.clone(),
                    name: found.name.clone(),
                    version: found.version.clone(),
                    resource_name: found.resource_name.clone(),
                    internal_name: found.internal_name.clone(),
                    image: found.image.clone(),
                    container_status: found.status.as_str().to_string(),
                })
                .collect(),
            gone_orphans: vanished
                .iter()
                .map(|o| wire::OrphanGone {
                    id: o.id.clone(),
                    name: o.name.clone(),
                    version: o.version.clone(),
                    target: o.target.clone(),
                    removed: false,
                    found_at: unix(o.found),
                    grace_secs: self.config.orphan_grace.as_secs_f64(),
                })
                .collect(),
            ..Default::default()
        };
        let outcome = self
            .lifecycle
            .report(report)
            .await
            .map_err(|e| format!("reporting to Lifecycle: {e}"))?;
        let written_ids: HashSet<&str> = outcome.written.iter().map(String::as_str).collect();
        let written: Vec<Change> = changes
            .into_iter()
            .filter(|c| written_ids.contains(c.id.as_str()))
            .collect();
        let registered_refs: HashSet<(&str, &str)> = outcome
            .registered
            .iter()
            .map(|r| (r.name.as_str(), r.version.as_str()))
            .collect();
        let registered = new_orphans
            .into_iter()
            .filter(|(_, f)| registered_refs.contains(&(f.name.as_str(), f.version.as_str())))
            .map(|(target, f)| (f.name, f.version, f.resource_name, target))
            .collect();
        for orphan in &vanished {
            if outcome.dropped.contains(&orphan.id) {
                tracing::info!(fatman = %orphan.name, version = %orphan.version, "orphan's container is gone: registry entry dropped");
            }
        }
        Ok((written, outcome.superseded as usize, registered))
    }
}

/// The first `last_call_timestamp` sample of a Prometheus text exposition (0 = never called).
pub fn parse_last_call(text: &str) -> Option<chrono::NaiveDateTime> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix("last_call_timestamp")?;
            let rest = if rest.starts_with('{') {
                &rest[rest.find('}')? + 1..]
            } else {
                rest
            };
            if !rest.starts_with([' ', '\t']) {
                return None;
            }
            let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
            (value.is_finite() && value > 0.0)
                .then(|| chrono::DateTime::from_timestamp(value as i64, 0))
                .flatten()
                .map(|t| t.naive_utc())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_call_is_read_from_metrics() {
        let text = "# HELP last_call_timestamp x\n# TYPE last_call_timestamp gauge\nlast_call_timestamp_other 5\nlast_call_timestamp 1.7e9\n";
        assert_eq!(
            parse_last_call(text).map(unix),
            Some(1_700_000_000),
            "{text}"
        );
        assert_eq!(
            parse_last_call("last_call_timestamp{job=\"a\"} 1700000001").map(unix),
            Some(1_700_000_001)
        );
        assert_eq!(parse_last_call("last_call_timestamp 0"), None);
        assert_eq!(parse_last_call("other 1"), None);
    }
}
