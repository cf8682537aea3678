//! The decision itself, without I/O: from what the registry holds and which fatmen exist, which
//! tags go and why every other tag stays.
//!
//! Rules (README, "Operations: registry cleaner"):
//! - Only fatman image repositories are considered: `{namespace}/fatman-entrypoint/{name}` and the
//!   extra containers' `{namespace}/fatman-{index}/{name}`. Base images and anything else are left
//!   alone.
//! - Only tags in the image-builder's format (`YYYY-MM-DDTHHMMSS`, UTC deployment time) may go.
//! - A tag that an existing fatman version runs (its `image_tag`) always stays.
//! - A fatman that exists keeps its newest `keep` unused tags; older unused ones go.
//! - Every tag of a fatman that no longer exists goes.
//! - A tag younger than `min_age` stays: a deployment may have pushed it and not yet recorded the
//!   fatman that uses it.
//! - The registry deletes manifests, not tags: a tag sharing its manifest with a tag that stays,
//!   stays too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{NaiveDateTime, TimeDelta};

/// `strftime` format of the tags the image-builder gives fatman images.
pub const TAG_FORMAT: &str = "%Y-%m-%dT%H%M%S";

const ENTRYPOINT_KIND: &str = "fatman-entrypoint";

/// One repository as the registry lists it, each tag with its manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub digest: String,
}

/// An existing fatman version, as Lifecycle lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatman {
    pub name: String,
    pub version: String,
    pub image_tag: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    /// Path prefix of fatman images in the registry (the image-builder's
    /// `DOCKER_REGISTRY_NAMESPACE`); empty when images have none.
    pub namespace: String,
    /// Unused tags kept per repository of an existing fatman, newest first.
    pub keep: usize,
    /// Tags younger than this are never deleted.
    pub min_age: TimeDelta,
    /// The current UTC time (tags are UTC).
    pub now: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteReason {
    FatmanGone { fatman: String },
    BeyondRetention { keep: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepReason {
    InUse {
        fatman: String,
        versions: Vec<String>,
    },
    Newest {
        keep: usize,
    },
    TooRecent {
        min_age_minutes: i64,
    },
    NotRacetrackTag,
    SharesManifest {
        with: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delete(DeleteReason),
    Keep(KeepReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagDecision {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub decision: Decision,
}

/// A manifest to delete and the tags that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDeletion {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every tag of every fatman image repository, by repository then tag.
    pub decisions: Vec<TagDecision>,
    /// Fatman image repositories considered.
    pub fatman_repositories: usize,
    /// Repositories that are not fatman images (left alone).
    pub other_repositories: usize,
}

impl Plan {
    pub fn deletions(&self) -> impl Iterator<Item = &TagDecision> {
        self.decisions
            .iter()
            .filter(|d| matches!(d.decision, Decision::Delete(_)))
    }

    pub fn kept(&self) -> impl Iterator<Item = &TagDecision> {
        self.decisions
            .iter()
            .filter(|d| matches!(d.decision, Decision::Keep(_)))
    }

    /// The deletions grouped by manifest: each (repository, digest) is deleted once.
    pub fn manifests_to_delete(&self) -> Vec<ManifestDeletion> {
        let mut grouped: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for d in self.deletions() {
            grouped
                .entry((d.repository.as_str(), d.digest.as_str()))
                .or_default()
                .push(d.tag.clone());
        }
        grouped
            .into_iter()
            .map(|((repository, digest), tags)| ManifestDeletion {
                repository: repository.to_string(),
                digest: digest.to_string(),
                tags,
            })
            .collect()
    }
}

/// The fatman name of a fatman image repository under `namespace`, or `None` for any other
/// repository (base images, other namespaces, deeper paths).
pub fn fatman_of_repository<'a>(repository: &'a str, namespace: &str) -> Option<&'a str> {
    let rest = if namespace.is_empty() {
        repository
    } else {
        repository
            .strip_prefix(namespace)
            .and_then(|r| r.strip_prefix('/'))?
    };
    let (kind, name) = rest.split_once('/')?;
    if name.is_empty() || name.contains('/') || !is_fatman_image_kind(kind) {
        return None;
    }
    Some(name)
}

/// `fatman-entrypoint`, or `fatman-{index}` for a job type's extra containers (not
/// `fatman-base`, `fatman-base-{index}`: base images are shared by every fatman of a job type).
fn is_fatman_image_kind(kind: &str) -> bool {
    if kind == ENTRYPOINT_KIND {
        return true;
    }
    kind.strip_prefix("fatman-")
        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// The deployment time a Racetrack image tag names.
pub fn tag_time(tag: &str) -> Option<NaiveDateTime> {
    // chrono accepts shorter fields than the format's; the builder's tags are exactly 17 long.
    if tag.len() != 17 {
        return None;
    }
    NaiveDateTime::parse_from_str(tag, TAG_FORMAT).ok()
}

pub fn plan(repositories: &[Repository], fatmen: &[Fatman], policy: &Policy) -> Plan {
    // Fatman name -> in-use tag -> versions running it.
    let mut in_use: HashMap<&str, BTreeMap<&str, Vec<String>>> = HashMap::new();
    for f in fatmen {
        let tags = in_use.entry(f.name.as_str()).or_default();
        if let Some(tag) = f.image_tag.as_deref() {
            tags.entry(tag).or_default().push(f.version.clone());
        }
    }

    let mut out = Plan::default();
    let mut repositories: Vec<&Repository> = repositories.iter().collect();
    repositories.sort_by(|a, b| a.name.cmp(&b.name));
    for repository in repositories {
        match fatman_of_repository(&repository.name, &policy.namespace) {
            Some(fatman) => {
                out.fatman_repositories += 1;
                out.decisions.extend(plan_repository(
                    repository,
                    fatman,
                    in_use.get(fatman),
                    policy,
                ));
            }
            None => out.other_repositories += 1,
        }
    }
    out
}

fn plan_repository(
    repository: &Repository,
    fatman: &str,
    in_use: Option<&BTreeMap<&str, Vec<String>>>,
    policy: &Policy,
) -> Vec<TagDecision> {
    let mut tags: Vec<&Tag> = repository.tags.iter().collect();
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    tags.dedup_by(|a, b| a.name == b.name);

    let mut decisions: Vec<Decision> = Vec::with_capacity(tags.len());
    // Unused Racetrack tags, by index into `tags`, to rank for retention.
    let mut unused: Vec<(NaiveDateTime, usize)> = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let versions = in_use.and_then(|u| u.get(tag.name.as_str()));
        let decision = match (versions, tag_time(&tag.name)) {
            (Some(versions), _) => Decision::Keep(KeepReason::InUse {
                fatman: fatman.to_string(),
                versions: versions.clone(),
            }),
            (None, None) => Decision::Keep(KeepReason::NotRacetrackTag),
            (None, Some(time)) => {
                unused.push((time, i));
                // Decided below.
                Decision::Keep(KeepReason::NotRacetrackTag)
            }
        };
        decisions.push(decision);
    }

    // Newest first; the tag name breaks ties so the outcome never depends on input order.
    unused.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| tags[b.1].name.cmp(&tags[a.1].name))
    });
    let oldest_allowed = policy.now - policy.min_age;
    for (rank, (time, i)) in unused.into_iter().enumerate() {
        decisions[i] = if in_use.is_some() && rank < policy.keep {
            Decision::Keep(KeepReason::Newest { keep: policy.keep })
        } else if time > oldest_allowed {
            Decision::Keep(KeepReason::TooRecent {
                min_age_minutes: policy.min_age.num_minutes(),
            })
        } else if in_use.is_some() {
            Decision::Delete(DeleteReason::BeyondRetention { keep: policy.keep })
        } else {
            Decision::Delete(DeleteReason::FatmanGone {
                fatman: fatman.to_string(),
            })
        };
    }

    // Deleting a manifest removes every tag pointing at it.
    let mut kept_by_digest: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (tag, decision) in tags.iter().zip(&decisions) {
        if matches!(decision, Decision::Keep(_)) {
            kept_by_digest
                .entry(tag.digest.as_str())
                .or_default()
                .insert(tag.name.as_str());
        }
    }
    for (tag, decision) in tags.iter().zip(decisions.iter_mut()) {
        if let (Decision::Delete(_), Some(kept)) =
            (&decision, kept_by_digest.get(tag.digest.as_str()))
        {
            *decision = Decision::Keep(KeepReason::SharesManifest {
                with: kept.iter().map(|t| t.to_string()).collect(),
            });
        }
    }

    tags.into_iter()
        .zip(decisions)
        .map(|(tag, decision)| TagDecision {
            repository: repository.name.clone(),
            tag: tag.name.clone(),
            digest: tag.digest.clone(),
            decision,
        })
        .collect()
}

impl fmt::Display for DeleteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeleteReason::FatmanGone { fatman } => {
                write!(f, "no fatman named {fatman} exists any more")
            }
            DeleteReason::BeyondRetention { keep } => {
                write!(f, "unused and older than the newest {keep} unused tags")
            }
        }
    }
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::InUse { fatman, versions } => {
                write!(f, "in use by {fatman} {}", versions.join(", "))
            }
            KeepReason::Newest { keep } => write!(f, "among the newest {keep} unused tags"),
            KeepReason::TooRecent { min_age_minutes } => write!(
                f,
                "younger than {min_age_minutes} minutes (a deployment may be about to use it)"
            ),
            KeepReason::NotRacetrackTag => {
                write!(f, "not a Racetrack deployment tag (YYYY-MM-DDTHHMMSS)")
            }
            KeepReason::SharesManifest { with } => {
                write!(f, "same manifest as kept tag(s) {}", with.join(", "))
            }
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Delete(r) => r.fmt(f),
            Decision::Keep(r) => r.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> NaiveDateTime {
        tag_time("2026-12-03T120000").unwrap()
    }

    fn policy(keep: usize) -> Policy {
        Policy {
            namespace: "racetrack".into(),
            keep,
            min_age: TimeDelta::minutes(120),
            now: now(),
        }
    }

    fn repo(name: &str, tags: &[(&str, &str)]) -> Repository {
        Repository {
            name: name.into(),
            tags: tags
                .iter()
                .map(|(t, d)| Tag {
                    name: t.to_string(),
                    digest: d.to_string(),
                })
                .collect(),
        }
    }

    fn fatman(name: &str, version: &str, tag: Option<&str>) -> Fatman {
        Fatman {
            name: name.into(),
            version: version.into(),
            image_tag: tag.map(str::to_string),
        }
    }

    /// (repository:tag, deleted?) of every decision.
    fn outcome(plan: &Plan) -> Vec<(String, bool)> {
        plan.decisions
            .iter()
            .map(|d| {
                (
                    format!("{}:{}", d.repository, d.tag),
                    matches!(d.decision, Decision::Delete(_)),
                )
            })
            .collect()
    }

    fn deleted(plan: &Plan) -> Vec<String> {
        plan.deletions()
            .map(|d| format!("{}:{}", d.repository, d.tag))
            .collect()
    }

    fn decision_of<'a>(plan: &'a Plan, tag: &str) -> &'a Decision {
        &plan
            .decisions
            .iter()
            .find(|d| d.tag == tag)
            .unwrap()
            .decision
    }

    #[test]
    fn repositories_of_fatman_images() {
        let of = |r| fatman_of_repository(r, "racetrack");
        assert_eq!(of("racetrack/fatman-entrypoint/adder"), Some("adder"));
        assert_eq!(of("racetrack/fatman-1/adder"), Some("adder"));
        assert_eq!(of("racetrack/fatman-12/adder"), Some("adder"));
        assert_eq!(of("racetrack/fatman-base/python3"), None);
        assert_eq!(of("racetrack/fatman-base-1/python3"), None);
        assert_eq!(of("racetrack/fatman-/adder"), None);
        assert_eq!(of("racetrack/fatman-x/adder"), None);
        assert_eq!(of("racetrack/fatman-entrypoint/a/b"), None);
        assert_eq!(of("racetrack/fatman-entrypoint/"), None);
        assert_eq!(of("racetrack/registry-check"), None);
        assert_eq!(of("other/fatman-entrypoint/adder"), None);
        assert_eq!(of("racetrack-ib-test/fatman-entrypoint/adder"), None);
        assert_eq!(of("fatman-entrypoint/adder"), None);
        assert_eq!(
            fatman_of_repository("fatman-entrypoint/adder", ""),
            Some("adder")
        );
        assert_eq!(
            fatman_of_repository("racetrack/fatman-entrypoint/adder", ""),
            None
        );
        assert_eq!(
            fatman_of_repository("a/b/fatman-entrypoint/adder", "a/b"),
            Some("adder")
        );
    }

    #[test]
    fn racetrack_tags() {
        assert!(tag_time("2023-02-13T160941").is_some());
        assert!(tag_time("latest").is_none());
        assert!(tag_time("1.0.0").is_none());
        assert!(tag_time("2023-2-13T160941").is_none());
        assert!(tag_time("2023-02-13T160961").is_none());
        assert!(tag_time("2023-02-13T16094").is_none());
    }

    #[test]
    fn in_use_tags_stay_and_the_newest_unused_are_kept() {
        let r = repo(
            "racetrack/fatman-entrypoint/adder",
            &[
                ("2026-01-01T000001", "d1"),
                ("2026-01-01T000002", "d2"),
                ("2026-01-01T000003", "d3"),
                ("2026-01-01T000004", "d4"),
                ("2026-01-01T000005", "d5"),
                ("2026-01-01T000006", "d6"),
            ],
        );
        let fatmen = [
            fatman("adder", "1.0.0", Some("2026-01-01T000001")),
            fatman("adder", "1.0.1", Some("2026-01-01T000004")),
            fatman("other", "1.0.0", Some("2026-01-01T000002")),
        ];
        let plan = plan(&[r], &fatmen, &policy(2));
        assert_eq!(
            deleted(&plan),
            [
                "racetrack/fatman-entrypoint/adder:2026-01-01T000002",
                "racetrack/fatman-entrypoint/adder:2026-01-01T000003",
            ]
        );
        assert_eq!(
            decision_of(&plan, "2026-01-01T000001"),
            &Decision::Keep(KeepReason::InUse {
                fatman: "adder".into(),
                versions: vec!["1.0.0".into()]
            })
        );
        assert_eq!(
            decision_of(&plan, "2026-01-01T000006"),
            &Decision::Keep(KeepReason::Newest { keep: 2 })
        );
        assert_eq!(
            decision_of(&plan, "2026-01-01T000002"),
            &Decision::Delete(DeleteReason::BeyondRetention { keep: 2 })
        );
        assert_eq!(plan.fatman_repositories, 1);
    }

    #[test]
    fn versions_sharing_a_tag_are_all_named() {
        let r = repo(
            "racetrack/fatman-entrypoint/adder",
            &[("2026-01-01T000001", "d1")],
        );
        let fatmen = [
            fatman("adder", "1.0.0", Some("2026-01-01T000001")),
            fatman("adder", "1.0.1", Some("2026-01-01T000001")),
        ];
        let plan = plan(&[r], &fatmen, &policy(0));
        assert_eq!(
            plan.decisions[0].decision.to_string(),
            "in use by adder 1.0.0, 1.0.1"
        );
    }

    #[test]
    fn keep_zero_deletes_every_unused_tag() {
        let r = repo(
            "racetrack/fatman-entrypoint/adder",
            &[("2026-01-01T000001", "d1"), ("2026-01-01T000002", "d2")],
        );
        let fatmen = [fatman("adder", "1.0.0", Some("2026-01-01T000002"))];
        let plan = plan(&[r], &fatmen, &policy(0));
        assert_eq!(
            deleted(&plan),
            ["racetrack/fatman-entrypoint/adder:2026-01-01T000001"]
        );
    }

    #[test]
    fn a_fatman_without_an_image_tag_still_exists() {
        let r = repo(
            "racetrack/fatman-entrypoint/adder",
            &[("2026-01-01T000001", "d1"), ("2026-01-01T000002", "d2")],
        );
        let fatmen = [fatman("adder", "1.0.0", None)];
        let plan = plan(&[r], &fatmen, &policy(1));
        assert_eq!(
            deleted(&plan),
            ["racetrack/fatman-entrypoint/adder:2026-01-01T000001"]
        );
    }

    #[test]
    fn every_tag_of_a_gone_fatman_goes_but_recent_and_foreign_tags() {
        let r = repo(
            "racetrack/fatman-1/gone",
            &[
                ("2025-06-01T000000", "d1"),
                ("2026-01-01T000000", "d2"),
                // 90 minutes old: younger than 120.
                ("2026-12-03T103000", "d3"),
                // In the future (clock skew): too recent as well.
                ("2026-12-04T000000", "d4"),
                ("latest", "d5"),
            ],
        );
        let plan = plan(&[r], &[fatman("adder", "1.0.0", None)], &policy(10));
        assert_eq!(
            outcome(&plan),
            [
                (
                    "racetrack/fatman-1/gone:2025-06-01T000000".to_string(),
                    true
                ),
                (
                    "racetrack/fatman-1/gone:2026-01-01T000000".to_string(),
                    true
                ),
                (
                    "racetrack/fatman-1/gone:2026-12-03T103000".to_string(),
                    false
                ),
                (
                    "racetrack/fatman-1/gone:2026-12-04T000000".to_string(),
                    false
                ),
                ("racetrack/fatman-1/gone:latest".to_string(), false),
            ]
        );
        assert_eq!(
            decision_of(&plan, "2025-06-01T000000").to_string(),
            "no fatman named gone exists any more"
        );
        assert_eq!(
            decision_of(&plan, "2026-12-03T103000"),
            &Decision::Keep(KeepReason::TooRecent {
                min_age_minutes: 120
            })
        );
        assert_eq!(
            decision_of(&plan, "latest"),
            &Decision::Keep(KeepReason::NotRacetrackTag)
        );
    }

    #[test]
    fn recent_tags_count_among_the_newest() {
        let r = repo(
            "racetrack/fatman-entrypoint/adder",
            &[
                ("2026-01-01T000001", "d1"),
                ("2026-01-01T000002", "d2"),
                ("2026-12-03T115900", "d3"),
            ],
        );
        let plan = plan(&[r], &[fatman("adder", "1.0.0", None)], &policy(1));
        assert_eq!(
            deleted(&plan),
            [
                "racetrack/fatman-entrypoint/adder:2026-01-01T000001",
                "racetrack/fatman-entrypoint/adder:2026-01-01T000002",
            ]
        );
    }

    #[test]
    fn a_tag_sharing_its_manifest_with_a_kept_tag_stays() {
        let r = repo(
            "racetrack/fatman-entrypoint/adder",
            &[
                ("2026-01-01T000001", "same"),
                ("2026-01-01T000002", "other"),
                ("2026-01-01T000003", "same"),
                ("2026-01-01T000004", "old"),
                ("2026-01-01T000005", "old"),
            ],
        );
        let fatmen = [fatman("adder", "1.0.0", Some("2026-01-01T000003"))];
        let plan = plan(&[r], &fatmen, &policy(0));
        assert_eq!(
            deleted(&plan),
            [
                "racetrack/fatman-entrypoint/adder:2026-01-01T000002",
                "racetrack/fatman-entrypoint/adder:2026-01-01T000004",
                "racetrack/fatman-entrypoint/adder:2026-01-01T000005",
            ]
        );
        assert_eq!(
            decision_of(&plan, "2026-01-01T000001"),
            &Decision::Keep(KeepReason::SharesManifest {
                with: vec!["2026-01-01T000003".into()]
            })
        );
        // Two deleted tags on one manifest: one DELETE.
        assert_eq!(
            plan.manifests_to_delete(),
            [
                ManifestDeletion {
                    repository: "racetrack/fatman-entrypoint/adder".into(),
                    digest: "old".into(),
                    tags: vec!["2026-01-01T000004".into(), "2026-01-01T000005".into()],
                },
                ManifestDeletion {
                    repository: "racetrack/fatman-entrypoint/adder".into(),
                    digest: "other".into(),
                    tags: vec!["2026-01-01T000002".into()],
                },
            ]
        );
    }

    #[test]
    fn a_manifest_shared_with_a_recent_or_foreign_tag_stays() {
        let r = repo(
            "racetrack/fatman-entrypoint/gone",
            &[
                ("2026-01-01T000001", "a"),
                ("2026-12-03T115900", "a"),
                ("2026-01-01T000002", "b"),
                ("latest", "b"),
            ],
        );
        let plan = plan(&[r], &[], &policy(10));
        assert_eq!(deleted(&plan), Vec::<String>::new());
    }

    #[test]
    fn other_repositories_are_left_alone() {
        let repos = [
            repo(
                "racetrack/fatman-base/python3",
                &[("2020-01-01T000000", "a")],
            ),
            repo(
                "elsewhere/fatman-entrypoint/x",
                &[("2020-01-01T000000", "b")],
            ),
            repo("racetrack/registry-check", &[("2020-01-01T000000", "c")]),
            repo(
                "racetrack/fatman-entrypoint/x",
                &[("2020-01-01T000000", "d")],
            ),
        ];
        let plan = plan(&repos, &[], &policy(10));
        assert_eq!(
            deleted(&plan),
            ["racetrack/fatman-entrypoint/x:2020-01-01T000000"]
        );
        assert_eq!(plan.fatman_repositories, 1);
        assert_eq!(plan.other_repositories, 3);
    }

    #[test]
    fn the_outcome_does_not_depend_on_input_order() {
        let tags = [
            ("2026-01-01T000003", "c"),
            ("2026-01-01T000001", "a"),
            ("2026-01-01T000002", "b"),
        ];
        let mut reversed = tags;
        reversed.reverse();
        let fatmen = [fatman("adder", "1.0.0", None)];
        let a = plan(
            &[repo("racetrack/fatman-entrypoint/adder", &tags)],
            &fatmen,
            &policy(1),
        );
        let b = plan(
            &[repo("racetrack/fatman-entrypoint/adder", &reversed)],
            &fatmen,
            &policy(1),
        );
        assert_eq!(a, b);
        assert_eq!(
            deleted(&a),
            [
                "racetrack/fatman-entrypoint/adder:2026-01-01T000001",
                "racetrack/fatman-entrypoint/adder:2026-01-01T000002",
            ]
        );
    }

    #[test]
    fn a_fatman_elsewhere_does_not_protect_a_repository_under_another_name() {
        let r = repo(
            "racetrack/fatman-entrypoint/adder",
            &[("2026-01-01T000001", "a")],
        );
        let fatmen = [fatman("adder-2", "1.0.0", Some("2026-01-01T000001"))];
        let plan = plan(&[r], &fatmen, &policy(5));
        assert_eq!(
            deleted(&plan),
            ["racetrack/fatman-entrypoint/adder:2026-01-01T000001"]
        );
    }
}
