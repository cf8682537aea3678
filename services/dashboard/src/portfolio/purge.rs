//! The purge score: how good a candidate for removal each fatman is.
//!
//! Operators clean up a crowded cluster from the portfolio page, best candidates first, and the
//! reasons tell them (and the fatman's owner) why. The score keeps the original's weights so the
//! ranking people know stays the same (docs/architecture.md, "Dashboard: portfolio filters and
//! purge score"):
//! - status: orphaned 100, lost 50, error 20 (only the first that applies);
//! - calls, once a day has passed since the last deploy: never called 10, otherwise up to 10 for
//!   a month without calls (nothing for the first day);
//! - one point per newer version of the same family.
//!
//! Choices: a version that is not SemVer fails the whole assessment, as in the original (deploys
//! reject such versions, so only foreign data can hold one, and a ranking that silently skipped
//! it would hide it). A fatman without an update time gets no call penalty, as if just deployed.

use std::collections::HashMap;

use racetrack_model::{FatmanStatus, SemVer};

const SECONDS_PER_DAY: f64 = 86_400.0;

/// What the score needs to know about one fatman. Times are Unix seconds; `None` or 0 is "never".
#[derive(Debug, Clone, PartialEq)]
pub struct PortfolioFatman {
    pub name: String,
    pub version: String,
    pub status: FatmanStatus,
    pub update_time: Option<i64>,
    pub last_call_time: Option<i64>,
}

/// The verdict on one fatman.
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeAssessment {
    /// Penalty points; higher means a better removal candidate. Never negative.
    pub score: f64,
    /// Why, one sentence per penalty, in the order the penalties are applied.
    pub reasons: Vec<String>,
    /// How many versions of the same family are newer.
    pub newer_versions: usize,
}

impl PurgeAssessment {
    /// The reasons as the portfolio's "Purge reasons" cell shows them.
    pub fn reasons_text(&self) -> String {
        self.reasons.join("\n")
    }
}

/// A fatman with its assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessed {
    pub fatman: PortfolioFatman,
    pub purge: PurgeAssessment,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurgeError {
    #[error("fatman {name} has version '{version}', which is not SemVer (X.Y.Z[label]), so its newer versions cannot be counted")]
    NotSemVer { name: String, version: String },
}

/// Days between `time` and `now` (fractional), or `None` when `time` is unset.
pub fn days_ago(time: Option<i64>, now: i64) -> Option<f64> {
    match time {
        None | Some(0) => None,
        Some(t) => Some((now as f64 - t as f64) / SECONDS_PER_DAY),
    }
}

/// A number with at most `max_decimals` decimals and no trailing zeros (`12.5`, `3`, `0.33`),
/// as the portfolio's number columns show them.
pub fn format_decimal(value: f64, max_decimals: usize) -> String {
    let fixed = format!("{value:.max_decimals$}");
    let trimmed = if fixed.contains('.') {
        fixed.trim_end_matches('0').trim_end_matches('.')
    } else {
        fixed.as_str()
    };
    if trimmed == "-0" {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Assesses every fatman of `fatmen` (all those visible to the user: newer versions are counted
/// among them) and returns them sorted by score, highest first; equal scores keep their order.
pub fn assess_portfolio(
    fatmen: Vec<PortfolioFatman>,
    now: i64,
) -> Result<Vec<Assessed>, PurgeError> {
    let mut families: HashMap<String, Vec<SemVer>> = HashMap::new();
    let mut versions = Vec::with_capacity(fatmen.len());
    for fatman in &fatmen {
        let version = SemVer::parse(&fatman.version).map_err(|_| PurgeError::NotSemVer {
            name: fatman.name.clone(),
            version: fatman.version.clone(),
        })?;
        families
            .entry(fatman.name.clone())
            .or_default()
            .push(version.clone());
        versions.push(version);
    }
    let mut assessed: Vec<Assessed> = fatmen
        .into_iter()
        .zip(versions)
        .map(|(fatman, version)| {
            let newer = families
                .get(&fatman.name)
                .map_or(0, |family| family.iter().filter(|v| **v > version).count());
            let purge = assess(&fatman, newer, now);
            Assessed { fatman, purge }
        })
        .collect();
    assessed.sort_by(|a, b| b.purge.score.total_cmp(&a.purge.score));
    Ok(assessed)
}

/// Scores one fatman that has `newer_versions` newer versions in its family.
pub fn assess(fatman: &PortfolioFatman, newer_versions: usize, now: i64) -> PurgeAssessment {
    let mut penalty = 0.0;
    let mut reasons = Vec::new();

    match fatman.status {
        FatmanStatus::Orphaned => {
            penalty += 100.0;
            reasons.push(
                "It is orphaned: running without a registry entry, most likely a leftover nobody needs."
                    .to_string(),
            );
        }
        FatmanStatus::Lost => {
            penalty += 50.0;
            reasons.push(
                "It is lost (missing from the cluster): redeploy it or remove it.".to_string(),
            );
        }
        FatmanStatus::Error => {
            penalty += 20.0;
            reasons.push("It is failing: fix it or remove it.".to_string());
        }
        FatmanStatus::Created | FatmanStatus::Running => {}
    }

    // A fresh deploy has had no chance to be called yet.
    let past_grace = days_ago(fatman.update_time, now).is_some_and(|d| d >= 1.0);
    if past_grace {
        match days_ago(fatman.last_call_time, now) {
            None => {
                penalty += 10.0;
                reasons.push("It has never been called, so it seems unused.".to_string());
            }
            Some(idle) if idle > 1.0 => {
                penalty += 10.0 * (idle / 30.0).clamp(0.0, 1.0);
                reasons.push(format!("It hasn't been called for {idle:.1} days."));
            }
            Some(_) => {}
        }
    }

    if newer_versions > 0 {
        penalty += newer_versions as f64;
        reasons.push(format!("It has {newer_versions} newer versions."));
    }

    PurgeAssessment {
        // `+ 0.0` turns a zero penalty into 0 rather than -0.
        score: penalty + 0.0,
        reasons,
        newer_versions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn fatman(name: &str, version: &str, status: FatmanStatus) -> PortfolioFatman {
        PortfolioFatman {
            name: name.to_string(),
            version: version.to_string(),
            status,
            update_time: Some(NOW - 10 * DAY),
            last_call_time: Some(NOW - 3600),
        }
    }

    fn one(f: PortfolioFatman) -> PurgeAssessment {
        let mut all = assess_portfolio(vec![f], NOW).expect("SemVer versions");
        all.remove(0).purge
    }

    #[test]
    fn a_healthy_recently_called_fatman_scores_zero() {
        let p = one(fatman("adder", "1.0.0", FatmanStatus::Running));
        assert_eq!(p.score, 0.0);
        assert!(p.score.is_sign_positive());
        assert!(p.reasons.is_empty());
        assert_eq!(p.reasons_text(), "");
        assert_eq!(p.newer_versions, 0);
        assert_eq!(format_decimal(p.score, 2), "0");
        assert_eq!(
            one(fatman("adder", "1.0.0", FatmanStatus::Created)).score,
            0.0
        );
    }

    #[test]
    fn status_penalties() {
        let orphaned = one(fatman("a", "1.0.0", FatmanStatus::Orphaned));
        assert_eq!(orphaned.score, 100.0);
        assert_eq!(orphaned.reasons.len(), 1);
        assert!(orphaned.reasons[0].contains("orphaned"));
        assert!(orphaned.reasons[0].contains("leftover"));

        let lost = one(fatman("a", "1.0.0", FatmanStatus::Lost));
        assert_eq!(lost.score, 50.0);
        assert!(lost.reasons[0].contains("lost"));
        assert!(lost.reasons[0].contains("redeploy"));

        let error = one(fatman("a", "1.0.0", FatmanStatus::Error));
        assert_eq!(error.score, 20.0);
        assert!(error.reasons[0].contains("failing"));
    }

    #[test]
    fn never_called_after_the_grace_day() {
        let mut f = fatman("a", "1.0.0", FatmanStatus::Running);
        f.last_call_time = None;
        let p = one(f.clone());
        assert_eq!(p.score, 10.0);
        assert!(p.reasons[0].contains("never been called"));

        // A zero timestamp is "never" too.
        f.last_call_time = Some(0);
        assert_eq!(one(f.clone()).score, 10.0);

        // Exactly one day after the deploy the grace period is over.
        f.update_time = Some(NOW - DAY);
        assert_eq!(one(f.clone()).score, 10.0);

        // Within a day of the deploy nothing is held against it.
        f.update_time = Some(NOW - DAY / 2);
        let fresh = one(f.clone());
        assert_eq!(fresh.score, 0.0);
        assert!(fresh.reasons.is_empty());

        // Without an update time it counts as just deployed.
        f.update_time = None;
        assert_eq!(one(f).score, 0.0);
    }

    #[test]
    fn idle_time_counts_up_to_a_month() {
        let mut f = fatman("a", "1.0.0", FatmanStatus::Running);
        f.update_time = Some(NOW - 100 * DAY);

        f.last_call_time = Some(NOW - 15 * DAY);
        let half = one(f.clone());
        assert!((half.score - 5.0).abs() < 1e-9);
        assert_eq!(half.reasons, ["It hasn't been called for 15.0 days."]);

        f.last_call_time = Some(NOW - 45 * DAY);
        let capped = one(f.clone());
        assert_eq!(capped.score, 10.0);
        assert_eq!(capped.reasons, ["It hasn't been called for 45.0 days."]);

        f.last_call_time = Some(NOW - DAY - DAY / 2);
        let short = one(f.clone());
        assert!((short.score - 0.5).abs() < 1e-9);
        assert_eq!(short.reasons, ["It hasn't been called for 1.5 days."]);
        assert_eq!(format_decimal(short.score, 2), "0.5");

        // One day or less without calls is fine.
        f.last_call_time = Some(NOW - DAY);
        let recent = one(f.clone());
        assert_eq!(recent.score, 0.0);
        assert!(recent.reasons.is_empty());
    }

    #[test]
    fn newer_versions_of_the_same_family_count_one_point_each() {
        let all = assess_portfolio(
            vec![
                fatman("adder", "1.0.0", FatmanStatus::Running),
                fatman("adder", "1.1.0", FatmanStatus::Running),
                fatman("adder", "2.0.0-dev", FatmanStatus::Running),
                fatman("adder", "2.0.0", FatmanStatus::Running),
                fatman("other", "9.0.0", FatmanStatus::Running),
                fatman("other", "0.0.1", FatmanStatus::Running),
            ],
            NOW,
        )
        .expect("SemVer versions");
        let newer = |name: &str, version: &str| {
            all.iter()
                .find(|a| a.fatman.name == name && a.fatman.version == version)
                .map(|a| {
                    (
                        a.purge.newer_versions,
                        a.purge.score,
                        a.purge.reasons_text(),
                    )
                })
                .expect("present")
        };
        assert_eq!(
            newer("adder", "1.0.0"),
            (3, 3.0, "It has 3 newer versions.".into())
        );
        assert_eq!(
            newer("adder", "1.1.0"),
            (2, 2.0, "It has 2 newer versions.".into())
        );
        // A pre-release is older than its release.
        assert_eq!(newer("adder", "2.0.0-dev").0, 1);
        assert_eq!(newer("adder", "2.0.0"), (0, 0.0, String::new()));
        assert_eq!(newer("other", "0.0.1").0, 1);
        assert_eq!(newer("other", "9.0.0").0, 0);
    }

    #[test]
    fn penalties_add_up_with_reasons_in_order() {
        let mut worst = fatman("a", "1.0.0", FatmanStatus::Orphaned);
        worst.last_call_time = None;
        let all = assess_portfolio(
            vec![
                worst,
                fatman("a", "1.0.1", FatmanStatus::Running),
                fatman("a", "1.0.2", FatmanStatus::Running),
            ],
            NOW,
        )
        .expect("SemVer versions");
        let top = &all[0];
        assert_eq!(top.fatman.version, "1.0.0");
        assert_eq!(top.purge.score, 112.0);
        assert_eq!(top.purge.newer_versions, 2);
        let reasons = top.purge.reasons_text();
        let lines: Vec<&str> = reasons.split('\n').collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("orphaned"));
        assert!(lines[1].contains("never been called"));
        assert_eq!(lines[2], "It has 2 newer versions.");
    }

    #[test]
    fn the_portfolio_is_sorted_by_score_keeping_ties_in_order() {
        let mut idle = fatman("idle", "1.0.0", FatmanStatus::Running);
        idle.last_call_time = Some(NOW - 15 * DAY);
        let all = assess_portfolio(
            vec![
                fatman("fine-1", "1.0.0", FatmanStatus::Running),
                fatman("lost", "1.0.0", FatmanStatus::Lost),
                fatman("fine-2", "1.0.0", FatmanStatus::Running),
                idle,
                fatman("orphan", "1.0.0", FatmanStatus::Orphaned),
                fatman("fine-3", "1.0.0", FatmanStatus::Running),
            ],
            NOW,
        )
        .expect("SemVer versions");
        let names: Vec<&str> = all.iter().map(|a| a.fatman.name.as_str()).collect();
        assert_eq!(
            names,
            ["orphan", "lost", "idle", "fine-1", "fine-2", "fine-3"]
        );
    }

    #[test]
    fn a_version_that_is_not_semver_fails_the_portfolio() {
        let err = assess_portfolio(
            vec![
                fatman("adder", "1.0.0", FatmanStatus::Running),
                fatman("legacy", "latest", FatmanStatus::Running),
            ],
            NOW,
        )
        .expect_err("not SemVer");
        assert_eq!(
            err,
            PurgeError::NotSemVer {
                name: "legacy".into(),
                version: "latest".into()
            }
        );
        assert!(err.to_string().contains("'latest'"));
        assert_eq!(assess_portfolio(Vec::new(), NOW), Ok(Vec::new()));
    }

    #[test]
    fn days_ago_and_number_formatting() {
        assert_eq!(days_ago(None, NOW), None);
        assert_eq!(days_ago(Some(0), NOW), None);
        assert_eq!(days_ago(Some(NOW - DAY - DAY / 2), NOW), Some(1.5));
        assert_eq!(days_ago(Some(NOW + DAY), NOW), Some(-1.0));

        assert_eq!(format_decimal(12.5, 2), "12.5");
        assert_eq!(format_decimal(3.0, 2), "3");
        assert_eq!(format_decimal(1.0 / 3.0, 2), "0.33");
        assert_eq!(format_decimal(1.999, 2), "2");
        assert_eq!(format_decimal(112.0, 2), "112");
        assert_eq!(format_decimal(-0.0, 2), "0");
        assert_eq!(format_decimal(-0.001, 2), "0");
        assert_eq!(format_decimal(45.04, 1), "45");
        assert_eq!(format_decimal(7.0, 0), "7");
    }
}
