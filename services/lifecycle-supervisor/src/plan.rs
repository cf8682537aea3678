//! What one sync should change, decided without I/O from what the registry holds, what the
//! infrastructure runs and what the health checks answered (docs/architecture.md, "The
//! supervisor").
//!
//! - A registered fatman found in the infrastructure takes its status from there: `running` when
//!   its container runs and `/live` and `/ready` answer 200, else `error` with the reason. Its
//!   address and target are copied; `last_call_time` only moves forward.
//! - A registered fatman not found → `lost` (once; reconcile re-provisions it).
//! - A fatman found without a registry entry → registered as `orphaned`; its container is removed
//!   once the orphan is older than the grace period (or reported only, in dry-run).
//! - A fatman held by the crash-loop rule ([`crate::heal`]) and not running shows `error` with the
//!   crash-loop reason, whether its container exited or is gone (so reconcile leaves it alone).
//! - Fatmen with a deployment in progress are left alone (the deploy replaces containers and
//!   writes the row itself), as are fatmen on targets this supervisor does not watch.
//!
//! Deliberate difference: the original copied the cluster status over `orphaned` at the next sync
//! (an orphan looked `running` a minute later); here an orphan stays `orphaned` until it is removed
//! or a deploy claims that version.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::NaiveDateTime;
use racetrack_infra::{DeployedFatman, FatmanHealth, InfraStatus};
use racetrack_model::names::resource_name;
use racetrack_model::FatmanStatus;

pub const RUNNING: FatmanStatus = FatmanStatus::Running;
pub const ERROR: FatmanStatus = FatmanStatus::Error;
pub const LOST: FatmanStatus = FatmanStatus::Lost;
pub const ORPHANED: FatmanStatus = FatmanStatus::Orphaned;

/// Error text of a lost fatman.
pub const LOST_ERROR: &str = "not found in the infrastructure";
/// Error text of an orphan.
pub const ORPHAN_ERROR: &str = "found in the infrastructure without a registry entry";

/// A registered fatman as Lifecycle lists it (the columns a sync reads).
#[derive(Debug, Clone, PartialEq)]
pub struct FatmanRow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub status: FatmanStatus,
    pub create_time: NaiveDateTime,
    /// As read: a change is applied only to the row still carrying it.
    pub update_time: NaiveDateTime,
    /// It has a manifest (orphans have none; without one there is nothing to re-provision).
    pub has_manifest: bool,
    pub internal_name: Option<String>,
    pub error: Option<String>,
    pub deployed_by: Option<String>,
    pub last_call_time: Option<NaiveDateTime>,
    pub infrastructure_target: Option<String>,
    /// When a supervisor last checked it (`None`: never).
    pub last_check_time: Option<NaiveDateTime>,
}

/// What the health checks of one running fatman found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub health: FatmanHealth,
    /// From its `/metrics` (`last_call_timestamp`), when it has one.
    pub last_call: Option<NaiveDateTime>,
}

impl Probe {
    /// A fatman its target reports running, on a target whose `Running` already includes the
    /// health checks (Kubernetes: a Ready pod; `InfrastructureTarget::judges_health`). Its
    /// `/metrics` is out of reach there too, so no call time is learnt.
    pub fn judged_by_target() -> Probe {
        Probe {
            health: FatmanHealth {
                live: true,
                ready: true,
                error: None,
            },
            last_call: None,
        }
    }
}

/// The columns the supervisor owns, as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub status: FatmanStatus,
    pub error: Option<String>,
    pub internal_name: Option<String>,
    pub infrastructure_target: Option<String>,
    pub last_call_time: Option<NaiveDateTime>,
}

impl Observed {
    pub fn of_row(row: &FatmanRow) -> Observed {
        Observed {
            status: row.status,
            error: row.error.clone(),
            internal_name: row.internal_name.clone(),
            infrastructure_target: row.infrastructure_target.clone(),
            last_call_time: row.last_call_time,
        }
    }
}

/// A row whose observed state differs from the stored one.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: String,
    pub name: String,
    pub version: String,
    pub read_update_time: NaiveDateTime,
    /// Who deployed it (the audit event's subject).
    pub owner: Option<String>,
    pub from: FatmanStatus,
    pub to: Observed,
}

/// A registered orphan whose container still runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Orphan {
    pub id: String,
    pub name: String,
    pub version: String,
    pub target: String,
    /// When it was registered (the grace period counts from here).
    pub found: NaiveDateTime,
    /// When its container is (or was) due for removal.
    pub due: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Status/details changes (including → `lost`), applied only to unchanged rows.
    pub changes: Vec<Change>,
    /// Rows checked and found as stored: only `last_check_time` moves.
    pub unchanged: Vec<String>,
    /// Fatmen in the infrastructure without a registry entry: `(target, fatman)`.
    pub new_orphans: Vec<(String, DeployedFatman)>,
    /// Registered orphans still present, and not yet due.
    pub waiting_orphans: Vec<Orphan>,
    /// Registered orphans due for removal now.
    pub due_orphans: Vec<Orphan>,
    /// Registered orphans whose container is gone: the row is dropped.
    pub vanished_orphans: Vec<Orphan>,
    /// Left alone because a deployment of them is in progress.
    pub skipped_busy: usize,
    /// Left alone because their target is not watched by this supervisor.
    pub skipped_unwatched: usize,
    /// Status of every registered fatman after this plan (for `/health` and the gauges).
    pub counts: BTreeMap<String, usize>,
}

pub struct Inputs<'a> {
    pub rows: &'a [FatmanRow],
    /// Everything every watched target runs: `(target name, fatman)`.
    pub cluster: &'a [(String, DeployedFatman)],
    /// Health of running fatmen, by resource name.
    pub probes: &'a HashMap<String, Probe>,
    /// `(name, version)` with a deployment in progress.
    pub busy: &'a HashSet<(String, String)>,
    /// Targets this supervisor lists (a row naming another target is not judged).
    pub watched: &'a [String],
    pub now: NaiveDateTime,
    pub orphan_grace: Duration,
    /// Fatmen held in `error` by the crash-loop rule: resource name → reason.
    pub held: &'a HashMap<String, String>,
}

fn is_orphan_row(row: &FatmanRow) -> bool {
    row.status == ORPHANED && !row.has_manifest
}

/// Running containers of registered, non-orphan, non-busy fatmen: `(target, resource name,
/// address)` to health-check (how depends on the target: `Supervisor::probe`).
pub fn to_probe(
    rows: &[FatmanRow],
    cluster: &[(String, DeployedFatman)],
    busy: &HashSet<(String, String)>,
) -> Vec<(String, String, String)> {
    let registered: HashSet<String> = rows
        .iter()
        .filter(|r| !is_orphan_row(r) && !busy.contains(&(r.name.clone(), r.version.clone())))
        .map(|r| resource_name(&r.name, &r.version))
        .collect();
    cluster
        .iter()
        .filter(|(_, f)| f.status == InfraStatus::Running && registered.contains(&f.resource_name))
        .map(|(target, f)| {
            (
                target.clone(),
                f.resource_name.clone(),
                f.internal_name.clone(),
            )
        })
        .collect()
}

/// The status a found fatman has: from its container, then from its health checks.
pub fn observe(
    row: &FatmanRow,
    target: &str,
    found: &DeployedFatman,
    probe: Option<&Probe>,
) -> Observed {
    let (status, error) = match (found.status, probe) {
        (InfraStatus::Running, Some(p)) if p.health.live && p.health.ready => (RUNNING, None),
        (InfraStatus::Running, Some(p)) => (
            ERROR,
            Some(
                p.health
                    .error
                    .clone()
                    .unwrap_or_else(|| "health check failed".into()),
            ),
        ),
        (InfraStatus::Running, None) => (ERROR, Some("fatman was not health-checked".into())),
        (other, _) => (
            ERROR,
            Some(
                found
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("container is {other}")),
            ),
        ),
    };
    let internal_name = if found.internal_name.is_empty() {
        row.internal_name.clone()
    } else {
        Some(found.internal_name.clone())
    };
    let last_call_time = match (row.last_call_time, probe.and_then(|p| p.last_call)) {
        (Some(stored), Some(seen)) => Some(stored.max(seen)),
        (stored, seen) => stored.or(seen),
    };
    Observed {
        status,
        error,
        internal_name,
        infrastructure_target: Some(target.to_string()),
        last_call_time,
    }
}

pub fn plan(input: &Inputs<'_>) -> Plan {
    let mut out = Plan::default();
    let cluster: HashMap<&str, &(String, DeployedFatman)> = input
        .cluster
        .iter()
        .map(|entry| (entry.1.resource_name.as_str(), entry))
        .collect();
    let mut registered: HashSet<String> = HashSet::new();
    let grace = chrono::Duration::from_std(input.orphan_grace).unwrap_or(chrono::Duration::MAX);

    for row in input.rows {
        let resource = resource_name(&row.name, &row.version);
        registered.insert(resource.clone());
        let mut final_status = row.status;
        let busy = input
            .busy
            .contains(&(row.name.clone(), row.version.clone()));
        let unwatched = row
            .infrastructure_target
            .as_ref()
            .is_some_and(|t| !input.watched.contains(t));
        let found = cluster.get(resource.as_str()).copied();
        if busy {
            out.skipped_busy += 1;
        } else if unwatched && found.is_none() {
            out.skipped_unwatched += 1;
        } else if is_orphan_row(row) {
            let (target, present) = match found {
                Some((t, _)) => (t.clone(), true),
                None => (row.infrastructure_target.clone().unwrap_or_default(), false),
            };
            let orphan = Orphan {
                id: row.id.clone(),
                name: row.name.clone(),
                version: row.version.clone(),
                target,
                found: row.create_time,
                due: row
                    .create_time
                    .checked_add_signed(grace)
                    .unwrap_or(NaiveDateTime::MAX),
            };
            if present {
                // Seen again: its check time moves like any other fatman's.
                out.unchanged.push(row.id.clone());
            }
            if !present {
                out.vanished_orphans.push(orphan);
            } else if orphan.due <= input.now {
                out.due_orphans.push(orphan);
            } else {
                out.waiting_orphans.push(orphan);
            }
        } else {
            let current = Observed::of_row(row);
            let mut observed = match found {
                Some((target, f)) => observe(row, target, f, input.probes.get(&resource)),
                None => Observed {
                    status: LOST,
                    error: Some(LOST_ERROR.into()),
                    ..current.clone()
                },
            };
            if let Some(reason) = input.held.get(&resource) {
                if observed.status != RUNNING {
                    observed.status = ERROR;
                    observed.error = Some(reason.clone());
                }
            }
            // An already lost fatman keeps whatever error it had.
            let unchanged = observed == current || (found.is_none() && row.status == LOST);
            if unchanged {
                out.unchanged.push(row.id.clone());
            } else {
                final_status = observed.status;
                out.changes.push(Change {
                    id: row.id.clone(),
                    name: row.name.clone(),
                    version: row.version.clone(),
                    read_update_time: row.update_time,
                    owner: row.deployed_by.clone(),
                    from: row.status,
                    to: observed,
                });
            }
        }
        *out.counts
            .entry(final_status.as_str().to_string())
            .or_default() += 1;
    }

    for (target, found) in input.cluster {
        if registered.contains(&found.resource_name) {
            continue;
        }
        if input
            .busy
            .contains(&(found.name.clone(), found.version.clone()))
        {
            // A deploy creates the container before it registers the fatman.
            out.skipped_busy += 1;
            continue;
        }
        *out.counts.entry(ORPHANED.to_string()).or_default() += 1;
        out.new_orphans.push((target.clone(), found.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap as Map;

    fn t(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0)
            .unwrap()
            .naive_utc()
    }

    fn row(name: &str, status: FatmanStatus) -> FatmanRow {
        FatmanRow {
            id: format!("id-{name}"),
            name: name.into(),
            version: "1.0.0".into(),
            status,
            create_time: t(0),
            update_time: t(0),
            has_manifest: true,
            internal_name: Some("127.0.0.1:1000".into()),
            error: None,
            deployed_by: Some("alice".into()),
            last_call_time: None,
            infrastructure_target: Some("docker".into()),
            last_check_time: None,
        }
    }

    fn container(name: &str, status: InfraStatus) -> (String, DeployedFatman) {
        (
            "docker".into(),
            DeployedFatman {
                name: name.into(),
                version: "1.0.0".into(),
                resource_name: resource_name(name, "1.0.0"),
                internal_name: "127.0.0.1:1000".into(),
                status,
                error: (status != InfraStatus::Running).then(|| "exited with code 3".into()),
                create_time: 0,
                image: None,
                labels: Map::new(),
            },
        )
    }

    fn healthy() -> Probe {
        Probe {
            health: FatmanHealth {
                live: true,
                ready: true,
                error: None,
            },
            last_call: None,
        }
    }

    struct Case {
        rows: Vec<FatmanRow>,
        cluster: Vec<(String, DeployedFatman)>,
        probes: HashMap<String, Probe>,
        busy: HashSet<(String, String)>,
        now: NaiveDateTime,
        grace: Duration,
        held: HashMap<String, String>,
    }

    impl Case {
        fn new(rows: Vec<FatmanRow>, cluster: Vec<(String, DeployedFatman)>) -> Case {
            Case {
                rows,
                cluster,
                probes: HashMap::new(),
                busy: HashSet::new(),
                now: t(100),
                grace: Duration::from_secs(60),
                held: HashMap::new(),
            }
        }

        fn plan(&self) -> Plan {
            let watched = vec!["docker".to_string()];
            plan(&Inputs {
                rows: &self.rows,
                cluster: &self.cluster,
                probes: &self.probes,
                busy: &self.busy,
                watched: &watched,
                now: self.now,
                orphan_grace: self.grace,
                held: &self.held,
            })
        }
    }

    #[test]
    fn a_held_fatman_stays_in_error_with_the_crash_loop_reason() {
        let reason = "crash loop: restarted 5 times".to_string();
        // Its container is gone: error with the reason, not lost (reconcile would restart it).
        let mut case = Case::new(vec![row("a", ERROR)], vec![]);
        case.held
            .insert(resource_name("a", "1.0.0"), reason.clone());
        let p = case.plan();
        assert_eq!(p.changes.len(), 1, "{p:?}");
        assert_eq!(p.changes[0].to.status, ERROR);
        assert_eq!(p.changes[0].to.error.as_deref(), Some(reason.as_str()));
        // Once written, later plans change nothing.
        let mut held_row = row("a", ERROR);
        held_row.error = Some(reason.clone());
        case.rows = vec![held_row];
        assert!(case.plan().changes.is_empty());
        // Exited container: the same.
        case.cluster = vec![container("a", InfraStatus::Exited)];
        assert!(case.plan().changes.is_empty(), "{:?}", case.plan());
        // Deployed again and healthy: running.
        case.cluster = vec![container("a", InfraStatus::Running)];
        case.probes.insert(resource_name("a", "1.0.0"), healthy());
        assert_eq!(case.plan().changes[0].to.status, RUNNING);
    }

    #[test]
    fn healthy_running_fatman_is_unchanged() {
        let mut case = Case::new(
            vec![row("a", RUNNING)],
            vec![container("a", InfraStatus::Running)],
        );
        case.probes.insert(resource_name("a", "1.0.0"), healthy());
        let p = case.plan();
        assert!(p.changes.is_empty(), "{p:?}");
        assert_eq!(p.unchanged, ["id-a"]);
        assert_eq!(p.counts[RUNNING.as_str()], 1);
    }

    #[test]
    fn missing_fatman_becomes_lost_once() {
        let p = Case::new(vec![row("a", RUNNING)], vec![]).plan();
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].from, RUNNING);
        assert_eq!(p.changes[0].to.status, LOST);
        assert_eq!(p.changes[0].to.error.as_deref(), Some(LOST_ERROR));
        assert_eq!(p.counts[LOST.as_str()], 1);
        let mut lost = row("a", LOST);
        lost.error = Some("something earlier".into());
        let p = Case::new(vec![lost], vec![]).plan();
        assert!(p.changes.is_empty());
        assert_eq!(p.unchanged, ["id-a"]);
    }

    #[test]
    fn failing_health_and_crashed_containers_are_errors_with_reasons() {
        let mut case = Case::new(
            vec![row("a", RUNNING), row("b", RUNNING)],
            vec![
                container("a", InfraStatus::Running),
                container("b", InfraStatus::Exited),
            ],
        );
        case.probes.insert(
            resource_name("a", "1.0.0"),
            Probe {
                health: FatmanHealth {
                    live: true,
                    ready: false,
                    error: Some("fatman is still initializing: GET /ready answered 503".into()),
                },
                last_call: None,
            },
        );
        let p = case.plan();
        assert_eq!(p.changes.len(), 2);
        assert_eq!(p.changes[0].to.status, ERROR);
        assert!(p.changes[0].to.error.as_deref().unwrap().contains("/ready"));
        assert_eq!(p.changes[1].to.error.as_deref(), Some("exited with code 3"));
    }

    #[test]
    fn recovered_fatman_runs_again_with_new_address_and_newer_last_call() {
        let mut stored = row("a", ERROR);
        stored.error = Some("old".into());
        stored.last_call_time = Some(t(50));
        let mut case = Case::new(vec![stored], vec![container("a", InfraStatus::Running)]);
        case.cluster[0].1.internal_name = "127.0.0.1:2000".into();
        case.probes.insert(
            resource_name("a", "1.0.0"),
            Probe {
                last_call: Some(t(10)),
                ..healthy()
            },
        );
        let p = case.plan();
        let to = &p.changes[0].to;
        assert_eq!(to.status, RUNNING);
        assert_eq!(to.error, None);
        assert_eq!(to.internal_name.as_deref(), Some("127.0.0.1:2000"));
        assert_eq!(to.last_call_time, Some(t(50)), "last call never moves back");
    }

    #[test]
    fn busy_fatmen_are_left_alone_and_their_containers_are_no_orphans() {
        let mut case = Case::new(
            vec![row("a", RUNNING)],
            vec![container("b", InfraStatus::Running)],
        );
        case.busy.insert(("a".into(), "1.0.0".into()));
        case.busy.insert(("b".into(), "1.0.0".into()));
        let p = case.plan();
        assert!(p.changes.is_empty() && p.unchanged.is_empty() && p.new_orphans.is_empty());
        assert_eq!(p.skipped_busy, 2);
        assert!(to_probe(&case.rows, &case.cluster, &case.busy).is_empty());
    }

    #[test]
    fn unknown_containers_are_new_orphans_and_orphans_age_into_removal() {
        let p = Case::new(vec![], vec![container("x", InfraStatus::Running)]).plan();
        assert_eq!(p.new_orphans.len(), 1);
        assert_eq!(p.counts[ORPHANED.as_str()], 1);

        let mut orphan = row("x", ORPHANED);
        orphan.has_manifest = false;
        orphan.create_time = t(0);
        let mut case = Case::new(
            vec![orphan.clone()],
            vec![container("x", InfraStatus::Running)],
        );
        case.now = t(59);
        let p = case.plan();
        assert_eq!(p.waiting_orphans.len(), 1);
        assert!(
            p.due_orphans.is_empty() && p.changes.is_empty(),
            "stays orphaned"
        );
        assert!(to_probe(&case.rows, &case.cluster, &case.busy).is_empty());
        case.now = t(60);
        let p = case.plan();
        assert_eq!(p.due_orphans.len(), 1);
        assert_eq!(p.due_orphans[0].due, t(60));

        let p = Case::new(vec![orphan], vec![]).plan();
        assert_eq!(p.vanished_orphans.len(), 1);
        assert!(
            p.changes.is_empty(),
            "a vanished orphan is dropped, not lost"
        );
    }

    #[test]
    fn rows_on_unwatched_targets_are_not_judged() {
        let mut k8s = row("k", RUNNING);
        k8s.infrastructure_target = Some("kubernetes".into());
        let p = Case::new(vec![k8s], vec![]).plan();
        assert!(p.changes.is_empty());
        assert_eq!(p.skipped_unwatched, 1);
    }
}
