//! Every way a call can fail, mapped once to a status and a JSON body that says which hop failed.

use http::StatusCode;
use serde_json::json;

use crate::access::AccessError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// Lifecycle could not be asked: fail closed.
    #[error("{0}")]
    Lifecycle(String),
    /// The fatman has no address (lost, never started).
    #[error("{0}")]
    FatmanUnavailable(String),
    #[error("cannot connect to the fatman: {0}")]
    Connect(String),
    #[error("the fatman did not answer within {0} s")]
    Timeout(u64),
    #[error("the fatman's response was broken: {0}")]
    Upstream(String),
}

impl From<AccessError> for ProxyError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::NotFound(m) => ProxyError::NotFound(m),
            AccessError::Lifecycle(m) => ProxyError::Lifecycle(m),
        }
    }
}

/// What the error body says about the fatman, when PUB got that far.
#[derive(Default)]
pub struct FatmanContext<'a> {
    pub name: Option<&'a str>,
    pub version: Option<&'a str>,
    pub status: Option<&'a str>,
}

/// [`FatmanContext`] for refusals decided away from the data they describe.
pub struct OwnedContext {
    pub name: String,
    pub version: String,
    pub status: Option<String>,
}

impl OwnedContext {
    pub fn borrowed(&self) -> FatmanContext<'_> {
        FatmanContext {
            name: Some(&self.name),
            version: Some(&self.version),
            status: self.status.as_deref(),
        }
    }
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::NotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ProxyError::Forbidden(_) => StatusCode::FORBIDDEN,
            ProxyError::Lifecycle(_) | ProxyError::FatmanUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Connect(_) | ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The hop that failed: `pub` (the request itself), `auth`, `lifecycle` or `fatman`.
    pub fn hop(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) | ProxyError::NotFound(_) | ProxyError::MethodNotAllowed => {
                "pub"
            }
            ProxyError::Unauthenticated(_) | ProxyError::Forbidden(_) => "auth",
            ProxyError::Lifecycle(_) => "lifecycle",
            ProxyError::FatmanUnavailable(_)
            | ProxyError::Connect(_)
            | ProxyError::Timeout(_)
            | ProxyError::Upstream(_) => "fatman",
        }
    }

    /// The JSON body of the refusal.
    pub fn body(&self, request_id: &str, fatman: &FatmanContext<'_>) -> String {
        // The original's prefixes: "Reverse proxy error" once the fatman was reached for.
        let prefix = match self.hop() {
            "fatman" => "Reverse proxy error",
            _ => "Proxy request error",
        };
        let mut body = json!({
            "error": format!("{prefix}: {self}"),
            "status": self.status().canonical_reason().unwrap_or(""),
            "hop": self.hop(),
            "requestId": request_id,
        });
        if let Some(n) = fatman.name {
            body["fatmanName"] = json!(n);
        }
        if let Some(v) = fatman.version {
            body["fatmanVersion"] = json!(v);
        }
        if let Some(s) = fatman.status {
            body["fatmanStatus"] = json!(s);
        }
        body.to_string()
    }
}
