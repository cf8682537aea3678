//! Lifecycle's application layer: every operation on the registry, each checking its caller's
//! authorization itself, free of HTTP and gRPC (docs/architecture.md, "Lifecycle's layers").
//! An operation takes the caller's identity ([`Caller`]), a database connection (or the shared
//! [`AppState`] when it also talks to infrastructure) and plain inputs, and returns domain values
//! or an [`AppError`]. The REST (`api`) and gRPC (`grpc`) adapters map that error once each.

pub mod accounts;
pub mod audit;
pub mod deployments;
pub mod escs;
pub mod families;
pub mod fatmen;
pub mod permissions;
pub mod subjects;
pub mod supervision;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use racetrack_db::{DbConnection, DbError};
use racetrack_model::version::ResolveError;

pub use permissions::Caller;

use crate::state::AppState;

/// Why a caller was turned away: a short `reason` anyone may see, and `detail` (which subject,
/// which scope or resource) shown only with `AUTH_DEBUG` where the answer goes to a third party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: String,
    pub detail: Option<String>,
}

impl Denial {
    pub fn new(reason: impl Into<String>) -> Denial {
        Denial {
            reason: reason.into(),
            detail: None,
        }
    }

    pub fn with_detail(reason: impl Into<String>, detail: impl Into<String>) -> Denial {
        Denial {
            reason: reason.into(),
            detail: Some(detail.into()),
        }
    }

    /// The reason alone, or with its detail when `debug`.
    pub fn shown(&self, debug: bool) -> String {
        if debug {
            self.to_string()
        } else {
            self.reason.clone()
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// What an operation can fail with, independent of the surface that asked.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// No token, a bad token, a revoked or expired subject.
    #[error("Unauthorized: {0}")]
    Unauthenticated(Denial),
    /// Authenticated, but not allowed.
    #[error("Unauthorized: {0}")]
    Forbidden(Denial),
    #[error("{0}")]
    BadRequest(String),
    /// Semantically invalid input; one entry per problem (`loc`, `msg`).
    #[error("{}", .0.iter().map(|(loc, msg)| if loc.is_empty() { msg.clone() } else { format!("{loc}: {msg}") }).collect::<Vec<_>>().join("; "))]
    Validation(Vec<(String, String)>),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("too many attempts, try again in {} s", .0.as_secs().max(1))]
    TooManyRequests(Duration),
    #[error("{0}")]
    Unavailable(String),
    /// A deployment step failed (build, provisioning); the message is meant for the user.
    #[error("{0}")]
    DeploymentFailed(String),
    /// Details go to the log only, never to a client.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn internal(err: impl fmt::Display) -> AppError {
        AppError::Internal(err.to_string())
    }

    pub fn validation(loc: impl Into<String>, msg: impl Into<String>) -> AppError {
        AppError::Validation(vec![(loc.into(), msg.into())])
    }
}

impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::AlreadyExists(what) => {
                AppError::AlreadyExists(format!("{what} already exists"))
            }
            DbError::Pool(_) | DbError::Connection(_) => {
                tracing::error!(error = %err, "database unavailable");
                AppError::Unavailable("database unavailable".into())
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<racetrack_db::QueryError> for AppError {
    fn from(err: racetrack_db::QueryError) -> Self {
        DbError::from(err).into()
    }
}

impl From<ResolveError> for AppError {
    fn from(err: ResolveError) -> Self {
        match err {
            ResolveError::InvalidVersion(_) => AppError::BadRequest(err.to_string()),
            other => AppError::NotFound(other.to_string()),
        }
    }
}

/// Runs `f` with a pooled connection on tokio's blocking pool (diesel is synchronous), for the
/// operations that also await infrastructure or the image-builder.
pub async fn blocking<T, F>(state: &Arc<AppState>, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &AppState) -> Result<T, AppError> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get()?;
        f(&mut conn, &state)
    })
    .await
    .map_err(AppError::internal)?
}

/// Authenticates `token`, then runs `f` as that caller on the blocking pool.
pub async fn as_caller<T, F>(
    state: &Arc<AppState>,
    token: Option<String>,
    f: F,
) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &AppState, &Caller) -> Result<T, AppError> + Send + 'static,
{
    blocking(state, move |conn, state| {
        let caller = permissions::authenticate(conn, &state.signer, token.as_deref())?;
        f(conn, state, &caller)
    })
    .await
}
