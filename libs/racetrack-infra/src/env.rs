//! Env vars the platform injects into every fatman (docs/architecture.md, "Infrastructure
//! targets"); a user's runtime env must not set them.

use std::collections::BTreeMap;

use crate::InfraError;

/// Base URL of PUB as seen from the fatman (for fatman-to-fatman calls).
pub const ENV_PUB_URL: &str = "PUB_URL";
/// The fatman's name.
pub const ENV_FATMAN_NAME: &str = "FATMAN_NAME";
/// Token of the fatman family's auth subject, sent as `X-Racetrack-Auth` on calls to other fatmen.
pub const ENV_AUTH_TOKEN: &str = "AUTH_TOKEN";
/// Unix seconds of the deployment; the fatman echoes it in `/live`.
pub const ENV_FATMAN_DEPLOYMENT_TIMESTAMP: &str = "FATMAN_DEPLOYMENT_TIMESTAMP";
/// Name of the request-tracing header.
pub const ENV_REQUEST_TRACING_HEADER: &str = "REQUEST_TRACING_HEADER";
/// OpenTelemetry collector endpoint (set only when tracing export is on, reserved always).
pub const ENV_OPENTELEMETRY_ENDPOINT: &str = "OPENTELEMETRY_ENDPOINT";
/// Host of a job type's extra ("user module") container.
pub const ENV_FATMAN_USER_MODULE_HOSTNAME: &str = "FATMAN_USER_MODULE_HOSTNAME";

/// Every name a user's runtime env may not set, sorted.
pub const RESERVED_ENV_VARS: &[&str] = &[
    ENV_AUTH_TOKEN,
    ENV_FATMAN_DEPLOYMENT_TIMESTAMP,
    ENV_FATMAN_NAME,
    ENV_FATMAN_USER_MODULE_HOSTNAME,
    ENV_OPENTELEMETRY_ENDPOINT,
    ENV_PUB_URL,
    ENV_REQUEST_TRACING_HEADER,
];

/// The names in `user_env` that are reserved, sorted (empty = fine).
pub fn reserved_env_conflicts(user_env: &BTreeMap<String, String>) -> Vec<String> {
    user_env
        .keys()
        .filter(|k| RESERVED_ENV_VARS.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// `Err(Invalid("found illegal runtime env vars, which conflict with reserved names: A, B"))`
/// when `user_env` sets reserved names.
pub fn check_reserved_env(user_env: &BTreeMap<String, String>) -> Result<(), InfraError> {
    let conflicts = reserved_env_conflicts(user_env);
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(InfraError::Invalid(format!(
            "found illegal runtime env vars, which conflict with reserved names: {}",
            conflicts.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(names: &[&str]) -> BTreeMap<String, String> {
        names
            .iter()
            .map(|n| (n.to_string(), "v".to_string()))
            .collect()
    }

    #[test]
    fn reserved_list_is_sorted_and_complete() {
        let mut sorted = RESERVED_ENV_VARS.to_vec();
        sorted.sort();
        assert_eq!(sorted, RESERVED_ENV_VARS);
        for name in [
            "PUB_URL",
            "FATMAN_NAME",
            "AUTH_TOKEN",
            "FATMAN_DEPLOYMENT_TIMESTAMP",
            "REQUEST_TRACING_HEADER",
        ] {
            assert!(RESERVED_ENV_VARS.contains(&name), "{name}");
        }
    }

    #[test]
    fn conflicts_are_found_and_sorted() {
        assert!(reserved_env_conflicts(&env(&["DEBUG", "MODEL_PATH"])).is_empty());
        assert_eq!(
            reserved_env_conflicts(&env(&["PUB_URL", "DEBUG", "AUTH_TOKEN"])),
            vec!["AUTH_TOKEN", "PUB_URL"]
        );
        // Names are case-sensitive, as env vars are.
        assert!(reserved_env_conflicts(&env(&["pub_url"])).is_empty());
    }

    #[test]
    fn check_names_the_conflicts_without_values() {
        let mut user = env(&["FATMAN_NAME", "REQUEST_TRACING_HEADER"]);
        user.insert("FATMAN_NAME".into(), "secret-looking-value".into());
        let err = check_reserved_env(&user).unwrap_err();
        assert_eq!(
            err.to_string(),
            "found illegal runtime env vars, which conflict with reserved names: FATMAN_NAME, REQUEST_TRACING_HEADER"
        );
        assert!(check_reserved_env(&env(&["X"])).is_ok());
    }
}
