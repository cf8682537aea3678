//! The command line: each setting a flag with an environment fallback.

use std::fmt;
use std::time::Duration;

use clap::Parser;

use crate::error::Error;
use crate::http::Secret;
use crate::registry::BasicAuth;

/// Default for `--keep`: the original cleaner's number of newest tags always kept.
pub const DEFAULT_KEEP: usize = 10;
/// Default for `--min-age-minutes`: longer than the image-builder's default build timeout
/// (3600 s) plus provisioning, so an image pushed by a deployment still running stays.
pub const DEFAULT_MIN_AGE_MINUTES: u32 = 120;

#[derive(Parser)]
#[command(
    name = "registry-cleaner",
    version,
    about = "Deletes registry images of fatmen that no longer exist and unused tags beyond a \
             retention count. Dry run unless --delete is given.",
    long_about = "Deletes registry images of fatmen that no longer exist and unused tags beyond \
                  a retention count, through the Docker registry HTTP API v2. Which fatmen exist \
                  comes from Lifecycle (GET /api/v1/fatman). A tag an existing fatman version \
                  runs is never deleted.\n\nWithout --delete it only prints what it would delete \
                  (repository:tag, digest, reason). Exit codes: 0 done, 1 the registry or \
                  Lifecycle failed (nothing more deleted), 2 bad settings, 3 some deletions \
                  failed."
)]
pub struct Args {
    /// Registry base URL (plain HTTP).
    #[arg(long, env = "REGISTRY_URL", default_value = "http://127.0.0.1:5000")]
    pub registry_url: String,

    /// Registry basic-auth user (with --registry-password).
    #[arg(long, env = "REGISTRY_USERNAME")]
    pub registry_username: Option<String>,

    /// Registry basic-auth password; prefer the environment variable.
    #[arg(long, env = "REGISTRY_PASSWORD", hide_env_values = true)]
    pub registry_password: Option<String>,

    /// Lifecycle base URL (where /api/v1 is served; plain HTTP).
    #[arg(long, env = "LIFECYCLE_URL", default_value = "http://127.0.0.1:7102")]
    pub lifecycle_url: String,

    /// Lifecycle token that may read every fatman (an admin's, or the dashboard's internal
    /// token); prefer the environment variable.
    #[arg(long, env = "LIFECYCLE_AUTH_TOKEN", hide_env_values = true)]
    pub lifecycle_auth_token: Option<String>,

    /// Path prefix of fatman images in the registry (the image-builder's
    /// DOCKER_REGISTRY_NAMESPACE; may be empty).
    #[arg(long, env = "DOCKER_REGISTRY_NAMESPACE", default_value = "racetrack")]
    pub namespace: String,

    /// Unused tags kept per repository of an existing fatman (the newest).
    #[arg(long, env = "REGISTRY_KEEP_TAGS", default_value_t = DEFAULT_KEEP)]
    pub keep: usize,

    /// Tags younger than this are never deleted (a deployment may be about to use them).
    #[arg(long, env = "REGISTRY_MIN_AGE_MINUTES", default_value_t = DEFAULT_MIN_AGE_MINUTES)]
    pub min_age_minutes: u32,

    /// HTTP timeout of each request, in seconds.
    #[arg(long, env = "REGISTRY_CLEANER_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,

    /// Delete what the plan lists (without it: dry run).
    #[arg(long)]
    pub delete: bool,

    /// Also print every tag kept, with its reason.
    #[arg(short, long)]
    pub verbose: bool,
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("Args")
            .field("registry_url", &self.registry_url)
            .field("registry_username", &self.registry_username)
            .field("registry_password", &hidden(&self.registry_password))
            .field("lifecycle_url", &self.lifecycle_url)
            .field("lifecycle_auth_token", &hidden(&self.lifecycle_auth_token))
            .field("namespace", &self.namespace)
            .field("keep", &self.keep)
            .field("min_age_minutes", &self.min_age_minutes)
            .field("timeout_secs", &self.timeout_secs)
            .field("delete", &self.delete)
            .field("verbose", &self.verbose)
            .finish()
    }
}

impl Args {
    pub fn registry_auth(&self) -> Result<Option<BasicAuth>, Error> {
        match (&self.registry_username, &self.registry_password) {
            (None, None) => Ok(None),
            (Some(username), Some(password)) if !username.is_empty() => Ok(Some(BasicAuth {
                username: username.clone(),
                password: Secret::new(password.clone()),
            })),
            (Some(_), Some(_)) => Err(Error::Config {
                setting: "REGISTRY_USERNAME",
                reason: "must not be empty".into(),
            }),
            (Some(_), None) => Err(Error::Config {
                setting: "REGISTRY_PASSWORD",
                reason: "is required with REGISTRY_USERNAME".into(),
            }),
            (None, Some(_)) => Err(Error::Config {
                setting: "REGISTRY_USERNAME",
                reason: "is required with REGISTRY_PASSWORD".into(),
            }),
        }
    }

    pub fn token(&self) -> Result<Secret, Error> {
        match &self.lifecycle_auth_token {
            Some(t) if !t.trim().is_empty() => Ok(Secret::new(t.trim())),
            _ => Err(Error::Config {
                setting: "LIFECYCLE_AUTH_TOKEN",
                reason: "is required (a token that may read every fatman)".into(),
            }),
        }
    }

    pub fn namespace(&self) -> String {
        self.namespace.trim_matches('/').to_string()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        let mut all = vec!["registry-cleaner"];
        all.extend_from_slice(args);
        Args::try_parse_from(all).unwrap()
    }

    #[test]
    fn defaults_and_secrets() {
        let a = parse(&[
            "--lifecycle-auth-token",
            "s3cr3t-value",
            "--registry-username",
            "u",
        ]);
        assert!(!a.delete);
        assert_eq!(a.namespace(), "racetrack");
        assert_eq!(a.token().unwrap().expose(), "s3cr3t-value");
        assert!(matches!(
            a.registry_auth(),
            Err(Error::Config {
                setting: "REGISTRY_PASSWORD",
                ..
            })
        ));
        let shown = format!("{a:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn a_missing_token_is_a_settings_error() {
        let a = parse(&["--lifecycle-auth-token", " "]);
        let e = a.token().unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn the_timeout_is_bounded() {
        assert!(Args::try_parse_from(["registry-cleaner", "--timeout-secs", "0"]).is_err());
    }
}
