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
