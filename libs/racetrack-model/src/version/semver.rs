use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("Version '{0}' doesn't match SemVer format 'X.Y.Z[-label]'")]
    InvalidSemVer(String),
}

/// `MAJOR.MINOR.PATCH` followed by a free-form label (`-dev`, `rc1`, `.4`, ...).
///
/// Unlike semver.org, the label is any trailing text and labels compare as plain strings, because
/// that is how the original registry ordered versions and users rely on which one is "latest".
/// Numbers beyond `u64` are rejected (the original had unbounded integers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SemVer {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub label: String,
}

fn semver_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\A([0-9]+)\.([0-9]+)\.([0-9]+)(.*)\z").ok())
        .as_ref()
}

impl SemVer {
    pub fn parse(s: &str) -> Result<SemVer, VersionError> {
        let invalid = || VersionError::InvalidSemVer(s.to_string());
        let caps = semver_regex()
            .and_then(|re| re.captures(s))
            .ok_or_else(invalid)?;
        let number = |i: usize| {
            caps.get(i)
                .and_then(|m| m.as_str().parse::<u64>().ok())
                .ok_or_else(invalid)
        };
        Ok(SemVer {
            major: number(1)?,
            minor: number(2)?,
            patch: number(3)?,
            label: caps
                .get(4)
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
        })
    }

    /// Only label-less versions count as stable; `latest` and wildcards consider nothing else.
    pub fn is_stable(&self) -> bool {
        self.label.is_empty()
    }
}

impl FromStr for SemVer {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SemVer::parse(s)
    }
}

/// Leading zeros are not preserved: `01.2.3` displays as `1.2.3`.
impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}{}",
            self.major, self.minor, self.patch, self.label
        )
    }
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.label.is_empty(), other.label.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.label.cmp(&other.label),
            })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> SemVer {
        SemVer::parse(s).unwrap()
    }

    #[test]
    fn reference_ordering() {
        let ascending = [
            "0.0.0rc1",
            "0.0.0",
            "0.0.1-alpha",
            "0.0.1-dev",
            "0.0.1-rc2",
            "0.0.1",
            "0.0.10",
            "0.2.0",
            "1.0.0",
            "10.0.0",
        ];
        let mut versions: Vec<SemVer> = ascending.iter().rev().map(|s| v(s)).collect();
        versions.sort();
        let sorted: Vec<String> = versions.iter().map(SemVer::to_string).collect();
        assert_eq!(sorted, ascending);
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn labels_compare_as_strings() {
        assert!(v("1.0.0-alpha.10") < v("1.0.0-alpha.2"));
        assert!(v("1.0.0-beta") > v("1.0.0-alpha"));
        assert!(v("1.0.0") > v("1.0.0-zzz"));
        assert!(v("1.0.1-dev") > v("1.0.0"));
        assert_eq!(v("1.0.0-dev").cmp(&v("1.0.0-dev")), Ordering::Equal);
    }

    #[test]
    fn label_is_any_trailing_text() {
        let four = v("1.2.3.4");
        assert_eq!(
            (four.major, four.minor, four.patch, four.label.as_str()),
            (1, 2, 3, ".4")
        );
        assert_eq!(v("0.0.0rc1").label, "rc1");
        assert_eq!(v("1.2.3 beta").label, " beta");
        assert!(v("1.2.3").is_stable());
        assert!(!v("1.2.3-dev").is_stable());
    }

    #[test]
    fn rejects_what_is_not_x_y_z() {
        for bad in [
            "1.0", "v1.0.0", "", "1", "1..0", "a.b.c", " 1.0.0", "1.0.0\n", "-1.0.0",
        ] {
            assert_eq!(
                SemVer::parse(bad),
                Err(VersionError::InvalidSemVer(bad.to_string())),
                "{bad:?}"
            );
        }
        assert!(SemVer::parse("99999999999999999999999.0.0").is_err());
    }

    #[test]
    fn error_message_matches_the_original() {
        assert_eq!(
            SemVer::parse("1.0").unwrap_err().to_string(),
            "Version '1.0' doesn't match SemVer format 'X.Y.Z[-label]'"
        );
    }

    #[test]
    fn leading_zeros_make_equal_versions() {
        assert_eq!(v("01.2.3"), v("1.2.3"));
        assert_eq!(v("01.2.3").to_string(), "1.2.3");
        assert_eq!(
            "1.2.3-rc1".parse::<SemVer>().unwrap().to_string(),
            "1.2.3-rc1"
        );
    }
}
