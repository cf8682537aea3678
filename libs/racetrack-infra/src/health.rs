//! Health checks against the fatman runtime contract (docs/architecture.md, "The fatman runtime
//! contract"): `GET /live` and `GET /ready` on `http://{internal_name}`.
//!
//! Verdicts, as the original monitor gave them:
//! - `/live`: 200 = alive. 404 = "liveness endpoint not found" and a non-200 answer = the fatman
//!   failed to initialise (its JSON `error` is quoted): both final, never retried. No answer
//!   (connection refused, timeout) = not up yet, retried.
//! - `/ready`: 200 = ready. 404 = "readiness endpoint not found" (final). Anything else = still
//!   initialising, retried.
//!
//! Each request times out after 3 s. No HTTP proxy is used, whatever the environment says.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::InfraError;

/// Per-request timeout of health probes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest pause between two probes while waiting.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(3);
const BODY_SNIPPET_CHARS: usize = 200;

/// One look at a fatman's health endpoints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FatmanHealth {
    /// `/live` answered 200.
    pub live: bool,
    /// `/ready` answered 200 (only asked when live).
    pub ready: bool,
    /// Why not live or not ready; `None` when both are true.
    pub error: Option<String>,
}

/// One `/live` then (when live) one `/ready` request; never fails, the verdict is in the result.
pub async fn check(internal_name: &str) -> FatmanHealth {
    if internal_name.is_empty() {
        return FatmanHealth {
            live: false,
            ready: false,
            error: Some("fatman has no address (it publishes no port)".into()),
        };
    }
    let base = format!("http://{internal_name}");
    match probe_live(&base, None, REQUEST_TIMEOUT).await {
        Probe::Retry(e) | Probe::Fatal(e) => FatmanHealth {
            live: false,
            ready: false,
            error: Some(e),
        },
        Probe::Ok => match probe_ready(&base, REQUEST_TIMEOUT).await {
            Probe::Ok => FatmanHealth {
                live: true,
                ready: true,
                error: None,
            },
            Probe::Retry(e) => FatmanHealth {
                live: true,
                ready: false,
                error: Some(format!("fatman is still initializing: {e}")),
            },
            Probe::Fatal(e) => FatmanHealth {
                live: true,
                ready: false,
                error: Some(e),
            },
        },
    }
}

/// Polls `/live` then `/ready` (Fibonacci back-off from 100 ms up to 3 s between rounds) until both answer
/// 200. Errors: [`InfraError::Unhealthy`] at once for a final verdict (see the module doc);
/// [`InfraError::Timeout`] when `timeout` passes, naming the last thing seen, e.g. `fatman did not
/// become ready within 60s: GET /ready answered 503 Service Unavailable: {"ready":false}` or
/// `... GET /live: connection refused`.
pub async fn wait_until_ready(internal_name: &str, timeout: Duration) -> Result<(), InfraError> {
    wait_until_ready_with(internal_name, timeout, None).await
}

/// [`wait_until_ready`], and when `deployment_timestamp` is given, a `/live` answer whose JSON
/// `deployment_timestamp` differs (an older instance still answering) counts as not up yet.
pub async fn wait_until_ready_with(
    internal_name: &str,
    timeout: Duration,
    deployment_timestamp: Option<i64>,
) -> Result<(), InfraError> {
    if internal_name.is_empty() {
        return Err(InfraError::Unhealthy(
            "fatman has no address (it publishes no port)".into(),
        ));
    }
    let base = format!("http://{internal_name}");
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::default();
    let mut last: String;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let request_timeout = remaining.clamp(Duration::from_millis(200), REQUEST_TIMEOUT);
        match probe_live(&base, deployment_timestamp, request_timeout).await {
            Probe::Fatal(e) => return Err(InfraError::Unhealthy(e)),
            Probe::Retry(e) => last = e,
            Probe::Ok => match probe_ready(&base, request_timeout).await {
                Probe::Ok => return Ok(()),
                Probe::Fatal(e) => return Err(InfraError::Unhealthy(e)),
                Probe::Retry(e) => last = e,
            },
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        tokio::time::sleep(backoff.next().min(remaining)).await;
    }
    Err(InfraError::Timeout(format!(
        "fatman did not become ready within {}: {last}",
        format_duration(timeout)
    )))
}

/// Fibonacci-like pauses: 100, 200, 300, 500, 800 ms ... capped at [`MAX_POLL_INTERVAL`].
#[derive(Debug)]
struct Backoff {
    previous: Duration,
    current: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            previous: Duration::from_millis(100),
            current: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let out = self.current;
        let following = (self.previous + self.current).min(MAX_POLL_INTERVAL);
        self.previous = self.current;
        self.current = following;
        out
    }
}

enum Probe {
    Ok,
    /// Not there yet: try again.
    Retry(String),
    /// A verdict: retrying will not help.
    Fatal(String),
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            // No pooling: probes are rare, and a pooled connection is tied to the runtime that
            // opened it (callers may use several).
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

async fn get(url: &str, timeout: Duration) -> Result<(reqwest::StatusCode, String), String> {
    let response = client()
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| describe_request_error(&e, timeout))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Ok((status, body))
}

async fn probe_live(base: &str, expected_timestamp: Option<i64>, timeout: Duration) -> Probe {
    let (status, body) = match get(&format!("{base}/live"), timeout).await {
        Ok(answer) => answer,
        Err(e) => return Probe::Retry(format!("GET /live: {e}")),
    };
    let json: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    if status == reqwest::StatusCode::OK {
        if let (Some(expected), Some(found)) = (
            expected_timestamp,
            json.as_ref()
                .and_then(|j| j.get("deployment_timestamp"))
                .and_then(json_i64),
        ) {
            if found != expected {
                return Probe::Retry(format!(
                    "GET /live answered for deployment {found}, expected {expected} (an older instance is still answering)"
                ));
            }
        }
        return Probe::Ok;
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        return Probe::Fatal("liveness endpoint not found (GET /live answered 404)".into());
    }
    match json
        .as_ref()
        .and_then(|j| j.get("error"))
        .filter(|e| !e.is_null())
    {
        Some(error) => Probe::Fatal(format!(
            "fatman initialization error: {}",
            error
                .as_str()
                .map(str::to_string)
                .unwrap_or(error.to_string())
        )),
        None => Probe::Fatal(format!(
            "fatman liveness error: GET /live answered {}",
            with_body(status, &body)
        )),
    }
}

async fn probe_ready(base: &str, timeout: Duration) -> Probe {
    match get(&format!("{base}/ready"), timeout).await {
        Err(e) => Probe::Retry(format!("GET /ready: {e}")),
        Ok((reqwest::StatusCode::OK, _)) => Probe::Ok,
        Ok((reqwest::StatusCode::NOT_FOUND, _)) => {
            Probe::Fatal("readiness endpoint not found (GET /ready answered 404)".into())
        }
        Ok((status, body)) => {
            Probe::Retry(format!("GET /ready answered {}", with_body(status, &body)))
        }
    }
}

fn json_i64(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn with_body(status: reqwest::StatusCode, body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return status.to_string();
    }
    let mut snippet: String = body.chars().take(BODY_SNIPPET_CHARS).collect();
    if snippet.len() < body.len() {
        snippet.push('…');
    }
    format!("{status}: {snippet}")
}

fn describe_request_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", format_duration(timeout));
    }
    let mut innermost: &dyn std::error::Error = e;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let detail = innermost.to_string();
    if e.is_connect() {
        if detail.to_ascii_lowercase().contains("refused") {
            "connection refused".into()
        } else {
            format!("cannot connect: {detail}")
        }
    } else {
        detail
    }
}

/// `60s`, `1.5s`, `250ms`.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::default();
        let got: Vec<u128> = (0..9).map(|_| b.next().as_millis()).collect();
        assert_eq!(got, [100, 200, 300, 500, 800, 1300, 2100, 3000, 3000]);
        assert_eq!(b.next(), MAX_POLL_INTERVAL);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_secs(60)), "60s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn timestamps_parse_from_string_or_number() {
        assert_eq!(json_i64(&serde_json::json!("1700000000")), Some(1700000000));
        assert_eq!(json_i64(&serde_json::json!(42)), Some(42));
        assert_eq!(json_i64(&serde_json::json!(null)), None);
    }
}
