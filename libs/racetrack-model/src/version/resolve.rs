use super::query::VersionQuery;
use super::semver::{SemVer, VersionError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("No fatman named {0}")]
    NoFatmanNamed(String),
    #[error("No stable version found")]
    NoStableVersion,
    #[error("Not found any stable version matching pattern: {0}")]
    NoMatchingPattern(String),
    #[error("Fatman with name {name} and version {version} was not found")]
    ExactNotFound { name: String, version: String },
    /// A stored version is not `SemVer`, so `latest`/wildcards cannot rank the family; this is the
    /// caller's bad request in the original, not a missing fatman.
    #[error(transparent)]
    InvalidVersion(#[from] VersionError),
}

/// Picks the stored version of fatman `name` that `query` refers to.
///
/// `versions` are all stored versions of that name. An exact query is plain string equality; the
/// others consider only stable versions and take the highest, but first insist that every stored
/// version parses, as the original did. Among versions that compare equal (`01.2.3` vs `1.2.3`)
/// the later one in `versions` wins.
pub fn resolve_version<'a>(
    query: &VersionQuery,
    name: &str,
    versions: &[&'a str],
) -> Result<&'a str, ResolveError> {
    let pattern = match query {
        VersionQuery::Exact(exact) => {
            return versions
                .iter()
                .copied()
                .find(|v| *v == exact.as_str())
                .ok_or_else(|| ResolveError::ExactNotFound {
                    name: name.to_string(),
                    version: exact.clone(),
                });
        }
        VersionQuery::Latest => None,
        VersionQuery::Wildcard(pattern) => Some(pattern),
    };
    if versions.is_empty() {
        return Err(ResolveError::NoFatmanNamed(name.to_string()));
    }
    let parsed = versions
        .iter()
        .map(|raw| SemVer::parse(raw).map(|semver| (semver, *raw)))
        .collect::<Result<Vec<_>, _>>()?;
    parsed
        .into_iter()
        .filter(|(semver, raw)| semver.is_stable() && pattern.is_none_or(|p| p.matches(raw)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, raw)| raw)
        .ok_or_else(|| match pattern {
            Some(p) => ResolveError::NoMatchingPattern(p.as_str().to_string()),
            None => ResolveError::NoStableVersion,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILY: &[&str] = &[
        "1.0.0",
        "1.2.0",
        "2.0.0-dev",
        "1.10.0",
        "0.9.0",
        "1.2.3-rc1",
    ];

    fn resolve<'a>(query: &str, versions: &[&'a str]) -> Result<&'a str, ResolveError> {
        resolve_version(&VersionQuery::parse(query), "adder", versions)
    }

    #[test]
    fn latest_is_the_highest_stable_version() {
        assert_eq!(resolve("latest", FAMILY), Ok("1.10.0"));
        assert_eq!(
            resolve("latest", &["0.0.1", "0.0.10", "0.0.2"]),
            Ok("0.0.10")
        );
    }

    #[test]
    fn wildcards_pick_the_highest_stable_match() {
        assert_eq!(resolve("1.x", FAMILY), Ok("1.10.0"));
        assert_eq!(resolve("1.2.x", FAMILY), Ok("1.2.0"));
        assert_eq!(resolve("0.x", FAMILY), Ok("0.9.0"));
        assert_eq!(resolve("x", FAMILY), Ok("1.10.0"));
        assert_eq!(resolve("1.x", &["10.0.0", "1.0.1"]), Ok("1.0.1"));
        assert_eq!(
            resolve("2.x", FAMILY),
            Err(ResolveError::NoMatchingPattern("2.x".into()))
        );
        assert_eq!(
            resolve("3.x", FAMILY),
            Err(ResolveError::NoMatchingPattern("3.x".into()))
        );
    }

    #[test]
    fn exact_is_string_equality_even_for_unstable_or_odd_versions() {
        assert_eq!(resolve("2.0.0-dev", FAMILY), Ok("2.0.0-dev"));
        assert_eq!(resolve("weird", &["weird", "1.0.0"]), Ok("weird"));
        assert_eq!(
            resolve("01.0.0", FAMILY),
            Err(ResolveError::ExactNotFound {
                name: "adder".into(),
                version: "01.0.0".into()
            })
        );
        assert_eq!(
            resolve("1.0.0", &[]).unwrap_err().to_string(),
            "Fatman with name adder and version 1.0.0 was not found"
        );
    }

    #[test]
    fn empty_family_is_no_fatman_named() {
        assert_eq!(
            resolve("latest", &[]),
            Err(ResolveError::NoFatmanNamed("adder".into()))
        );
        assert_eq!(
            resolve("1.x", &[]),
            Err(ResolveError::NoFatmanNamed("adder".into()))
        );
        assert_eq!(
            resolve("latest", &[]).unwrap_err().to_string(),
            "No fatman named adder"
        );
    }

    #[test]
    fn only_labelled_versions_is_no_stable_version() {
        assert_eq!(
            resolve("latest", &["1.0.0-rc", "2.0.0-dev"]),
            Err(ResolveError::NoStableVersion)
        );
        assert_eq!(
            resolve("1.x", &["1.0.0-rc"]).unwrap_err().to_string(),
            "Not found any stable version matching pattern: 1.x"
        );
    }

    #[test]
    fn a_non_semver_stored_version_fails_latest_and_wildcards_only() {
        let stored = ["1.0.0", "bad"];
        let err = resolve("latest", &stored).unwrap_err();
        assert_eq!(
            err,
            ResolveError::InvalidVersion(VersionError::InvalidSemVer("bad".into()))
        );
        assert_eq!(
            err.to_string(),
            "Version 'bad' doesn't match SemVer format 'X.Y.Z[-label]'"
        );
        assert!(matches!(
            resolve("1.x", &stored),
            Err(ResolveError::InvalidVersion(_))
        ));
        assert_eq!(resolve("1.0.0", &stored), Ok("1.0.0"));
    }
}
