//! The dashboard's side of Lifecycle's `Dashboard` gRPC API (`proto/dashboard.proto`;
//! docs/architecture.md, "The dashboard"). Every call carries the signed-in user's own token, so
//! Lifecycle authorizes each action exactly as it would on its REST API; the dashboard holds no
//! privileged token and no database connection.

use std::future::Future;
use std::time::Duration;

use racetrack_proto::dashboard::dashboard_client::DashboardClient;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

/// Metadata key carrying the user's token.
pub const AUTH_METADATA: &str = "x-racetrack-auth";

/// Why a call to Lifecycle failed, in words fit for the page it came from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LifecycleError {
    #[error("Lifecycle is unreachable right now ({0}); try again in a moment")]
    Unreachable(String),
    /// Lifecycle refused or failed; its message is written for users.
    #[error("{message}")]
    Refused { code: Code, message: String },
}

impl LifecycleError {
    /// A failed call (or a failed message of a stream) in the dashboard's terms.
    pub fn of(status: Status) -> LifecycleError {
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                LifecycleError::Unreachable(status.message().to_string())
            }
            code => LifecycleError::Refused {
                code,
                message: if status.message().is_empty() {
                    format!("Lifecycle answered {code:?}")
                } else {
                    status.message().to_string()
                },
            },
        }
    }

    /// The user's token is no longer accepted (revoked, regenerated): sign in again.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            LifecycleError::Refused {
                code: Code::Unauthenticated,
                ..
            }
        )
    }

    pub fn code(&self) -> Option<Code> {
        match self {
            LifecycleError::Refused { code, .. } => Some(*code),
            LifecycleError::Unreachable(_) => None,
        }
    }
}

#[derive(Clone)]
pub struct Lifecycle {
    client: DashboardClient<Channel>,
    timeout: Duration,
}

impl Lifecycle {
    /// Connects lazily: the dashboard starts (and shows an error on its pages) while Lifecycle
    /// is down.
    pub fn new(url: &str, timeout: Duration) -> Result<Lifecycle, String> {
        let channel = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("invalid LIFECYCLE_GRPC_URL {url:?}: {e}"))?
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Lifecycle {
            // Logs and listings of 1,000 fatmen are larger than tonic's 4 MiB default.
            client: DashboardClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
            timeout,
        })
    }

    /// Calls one RPC as the user holding `token` (`None`: the unauthenticated Register/Login),
    /// with the timeout and the current trace context.
    ///
    /// `lifecycle.call(token, msg, |mut c, r| async move { c.get_fatman(r).await })`
    pub async fn call<T, R, F, Fut>(
        &self,
        token: Option<&str>,
        message: T,
        rpc: F,
    ) -> Result<R, LifecycleError>
    where
        F: FnOnce(DashboardClient<Channel>, Request<T>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let request = self.request(token, message)?;
        rpc(self.client.clone(), request)
            .await
            .map(Response::into_inner)
            .map_err(LifecycleError::of)
    }

    /// A streaming call's request: no overall timeout (the stream lives as long as the page).
    pub fn stream_request<T>(&self, token: &str, message: T) -> Result<Request<T>, LifecycleError> {
        let mut request = Request::new(message);
        set_token(&mut request, Some(token))?;
        racetrack_telemetry::inject_grpc(&mut request);
        Ok(request)
    }

    pub fn client(&self) -> DashboardClient<Channel> {
        self.client.clone()
    }

    fn request<T>(&self, token: Option<&str>, message: T) -> Result<Request<T>, LifecycleError> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        set_token(&mut request, token)?;
        racetrack_telemetry::inject_grpc(&mut request);
        Ok(request)
    }
}

fn set_token<T>(request: &mut Request<T>, token: Option<&str>) -> Result<(), LifecycleError> {
    if let Some(token) = token {
        let value = MetadataValue::try_from(token).map_err(|_| LifecycleError::Refused {
            code: Code::Unauthenticated,
            message: "the session's token is malformed: sign in again".into(),
        })?;
        request.metadata_mut().insert(AUTH_METADATA, value);
    }
    Ok(())
}

/// `Lifecycle`'s errors as the status the dashboard answers with (JSON actions, streams).
pub fn http_status(err: &LifecycleError) -> actix_web::http::StatusCode {
    use actix_web::http::StatusCode as S;
    match err.code() {
        None => S::SERVICE_UNAVAILABLE,
        Some(Code::Unauthenticated) => S::UNAUTHORIZED,
        Some(Code::PermissionDenied) => S::FORBIDDEN,
        Some(Code::NotFound) => S::NOT_FOUND,
        Some(Code::InvalidArgument) | Some(Code::FailedPrecondition) => S::BAD_REQUEST,
        Some(Code::AlreadyExists) | Some(Code::Aborted) => S::CONFLICT,
        Some(Code::ResourceExhausted) => S::TOO_MANY_REQUESTS,
        Some(_) => S::BAD_GATEWAY,
    }
}
