//! Request identifiers: parsing the incoming `X-Request-Id`, generating new
//! ones and handing them to handlers.

use std::convert::Infallible;
use std::fmt;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{ready, Ready};

/// Name of the header that carries the request id, in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest request id accepted from a client.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of the current request.
///
/// [`crate::RequestTelemetry`] stores it in the request extensions, so a
/// handler can simply take it as an argument:
///
/// ```
/// use racetrack_telemetry::RequestId;
///
/// async fn handler(request_id: RequestId) -> String {
///     format!("your request was {request_id}")
/// }
/// # let _ = actix_web::web::get().to(handler);
/// ```
///
/// Forward it as `X-Request-Id` on calls to other Racetrack services so their
/// logs correlate. If the middleware is not installed, extraction still
/// succeeds with a freshly generated id (it just won't match any log line).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

impl RequestId {
    /// A new random (UUID v4) request id.
    pub fn generate() -> Self {
        RequestId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id sent by the client in `X-Request-Id`, if there is exactly a
    /// usable one (see [`is_valid_request_id`]).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(REQUEST_ID_HEADER)?.to_str().ok()?;
        is_valid_request_id(value).then(|| RequestId(value.to_owned()))
    }

    /// The client's id when usable, else a generated one.
    pub fn from_headers_or_generate(headers: &HeaderMap) -> Self {
        Self::from_headers(headers).unwrap_or_else(Self::generate)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromRequest for RequestId {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let id = req.extensions().get::<RequestId>().cloned();
        ready(Ok(id.unwrap_or_else(RequestId::generate)))
    }
}

/// Whether a client-supplied request id may be trusted and echoed:
/// 1 to [`MAX_REQUEST_ID_LEN`] characters from `[A-Za-z0-9._-]`.
///
/// Anything else (too long, spaces, control characters, quotes...) is
/// replaced by a generated id, which keeps log lines and headers well formed.
pub fn is_valid_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    #[test]
    fn validation_rules() {
        assert!(is_valid_request_id("abc-DEF_123.x"));
        assert!(is_valid_request_id(&"a".repeat(MAX_REQUEST_ID_LEN)));
        assert!(!is_valid_request_id(&"a".repeat(MAX_REQUEST_ID_LEN + 1)));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("has space"));
        assert!(!is_valid_request_id("semi;colon"));
        assert!(!is_valid_request_id("new\nline"));
        assert!(!is_valid_request_id("ünïcode"));
        assert!(!is_valid_request_id("a/b"));
    }

    #[test]
    fn from_headers_keeps_valid_and_replaces_invalid() {
        let name = HeaderName::from_static(REQUEST_ID_HEADER);
        let mut headers = HeaderMap::new();
        assert!(RequestId::from_headers(&headers).is_none());

        headers.insert(name.clone(), HeaderValue::from_static("req-42"));
        assert_eq!(
            RequestId::from_headers(&headers).unwrap().as_str(),
            "req-42"
        );

        headers.insert(name, HeaderValue::from_static("bad id"));
        assert!(RequestId::from_headers(&headers).is_none());
        let generated = RequestId::from_headers_or_generate(&headers);
        assert!(uuid::Uuid::parse_str(generated.as_str()).is_ok());
        assert!(is_valid_request_id(generated.as_str()));
    }
}
