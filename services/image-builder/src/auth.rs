//! Who may call the gRPC API: whoever presents the shared internal token (`IMAGE_BUILDER_TOKEN`)
//! in the `x-racetrack-auth` metadata, i.e. the Lifecycle. Everything else gets
//! `UNAUTHENTICATED` before any handler runs: a build runs the caller's Dockerfile on the
//! engine and pushes to the registry, so an open API would hand both to anyone on the host.
//!
//! Rotation: set a new value for both services and restart them (there is one token, no list).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Metadata key carrying the internal token (the Lifecycle's own internal API uses the same).
pub const AUTH_METADATA: &str = "x-racetrack-auth";
/// Shortest token accepted in the configuration.
pub const MIN_TOKEN_LEN: usize = 16;

/// Server side: lets a request through only with the configured token. Without a configured
/// token every request is refused.
#[derive(Clone)]
pub struct RequireToken {
    /// SHA-256 of the token: compared in constant time, and equal lengths whatever is sent.
    expected: Option<[u8; 32]>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl RequireToken {
    pub fn new(token: Option<&str>) -> RequireToken {
        RequireToken {
            expected: token.map(|t| digest(t.as_bytes())),
        }
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Err(Status::unauthenticated(
                "the image builder has no IMAGE_BUILDER_TOKEN configured and refuses every call",
            ));
        };
        let Some(given) = request.metadata().get(AUTH_METADATA) else {
            return Err(Status::unauthenticated(format!(
                "internal token missing in {AUTH_METADATA}"
            )));
        };
        if bool::from(digest(given.as_bytes()).ct_eq(expected)) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("invalid internal token"))
        }
    }
}

/// Client side: adds the token to every request.
#[derive(Clone)]
pub struct SendToken {
    value: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl SendToken {
    /// Fails when the token cannot be a metadata value (non-ASCII or control characters).
    pub fn new(token: &str) -> Result<SendToken, String> {
        let value = token
            .parse()
            .map_err(|_| "the internal token has characters metadata cannot carry".to_string())?;
        Ok(SendToken { value: Some(value) })
    }

    /// Sends no token (for tests of the refusal).
    pub fn none() -> SendToken {
        SendToken { value: None }
    }
}

impl Interceptor for SendToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.value {
            request.metadata_mut().insert(AUTH_METADATA, value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(token: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(t) = token {
            request
                .metadata_mut()
                .insert(AUTH_METADATA, t.parse().unwrap());
        }
        request
    }

    #[test]
    fn only_the_configured_token_passes() {
        let mut check = RequireToken::new(Some("a-long-internal-token"));
        assert!(check.call(with(Some("a-long-internal-token"))).is_ok());
        for token in [None, Some(""), Some("a-long-internal-tokeN"), Some("x")] {
            let err = check.call(with(token)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{token:?}");
        }
        let mut unconfigured = RequireToken::new(None);
        let err = unconfigured.call(with(Some("anything"))).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn the_client_side_adds_the_token() {
        let mut send = SendToken::new("a-long-internal-token").unwrap();
        let request = send.call(Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get(AUTH_METADATA).unwrap(),
            "a-long-internal-token"
        );
        assert!(SendToken::new("bad\ntoken").is_err());
    }
}
