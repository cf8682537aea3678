//! The CLI's errors and the exit code each kind ends the process with (documented in
//! cli/README.md; scripts rely on them).

/// Usage errors (clap) also exit with 2, so "the input was wrong" has one code.
pub const EXIT_INVALID: i32 = 2;
pub const EXIT_AUTH: i32 = 3;
pub const EXIT_NOT_FOUND: i32 = 4;
pub const EXIT_DEPLOYMENT_FAILED: i32 = 5;
pub const EXIT_UNREACHABLE: i32 = 6;
pub const EXIT_OTHER: i32 = 1;
/// Ctrl-C while watching a deployment: the shell's convention for SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments, manifest, config file or payload (nothing or a refused request sent).
    #[error("{0}")]
    Invalid(String),
    /// No token, a token the server refused (expired, revoked) or a missing permission.
    #[error("authentication error: {0}")]
    Auth(String),
    #[error("{0}")]
    NotFound(String),
    #[error("deployment error: {0}")]
    DeploymentFailed(String),
    /// Lifecycle (or PUB) could not be reached at all.
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Interrupted(String),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Invalid(_) => EXIT_INVALID,
            CliError::Auth(_) => EXIT_AUTH,
            CliError::NotFound(_) => EXIT_NOT_FOUND,
            CliError::DeploymentFailed(_) => EXIT_DEPLOYMENT_FAILED,
            CliError::Unreachable(_) => EXIT_UNREACHABLE,
            CliError::Interrupted(_) => EXIT_INTERRUPTED,
            CliError::Other(_) => EXIT_OTHER,
        }
    }

    /// The same kind of error with `context: ` in front of its message.
    pub fn context(self, context: &str) -> CliError {
        let wrap = |m: String| format!("{context}: {m}");
        match self {
            CliError::Invalid(m) => CliError::Invalid(wrap(m)),
            CliError::Auth(m) => CliError::Auth(wrap(m)),
            CliError::NotFound(m) => CliError::NotFound(wrap(m)),
            CliError::DeploymentFailed(m) => CliError::DeploymentFailed(wrap(m)),
            CliError::Unreachable(m) => CliError::Unreachable(wrap(m)),
            CliError::Interrupted(m) => CliError::Interrupted(wrap(m)),
            CliError::Other(m) => CliError::Other(wrap(m)),
        }
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_context_keeps_the_kind() {
        let all = [
            CliError::Invalid(String::new()),
            CliError::Auth(String::new()),
            CliError::NotFound(String::new()),
            CliError::DeploymentFailed(String::new()),
            CliError::Unreachable(String::new()),
            CliError::Interrupted(String::new()),
            CliError::Other(String::new()),
        ];
        let mut codes: Vec<i32> = all.iter().map(CliError::exit_code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        let e = CliError::NotFound("no fatman".into()).context("deleting");
        assert_eq!(e.exit_code(), EXIT_NOT_FOUND);
        assert_eq!(e.to_string(), "deleting: no fatman");
    }
}
