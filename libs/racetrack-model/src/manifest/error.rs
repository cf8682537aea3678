use std::fmt;

/// One problem with a manifest, located by a dotted field path (`git.remote`,
/// `resources.memory_max`, `public_endpoints[0]`); the path is empty when the problem concerns
/// the whole document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub path: String,
    pub reason: String,
}

impl ManifestError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> ManifestError {
        ManifestError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Appends a key to a dotted path.
pub(super) fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(
            ManifestError::new("git.remote", "bad").to_string(),
            "git.remote: bad"
        );
        assert_eq!(ManifestError::new("", "bad").to_string(), "bad");
        assert_eq!(child_path("", "git"), "git");
        assert_eq!(child_path("git", "remote"), "git.remote");
    }
}
