//! One sync: list every watched target, read the registry, health-check running fatmen, then
//! write what changed, register new orphans and remove orphans past their grace period.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use racetrack_db::models::Fatman;
use racetrack_db::repo::{fatmen, supervisor as repo};
use racetrack_db::Connection as _;
use racetrack_infra::DeployedFatman;
use racetrack_model::AuditLogEventType;
use serde::Serialize;
use serde_json::json;

use crate::plan::{self, Change, Inputs, Orphan, Probe, LOST, ORPHANED, ORPHAN_ERROR, RUNNING};
use crate::{audit, unix, Supervisor, TimedError};

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Unix time the sync ended.
    pub finished_at: i64,
    pub duration_ms: u64,
    /// Fatmen found in the infrastructure (all watched targets).
    pub found: usize,
    /// Running fatmen whose `/live` and `/ready` were checked.
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

    /// One full sync. Errors (a target that cannot be listed, the database) leave every status
    /// as it was: half a picture must not mark fatmen lost.
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
        let stale = chrono::Duration::from_std(self.config.deployment_stale)
            .unwrap_or(chrono::Duration::MAX);
        let (rows, busy) = self
            .blocking(move |conn| {
                let rows: Vec<Fatman> = repo::list_with_check_time(conn)?
                    .into_iter()
                    .map(|(row, _)| row)
                    .collect();
                let since = racetrack_db::now()
                    .checked_sub_signed(stale)
                    .unwrap_or(chrono::NaiveDateTime::MIN);
                let busy = repo::deployments_in_progress(conn, since)?;
                Ok((rows, busy))
            })
            .await?;
        let busy: HashSet<(String, String)> = busy.into_iter().collect();

        // 3. Health of the running ones, concurrently (bounded).
        let to_probe = plan::to_probe(&rows, &cluster, &busy);
        let health_checked = to_probe.len();
        let probes: HashMap<String, Probe> = futures_util::stream::iter(to_probe)
            .map(|(resource, address)| async move { (resource, self.probe(&address).await) })
            .buffer_unordered(self.config.check_concurrency)
            .collect()
            .await;

        // 4. Decide.
        let watched: Vec<String> = self.targets.keys().cloned().collect();
        let now = racetrack_db::now();
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
            .blocking(move |conn| {
                conn.transaction(|conn| write_sync(conn, changes, unchanged, new_orphans, vanished))
            })
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
            if let Some(n) = decided.counts.get_mut(&ORPHANED) {
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
            counts: decided
                .counts
                .into_iter()
                .map(|(status, n)| (status.to_string(), n))
                .collect(),
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

    /// `/live` + `/ready` (3 s timeouts), and `last_call_timestamp` from `/metrics` when alive.
    pub(crate) async fn probe(&self, address: &str) -> Probe {
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

    /// Removes an orphan's container and its registry row, after checking once more that it is
    /// still an orphan and no deploy of it started. `Ok(false)`: it no longer is one.
    async fn remove_orphan(&self, orphan: &Orphan) -> Result<bool, String> {
        if !self.leadership.is_leader() {
            return Err("not the leader any more".into());
        }
        let (id, name, version) = (
            orphan.id.clone(),
            orphan.name.clone(),
            orphan.version.clone(),
        );
        let stale = chrono::Duration::from_std(self.config.deployment_stale)
            .unwrap_or(chrono::Duration::MAX);
        let still_orphan = self
            .blocking(move |conn| {
                let row = fatmen::find_by_id(conn, &id)?;
                let since = racetrack_db::now()
                    .checked_sub_signed(stale)
                    .unwrap_or(chrono::NaiveDateTime::MIN);
                let busy = repo::deployments_in_progress(conn, since)?
                    .contains(&(name.clone(), version.clone()));
                Ok(row.is_some_and(|r| r.status == ORPHANED && r.manifest.is_none()) && !busy)
            })
            .await?;
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
        let (id, name, version) = (
            orphan.id.clone(),
            orphan.name.clone(),
            orphan.version.clone(),
        );
        let target_name = orphan.target.clone();
        let found_at = unix(orphan.found);
        let grace = self.config.orphan_grace.as_secs_f64();
        self.blocking(move |conn| {
            conn.transaction(|conn| {
                if repo::delete_orphan(conn, &id)? {
                    audit(
                        conn,
                        AuditLogEventType::FatmanOrphanRemoved,
                        &name,
                        &version,
                        None,
                        Some(json!({
                            "target": target_name,
                            "container": racetrack_model::names::resource_name(&name, &version),
                            "found_at": found_at,
                            "grace_secs": grace,
                        })),
                    )?;
                }
                Ok(())
            })
        })
        .await?;
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

/// The database side of a sync, in one transaction.
pub(crate) fn write_sync(
    conn: &mut racetrack_db::DbConnection,
    changes: Vec<Change>,
    unchanged: Vec<String>,
    new_orphans: Vec<(String, DeployedFatman)>,
    vanished: Vec<Orphan>,
) -> Result<Written, racetrack_db::DbError> {
    let now = racetrack_db::now();
    let mut written = Vec::new();
    let mut superseded = 0;
    for c in changes {
        let observed = repo::Observation {
            status: c.to.status,
            error: c.to.error.as_deref(),
            internal_name: c.to.internal_name.as_deref(),
            infrastructure_target: c.to.infrastructure_target.as_deref(),
            last_call_time: c.to.last_call_time,
        };
        if !repo::record_observation(conn, &c.id, c.read_update_time, c.from, &observed, now)? {
            superseded += 1;
            continue;
        }
        if c.to.status == LOST && c.from != LOST {
            audit(
                conn,
                AuditLogEventType::FatmanLost,
                &c.name,
                &c.version,
                c.owner.as_deref(),
                Some(json!({"previous_status": c.from})),
            )?;
        }
        written.push(c);
    }
    repo::touch_checked(conn, &unchanged, now)?;
    let mut registered = Vec::new();
    for (target, found) in new_orphans {
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
                status: ORPHANED,
                create_time: now,
                update_time: now,
                manifest: None,
                internal_name: (!found.internal_name.is_empty())
                    .then(|| found.internal_name.clone()),
                error: Some(ORPHAN_ERROR.into()),
                image_tag,
                deployed_by: None,
                last_call_time: None,
                infrastructure_target: Some(target.clone()),
            },
        )?;
        repo::touch_checked(conn, std::slice::from_ref(&id), now)?;
        audit(
            conn,
            AuditLogEventType::FatmanOrphaned,
            &found.name,
            &found.version,
            None,
            Some(json!({
                "target": target,
                "container": found.resource_name,
                "image": found.image,
                "container_status": found.status.as_str(),
            })),
        )?;
        registered.push((found.name, found.version, found.resource_name, target));
    }
    for orphan in vanished {
        if repo::delete_orphan(conn, &orphan.id)? {
            tracing::info!(fatman = %orphan.name, version = %orphan.version, "orphan's container is gone: registry entry dropped");
            audit(
                conn,
                AuditLogEventType::FatmanOrphanRemoved,
                &orphan.name,
                &orphan.version,
                None,
                Some(json!({"container": "already gone"})),
            )?;
        }
    }
    Ok((written, superseded, registered))
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
