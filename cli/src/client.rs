//! Lifecycle's REST API as the CLI uses it: the `X-Racetrack-Auth` header, JSON in and out, and
//! every failure turned into a [`CliError`] of the right kind with the URL tried.

use std::error::Error as _;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::config::ClientConfig;
use crate::error::{CliError, Result};
use crate::output;

pub const AUTH_HEADER: &str = "X-Racetrack-Auth";

pub struct Lifecycle {
    /// Resolved base URL, e.g. `https://rt.example.com/lifecycle`.
    pub url: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// "error sending request: connection refused" rather than only the outermost layer.
pub fn cause_chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("racetrack-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| CliError::Other(format!("cannot set up the HTTP client: {e}")))
}

/// The error a non-2xx answer stands for; `body` is Lifecycle's `{"error": ...}` when it sent
/// one.
pub fn status_error(status: StatusCode, body: &str, url: &str, lifecycle_url: &str) -> CliError {
    let server_message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from));
    let reason = status.canonical_reason().unwrap_or("");
    let message = match &server_message {
        Some(m) => format!("{reason}: {m}"),
        None => format!("{} {reason} for url: {url}", status.as_u16()),
    };
    match status {
        StatusCode::UNAUTHORIZED => CliError::Auth(format!(
            "{message}. The token for {lifecycle_url} is missing, expired or revoked: log in again with `racetrack login <token> --remote {lifecycle_url}`"
        )),
        StatusCode::FORBIDDEN => CliError::Auth(message),
        StatusCode::NOT_FOUND => CliError::NotFound(message),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT => {
            CliError::Invalid(message)
        }
        StatusCode::PAYLOAD_TOO_LARGE => CliError::Invalid(format!(
            "{message}. Lifecycle refuses requests this large; make the build context smaller: keep data sets, virtualenvs, build outputs and .git out of the fatman's directory, or list them in a .dockerignore there"
        )),
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            CliError::Unreachable(message)
        }
        _ => CliError::Other(message),
    }
}

impl Lifecycle {
    pub fn new(url: String, token: Option<String>) -> Result<Lifecycle> {
        Ok(Lifecycle {
            url: url.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            http: http_client()?,
        })
    }

    /// The client for `remote` with the token stored for it. Without a stored token, asks the
    /// server whether it needs one at all.
    pub async fn connect(config: &ClientConfig, remote: Option<&str>) -> Result<Lifecycle> {
        let url = config.resolve_remote(remote);
        if remote.is_none() {
            let current = &config.lifecycle_url;
            if current == &url {
                output::info(&format!("Using current remote: {current}"));
            } else {
                output::info(&format!("Using current remote: {current} - {url}"));
            }
        }
        let token = config.user_auths.get(&url).cloned();
        let lifecycle = Lifecycle::new(url, token)?;
        if lifecycle.token.is_none() {
            let info = lifecycle.get("/api/v1/info", "checking Lifecycle").await?;
            if info.get("auth_required").and_then(Value::as_bool) != Some(false) {
                let url = &lifecycle.url;
                return Err(CliError::Auth(format!(
                    "missing auth token for {url}. You need to do: racetrack login <token> --remote {url}"
                )));
            }
        }
        Ok(lifecycle)
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub async fn get(&self, path: &str, context: &str) -> Result<Value> {
        self.request(Method::GET, path, None, context).await
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        context: &str,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.url);
        output::debug(&format!("{method} {url}"));
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header(reqwest::header::ACCEPT, "application/json, */*");
        if let Some(token) = &self.token {
            req = req.header(AUTH_HEADER, token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| {
            CliError::Unreachable(format!(
                "Request failed: {method} {url}: {}",
                cause_chain(&e)
            ))
            .context(context)
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| {
            CliError::Unreachable(format!(
                "Request failed: {method} {url}: reading the answer: {}",
                cause_chain(&e)
            ))
            .context(context)
        })?;
        if !status.is_success() {
            return Err(status_error(status, &text, &url, &self.url)
                .context(&format!("{context}: Lifecycle response error")));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| {
            CliError::Other(format!("{context}: expected a JSON answer from {url}: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let e = status_error(
            StatusCode::UNAUTHORIZED,
            r#"{"error": "invalid token"}"#,
            "u",
            "http://x/lifecycle",
        );
        assert!(matches!(e, CliError::Auth(_)));
        assert!(e.to_string().contains("invalid token"), "{e}");
        assert!(e.to_string().contains("racetrack login"), "{e}");
        let e = status_error(StatusCode::NOT_FOUND, "nope", "http://x/y", "http://x");
        assert!(matches!(e, CliError::NotFound(_)));
        assert_eq!(e.to_string(), "404 Not Found for url: http://x/y");
        let e = status_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"error": "request body is larger than 10 bytes"}"#,
            "u",
            "l",
        );
        assert!(matches!(e, CliError::Invalid(_)));
        assert!(e.to_string().contains("10 bytes"));
        assert!(e.to_string().contains(".dockerignore"));
    }
}
