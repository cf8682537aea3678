//! Names: deployment ids (they name files), image tags and image references.

use std::sync::OnceLock;

use regex::Regex;

/// Longest deployment id accepted (it names a workspace folder and a log file).
pub const MAX_DEPLOYMENT_ID_LEN: usize = 128;

/// A deployment id is used as a file name: letters, digits, `.`, `_` and `-`, not starting with
/// a dot, at most [`MAX_DEPLOYMENT_ID_LEN`] characters.
pub fn validate_deployment_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("deployment_id is required".into());
    }
    if id.len() > MAX_DEPLOYMENT_ID_LEN {
        return Err(format!(
            "deployment_id is longer than {MAX_DEPLOYMENT_ID_LEN} characters"
        ));
    }
    if id.starts_with('.')
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(
            "deployment_id may only contain letters, digits, '.', '_' and '-' and must not start with '.'"
                .into(),
        );
    }
    Ok(())
}

#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the tests: it cannot fail later"
)]
fn tag_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("valid regex"))
}

#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the tests: it cannot fail later"
)]
fn component_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").expect("valid regex"))
}

/// A Docker image tag (`2023-02-13T160941`, `1.0.0`).
pub fn validate_tag(tag: &str) -> Result<(), String> {
    if tag_re().is_match(tag) {
        Ok(())
    } else {
        Err(format!(
            "`{tag}` is not a valid image tag (letters, digits, '_', '.', '-'; at most 128 characters)"
        ))
    }
}

/// One `/`-separated component of an image repository path.
pub fn is_valid_path_component(component: &str) -> bool {
    component_re().is_match(component)
}

/// `{registry}/{namespace}/{kind}/{name}:{tag}`, empty parts skipped. Fails when the result is
/// not a valid reference (uppercase names, odd characters).
pub fn image_name(
    registry: &str,
    namespace: &str,
    kind: &str,
    name: &str,
    tag: &str,
) -> Result<String, String> {
    if !is_valid_path_component(name) {
        return Err(format!(
            "`{name}` can't be used in an image name (lowercase letters, digits and single separators only)"
        ));
    }
    validate_tag(tag)?;
    let mut parts: Vec<&str> = Vec::new();
    for part in [registry, namespace, kind, name] {
        if !part.is_empty() {
            parts.push(part);
        }
    }
    Ok(format!("{}:{tag}", parts.join("/")))
}

/// Splits `repo:tag` (the tag being after the last `:` that follows the last `/`).
pub fn split_tag(image: &str) -> (&str, Option<&str>) {
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => (&image[..slash + i], Some(&image[slash + i + 1..])),
        None => (image, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_ids() {
        assert!(validate_deployment_id("a1b2-c3.d_4").is_ok());
        assert!(validate_deployment_id("").is_err());
        assert!(validate_deployment_id("../etc").is_err());
        assert!(validate_deployment_id(".hidden").is_err());
        assert!(validate_deployment_id("a/b").is_err());
        assert!(validate_deployment_id(&"x".repeat(129)).is_err());
    }

    #[test]
    fn image_names() {
        assert_eq!(
            image_name(
                "127.0.0.1:5000",
                "racetrack",
                "fatman-entrypoint",
                "adder",
                "2023-02-13T160941"
            )
            .unwrap(),
            "127.0.0.1:5000/racetrack/fatman-entrypoint/adder:2023-02-13T160941"
        );
        assert_eq!(
            image_name("", "racetrack", "fatman-base", "python3", "1.2.0").unwrap(),
            "racetrack/fatman-base/python3:1.2.0"
        );
        assert!(image_name("r", "n", "k", "Upper", "t").is_err());
        assert!(image_name("r", "n", "k", "ok", "bad tag").is_err());
        assert!(validate_tag("-x").is_err());
    }

    #[test]
    fn tags_split() {
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b:t1"),
            ("127.0.0.1:5000/a/b", Some("t1"))
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b", None)
        );
        assert_eq!(split_tag("busybox"), ("busybox", None));
    }
}
