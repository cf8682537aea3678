use std::sync::OnceLock;

use regex::Regex;

/// A wildcard such as `1.x`, `1.2.x` or `x`. Each `x` stands for one or more characters of any
/// kind, dots included, so `1.x` matches `1.2.3` but not `10.0.0`; this mirrors the original's
/// regex translation rather than per-component matching.
#[derive(Debug, Clone)]
pub struct WildcardPattern {
    pattern: String,
    regex: Regex,
}

fn wildcard_shape() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\A([0-9]+|x)(\.([0-9]+|x))*\z").ok())
        .as_ref()
}

impl WildcardPattern {
    /// `None` unless `s` is dot-separated numbers and `x`es with at least one `x`.
    pub fn parse(s: &str) -> Option<WildcardPattern> {
        if !s.contains('x') || !wildcard_shape()?.is_match(s) {
            return None;
        }
        let body = s.replace('.', r"\.").replace('x', ".+");
        let regex = Regex::new(&format!(r"\A{body}\z")).ok()?;
        Some(WildcardPattern {
            pattern: s.to_string(),
            regex,
        })
    }

    pub fn matches(&self, version: &str) -> bool {
        self.regex.is_match(version)
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl PartialEq for WildcardPattern {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for WildcardPattern {}

/// How a caller named a version in a URL or permission check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionQuery {
    Latest,
    Wildcard(WildcardPattern),
    Exact(String),
}

impl VersionQuery {
    /// Never fails: anything that is neither `latest` nor a wildcard is taken literally.
    pub fn parse(s: &str) -> VersionQuery {
        if s == "latest" {
            VersionQuery::Latest
        } else if let Some(pattern) = WildcardPattern::parse(s) {
            VersionQuery::Wildcard(pattern)
        } else {
            VersionQuery::Exact(s.to_string())
        }
    }

    /// The query as the user wrote it.
    pub fn as_str(&self) -> &str {
        match self {
            VersionQuery::Latest => "latest",
            VersionQuery::Wildcard(pattern) => pattern.as_str(),
            VersionQuery::Exact(version) => version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> WildcardPattern {
        WildcardPattern::parse(s).unwrap()
    }

    #[test]
    fn recognises_wildcards() {
        for w in ["1.x", "1.2.x", "x", "x.x.x", "91.1005.x", "x.1"] {
            assert!(WildcardPattern::parse(w).is_some(), "{w}");
            assert_eq!(pattern(w).as_str(), w);
        }
    }

    #[test]
    fn rejects_non_wildcards() {
        for not in [
            "1.0.0", "1.x-dev", "1.0.0-x", "dex", "1.*", "1.X", "", "1.", ".x", "x..1", "latest",
            "1.xx",
        ] {
            assert!(WildcardPattern::parse(not).is_none(), "{not}");
        }
    }

    #[test]
    fn x_spans_one_or_more_characters_including_dots() {
        assert!(pattern("1.x").matches("1.2.3"));
        assert!(pattern("1.x").matches("1.0.0"));
        assert!(!pattern("1.x").matches("10.0.0"));
        assert!(!pattern("1.x").matches("2.1.0"));
        assert!(pattern("1.2.x").matches("1.2.10"));
        assert!(!pattern("1.2.x").matches("1.20.0"));
        assert!(!pattern("1.2.x").matches("1.2."));
        assert!(pattern("x").matches("7.7.7"));
        assert!(pattern("x").matches("anything at all"));
        assert!(pattern("x.x.x").matches("1.2.3"));
        assert!(!pattern("x.x.x").matches("1.2"));
        assert!(pattern("91.1005.x").matches("91.1005.0"));
    }

    #[test]
    fn queries() {
        assert_eq!(VersionQuery::parse("latest"), VersionQuery::Latest);
        assert_eq!(
            VersionQuery::parse("1.x"),
            VersionQuery::Wildcard(pattern("1.x"))
        );
        assert_eq!(
            VersionQuery::parse("1.0.0"),
            VersionQuery::Exact("1.0.0".into())
        );
        assert_eq!(
            VersionQuery::parse("Latest"),
            VersionQuery::Exact("Latest".into())
        );
        assert_eq!(
            VersionQuery::parse("1.x-dev"),
            VersionQuery::Exact("1.x-dev".into())
        );
        for s in ["latest", "1.2.x", "0.0.1-dev"] {
            assert_eq!(VersionQuery::parse(s).as_str(), s);
        }
    }
}
