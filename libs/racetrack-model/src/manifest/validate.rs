//! What `racetrack validate` checks beyond the schema. Servers do not run this: the original
//! accepted any manifest that merely parsed, and so must we.

use std::sync::OnceLock;

use regex::Regex;

use super::error::ManifestError;
use super::quantity::Quantity;
use super::schema::Manifest;
use crate::names::{self, NameError};

pub const MIN_REPLICAS: u32 = 1;
pub const MAX_REPLICAS: u32 = 15;

fn email_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    // A prefix match, as the original: anything may follow the domain.
    RE.get_or_init(|| Regex::new(r"\A[^@]+@[^@]+\.[^@]+").ok())
        .as_ref()
}

/// The scheme of a URL the way Python's `urlsplit` finds it, lowercased; `None` without one.
fn url_scheme(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// Every problem found, in the order the original checked (`owner_email`, `version`, `lang`,
/// `replicas`, `git.remote`), followed by the checks this port adds: the name must be able to
/// become a resource name (see [`crate::names`]) and resource minimums must not exceed their
/// maximums.
pub fn validate_manifest(m: &Manifest) -> Result<(), Vec<ManifestError>> {
    let mut problems = Vec::new();
    let mut problem = |path: &str, reason: String| problems.push(ManifestError::new(path, reason));

    if !email_regex().is_some_and(|re| re.is_match(&m.owner_email)) {
        problem(
            "owner_email",
            format!("{:?} is not a valid email", m.owner_email),
        );
    }
    let version_ok = match names::validate_fatman_version(&m.version) {
        Ok(()) => true,
        Err(e) => {
            problem("version", e.to_string());
            false
        }
    };
    if !m.lang.contains(':') {
        problem(
            "lang",
            format!(
                "{:?} should specify the version in a format \"name:version\", e.g. python3:latest",
                m.lang
            ),
        );
    }
    if !(MIN_REPLICAS..=MAX_REPLICAS).contains(&m.replicas) {
        problem(
            "replicas",
            format!(
                "{} is out of the allowed range: {MIN_REPLICAS} to {MAX_REPLICAS}",
                m.replicas
            ),
        );
    }
    if url_scheme(&m.git.remote).as_deref() != Some("https") {
        problem(
            "git.remote",
            format!(
                "{:?} should be an HTTPS URL (SSH is not supported)",
                m.git.remote
            ),
        );
    }
    match names::validate_fatman_name(&m.name) {
        Err(e) => problem("name", e.to_string()),
        Ok(()) if version_ok => {
            if let Err(e @ NameError::ResourceNameTooLong { .. }) =
                names::validate_fatman_identity(&m.name, &m.version)
            {
                problem("name", e.to_string());
            }
        }
        Ok(()) => {}
    }
    if let Some(resources) = &m.resources {
        let pairs = [
            ("memory", &resources.memory_min, &resources.memory_max),
            ("cpu", &resources.cpu_min, &resources.cpu_max),
        ];
        for (kind, min, max) in pairs {
            if let (Some(min), Some(max)) = (min, max) {
                check_range(kind, min, max, &mut problem);
            }
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_range(kind: &str, min: &Quantity, max: &Quantity, problem: &mut impl FnMut(&str, String)) {
    if min > max {
        problem(
            &format!("resources.{kind}_min"),
            format!("{min} is greater than {kind}_max {max}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifest_yaml;

    const GOOD: &str = "\
name: adder
owner_email: sample@example.com
version: 1.0.0
lang: python3:latest
git: {remote: 'https://github.com/TheRacetrack/racetrack'}
";

    fn problems(extra: &str) -> Vec<ManifestError> {
        let text = format!("{GOOD}{extra}");
        let m = parse_manifest_yaml(&text).unwrap();
        validate_manifest(&m).err().unwrap_or_default()
    }

    fn paths(errors: &[ManifestError]) -> Vec<&str> {
        errors.iter().map(|e| e.path.as_str()).collect()
    }

    fn with(field: &str, value: &str) -> Vec<ManifestError> {
        let text = GOOD
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{field}:")) {
                    format!("{field}: {value}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let m = parse_manifest_yaml(&text).unwrap();
        validate_manifest(&m).err().unwrap_or_default()
    }

    #[test]
    fn accepts_a_good_manifest() {
        assert_eq!(problems(""), []);
        assert_eq!(
            problems(
                "replicas: 15\nresources: {memory_min: 1Gi, memory_max: 1024Mi, cpu_min: 10m}\n"
            ),
            []
        );
    }

    #[test]
    fn reports_every_problem_in_order() {
        let m = parse_manifest_yaml(
            "name: Bad_Name\nowner_email: nobody\nversion: '1.0'\nlang: python3\nreplicas: 20\n\
             git: {remote: 'git@github.com:x/y'}\nresources: {memory_min: 2Gi, memory_max: 1Gi, cpu_min: '2', cpu_max: 1500m}\n",
        )
        .unwrap();
        let errors = validate_manifest(&m).unwrap_err();
        assert_eq!(
            paths(&errors),
            [
                "owner_email",
                "version",
                "lang",
                "replicas",
                "git.remote",
                "name",
                "resources.memory_min",
                "resources.cpu_min"
            ]
        );
        assert_eq!(
            errors[1].reason,
            "Version '1.0' doesn't match SemVer format 'X.Y.Z[-label]'"
        );
        assert!(
            errors[6].reason.contains("2Gi") && errors[6].reason.contains("1Gi"),
            "{}",
            errors[6]
        );
    }

    #[test]
    fn the_default_lang_fails() {
        let m = parse_manifest_yaml(
            "name: adder\nowner_email: a@b.co\ngit: {remote: 'https://x.org/r'}\n",
        )
        .unwrap();
        assert_eq!(paths(&validate_manifest(&m).unwrap_err()), ["lang"]);
    }

    #[test]
    fn owner_email_is_a_prefix_match() {
        assert_eq!(paths(&with("owner_email", "a@b.c")), Vec::<&str>::new());
        assert_eq!(paths(&with("owner_email", "'a@b.c d'")), Vec::<&str>::new());
        for bad in ["ab.c", "a@bc", "'@b.c'", "'a@@b.c'", "'a@.c'"] {
            assert_eq!(paths(&with("owner_email", bad)), ["owner_email"], "{bad}");
        }
    }

    #[test]
    fn replicas_range() {
        assert_eq!(paths(&problems("replicas: 0\n")), ["replicas"]);
        assert_eq!(paths(&problems("replicas: 16\n")), ["replicas"]);
        assert_eq!(paths(&problems("replicas: 1\n")), Vec::<&str>::new());
    }

    #[test]
    fn git_remote_must_be_https() {
        for ok in [
            "'https://github.com/x/y'",
            "'HTTPS://github.com/x/y'",
            "'https:github.com/x'",
        ] {
            assert_eq!(
                paths(&with("git", &format!("{{remote: {ok}}}"))),
                Vec::<&str>::new(),
                "{ok}"
            );
        }
        for bad in [
            "'http://github.com/x'",
            "'ssh://git@github.com/x'",
            "'git@github.com:x/y'",
            "/srv/repo",
            "'file:///srv/repo'",
            "''",
        ] {
            assert_eq!(
                paths(&with("git", &format!("{{remote: {bad}}}"))),
                ["git.remote"],
                "{bad}"
            );
        }
    }

    #[test]
    fn version_must_fit_a_resource_name() {
        assert_eq!(paths(&with("version", "1.0.0-rc1")), Vec::<&str>::new());
        assert_eq!(paths(&with("version", "'1.0.0+build'")), ["version"]);
        assert_eq!(paths(&with("version", "1.0.0-")), ["version"]);
    }

    #[test]
    fn name_rules() {
        assert_eq!(paths(&with("name", "my_model")), ["name"]);
        assert_eq!(paths(&with("name", &"a".repeat(49))), ["name"]);
        let long_name = "a".repeat(48);
        let text = GOOD
            .replace("name: adder", &format!("name: {long_name}"))
            .replace("1.0.0", "10.0.0");
        let m = parse_manifest_yaml(&text).unwrap();
        let errors = validate_manifest(&m).unwrap_err();
        assert_eq!(paths(&errors), ["name"]);
        assert!(errors[0].reason.contains("63"), "{}", errors[0]);
    }

    #[test]
    fn url_schemes() {
        assert_eq!(url_scheme("https://x").as_deref(), Some("https"));
        assert_eq!(url_scheme("Git+SSH://x").as_deref(), Some("git+ssh"));
        assert_eq!(url_scheme("git@github.com:x/y"), None);
        assert_eq!(url_scheme("no-colon"), None);
        assert_eq!(url_scheme(":x"), None);
    }
}
