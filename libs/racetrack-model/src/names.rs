//! Rules that keep a fatman's name and version usable as infrastructure resource names and URL
//! path segments.
//!
//! Stricter than the original on purpose: the original server took any name and version and
//! only failed later, inside the infrastructure plugin, when `fatman-<name>-v-<version>` turned
//! out not to be a valid Kubernetes/Docker name (an RFC 1035 label: lowercase letters, digits and
//! `-`, starting with a letter, ending with a letter or digit, at most 63 characters). These
//! checks refuse such fatmen up front and say why.

use crate::version::{SemVer, VersionError};

/// Longest resource name Kubernetes accepts for the objects a fatman becomes.
pub const MAX_RESOURCE_NAME_LEN: usize = 63;

const RESOURCE_PREFIX: &str = "fatman-";
const VERSION_INFIX: &str = "-v-";
/// `0.0.0` after dots become dashes: no version is shorter.
const SHORTEST_VERSION_LEN: usize = 5;

/// The longest name that still leaves room for the shortest version.
pub const MAX_NAME_LEN: usize =
    MAX_RESOURCE_NAME_LEN - RESOURCE_PREFIX.len() - VERSION_INFIX.len() - SHORTEST_VERSION_LEN;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("fatman name must not be empty")]
    EmptyName,
    #[error("fatman name {name:?} is {len} characters long; at most {max} are allowed so that it fits in a resource name", max = MAX_NAME_LEN)]
    NameTooLong { name: String, len: usize },
    #[error(
        "fatman name {0:?} must start with a lowercase letter (it becomes part of a resource name)"
    )]
    NameStart(String),
    #[error("fatman name {0:?} must not end with '-' (it becomes part of a resource name)")]
    NameEnd(String),
    #[error(
        "fatman name {name:?} may contain only lowercase letters, digits and '-', found {found:?}"
    )]
    NameCharacter { name: String, found: char },
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("version {version:?} may contain only letters, digits, '.' and '-' (it becomes part of a resource name and URL), found {found:?}")]
    VersionCharacter { version: String, found: char },
    #[error("version {0:?} must end with a letter or digit (it becomes part of a resource name)")]
    VersionEnd(String),
    #[error("resource name {resource:?} is {len} characters long, more than {max}; shorten the fatman name or version", len = .resource.len(), max = MAX_RESOURCE_NAME_LEN)]
    ResourceNameTooLong { resource: String },
}

/// A fatman name must be lowercase letters, digits and `-`, start with a letter, not end with `-`
/// and be at most [`MAX_NAME_LEN`] characters.
pub fn validate_fatman_name(name: &str) -> Result<(), NameError> {
    let Some(first) = name.chars().next() else {
        return Err(NameError::EmptyName);
    };
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::NameCharacter {
            name: name.to_string(),
            found,
        });
    }
    if !first.is_ascii_lowercase() {
        return Err(NameError::NameStart(name.to_string()));
    }
    if name.ends_with('-') {
        return Err(NameError::NameEnd(name.to_string()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::NameTooLong {
            name: name.to_string(),
            len: name.len(),
        });
    }
    Ok(())
}

/// A version must be `SemVer` whose label uses only ASCII letters, digits, `.` and `-`, ending with
/// a letter or digit.
///
/// Uppercase is allowed (as before) although [`resource_name`] lowercases it, so `1.0.0-RC` and
/// `1.0.0-rc` (or `1.0.0-rc.1` and `1.0.0-rc-1`) share a resource name; the registry keeps them
/// apart, the infrastructure cannot.
pub fn validate_fatman_version(version: &str) -> Result<(), NameError> {
    SemVer::parse(version)?;
    if let Some(found) = version
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        return Err(NameError::VersionCharacter {
            version: version.to_string(),
            found,
        });
    }
    if !version.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(NameError::VersionEnd(version.to_string()));
    }
    Ok(())
}

/// The infrastructure name of a fatman version: `fatman-<name>-v-<version>`, dots turned into
/// dashes, lowercased. Does not validate; see [`validate_fatman_identity`].
pub fn resource_name(name: &str, version: &str) -> String {
    format!("{RESOURCE_PREFIX}{name}{VERSION_INFIX}{version}")
        .replace('.', "-")
        .to_lowercase()
}

/// Checks name and version together (their resource name must fit in
/// [`MAX_RESOURCE_NAME_LEN`]) and returns that resource name.
pub fn validate_fatman_identity(name: &str, version: &str) -> Result<String, NameError> {
    validate_fatman_name(name)?;
    validate_fatman_version(version)?;
    let resource = resource_name(name, version);
    if resource.len() > MAX_RESOURCE_NAME_LEN {
        return Err(NameError::ResourceNameTooLong { resource });
    }
    Ok(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "adder",
            "python-class-2",
            "a",
            "a1",
            "x--y",
            &"a".repeat(MAX_NAME_LEN),
        ] {
            assert_eq!(validate_fatman_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn rejects_names_that_cannot_be_resource_names() {
        assert_eq!(validate_fatman_name(""), Err(NameError::EmptyName));
        assert_eq!(
            validate_fatman_name("1adder"),
            Err(NameError::NameStart("1adder".into()))
        );
        assert_eq!(
            validate_fatman_name("-adder"),
            Err(NameError::NameStart("-adder".into()))
        );
        assert_eq!(
            validate_fatman_name("adder-"),
            Err(NameError::NameEnd("adder-".into()))
        );
        assert_eq!(
            validate_fatman_name("my_adder"),
            Err(NameError::NameCharacter {
                name: "my_adder".into(),
                found: '_'
            })
        );
        for bad in ["Adder", "a/../b", "a.b", "a b", "ädder", "adder\n"] {
            assert!(
                matches!(
                    validate_fatman_name(bad),
                    Err(NameError::NameCharacter { .. })
                ),
                "{bad:?}"
            );
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            validate_fatman_name(&long),
            Err(NameError::NameTooLong { len: 49, .. })
        ));
    }

    #[test]
    fn versions() {
        for ok in ["0.0.1", "1.2.3-dev", "1.2.3.4", "1.0.0rc1", "2.0.0-RC.1"] {
            assert_eq!(validate_fatman_version(ok), Ok(()), "{ok}");
        }
        assert!(matches!(
            validate_fatman_version("1.0"),
            Err(NameError::Version(_))
        ));
        assert!(matches!(
            validate_fatman_version("1.0.0/../x"),
            Err(NameError::VersionCharacter { found: '/', .. })
        ));
        assert!(matches!(
            validate_fatman_version("1.0.0+build"),
            Err(NameError::VersionCharacter { .. })
        ));
        assert_eq!(
            validate_fatman_version("1.0.0-"),
            Err(NameError::VersionEnd("1.0.0-".into()))
        );
        assert_eq!(
            validate_fatman_version("1.0.0."),
            Err(NameError::VersionEnd("1.0.0.".into()))
        );
        assert_eq!(
            validate_fatman_version("1.0").unwrap_err().to_string(),
            "Version '1.0' doesn't match SemVer format 'X.Y.Z[-label]'"
        );
    }

    #[test]
    fn resource_names() {
        assert_eq!(resource_name("adder", "0.0.1"), "fatman-adder-v-0-0-1");
        assert_eq!(
            resource_name("adder", "1.2.3-RC.1"),
            "fatman-adder-v-1-2-3-rc-1"
        );
    }

    #[test]
    fn identity_checks_the_combined_length() {
        assert_eq!(
            validate_fatman_identity("adder", "1.2.3-dev"),
            Ok("fatman-adder-v-1-2-3-dev".into())
        );
        let longest_name = "a".repeat(MAX_NAME_LEN);
        assert_eq!(
            validate_fatman_identity(&longest_name, "0.0.0").map(|r| r.len()),
            Ok(63)
        );
        assert!(matches!(
            validate_fatman_identity(&longest_name, "0.0.10"),
            Err(NameError::ResourceNameTooLong { .. })
        ));
        assert!(validate_fatman_identity("adder", "1.2.3/x").is_err());
        assert!(validate_fatman_identity("Adder", "1.0.0").is_err());
    }
}
