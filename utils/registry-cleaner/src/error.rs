//! What can go wrong, with the messages an operator sees. No message carries a token or a
//! password: URLs are refused when they hold credentials, and only response bodies of the
//! registry and Lifecycle (which never echo them) are quoted.

use std::fmt;

/// Which remote a failure concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Registry,
    Lifecycle,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Registry => "the registry",
            Service::Lifecycle => "Lifecycle",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is unusable; nothing was contacted.
    #[error("{setting}: {reason}")]
    Config {
        setting: &'static str,
        reason: String,
    },

    #[error("{service} could not be reached ({method} {url}): {source}")]
    Unreachable {
        service: Service,
        method: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{service} answered {method} {url} with HTTP {status}{}", detail(.body))]
    Status {
        service: Service,
        method: &'static str,
        url: String,
        status: u16,
        body: String,
    },

    #[error("{service} sent an answer to {method} {url} that cannot be read: {reason}")]
    BadAnswer {
        service: Service,
        method: &'static str,
        url: String,
        reason: String,
    },

    #[error(
        "Lifecycle refused the token (HTTP {status} on GET {url}): check LIFECYCLE_AUTH_TOKEN"
    )]
    Unauthorized { status: u16, url: String },

    #[error(
        "the Lifecycle token cannot read every fatman (it needs a global permission to read \
         fatmen, like an admin's or the dashboard's internal token): with a partial list, images \
         in use would look unused"
    )]
    PartialView,

    #[error(
        "the registry needs credentials (HTTP 401 on {method} {url}): set REGISTRY_USERNAME and \
         REGISTRY_PASSWORD (basic auth; token auth is not supported)"
    )]
    RegistryUnauthorized { method: &'static str, url: String },

    #[error(
        "the registry does not allow deletes (HTTP 405 on DELETE {url}): enable \
         `storage: delete: enabled: true` in its configuration"
    )]
    DeleteDisabled { url: String },

    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),
}

impl Error {
    /// Process exit code: 2 for settings, 1 for everything met while talking to the remotes.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. } => 2,
            _ => 1,
        }
    }
}

fn detail(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// At most `max` characters of a response body, on one line, for an error message.
pub(crate) fn excerpt(body: &str, max: usize) -> String {
    let one_line: String = body
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt(" a\nb ", 10), "a b");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ééé", 2), "éé…");
    }

    #[test]
    fn status_errors_name_the_service_and_the_body() {
        let e = Error::Status {
            service: Service::Registry,
            method: "GET",
            url: "http://r/v2/_catalog".into(),
            status: 500,
            body: "boom".into(),
        };
        assert_eq!(
            e.to_string(),
            "the registry answered GET http://r/v2/_catalog with HTTP 500: boom"
        );
        assert_eq!(e.exit_code(), 1);
    }
}
