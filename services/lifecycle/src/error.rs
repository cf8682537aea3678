//! The one place where errors become HTTP statuses. Bodies keep the original's shape
//! `{"error": "<message>", "type": "<kind>"}`; request validation errors also carry FastAPI's
//! `detail` list so clients written for either shape understand them.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use racetrack_db::DbError;

use crate::app::AppError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// Authentication failed: no token, bad token, revoked subject.
    #[error("Unauthorized: {0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed.
    #[error("Unauthorized: {0}")]
    Forbidden(String),
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
    /// Details go to the log only, never to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(err.to_string())
    }

    pub fn validation(loc: impl Into<String>, msg: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![(loc.into(), msg.into())])
    }

    fn type_name(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "EntityNotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Unauthenticated(_) | ApiError::Forbidden(_) => "UnauthorizedError",
            ApiError::BadRequest(_) => "ValueError",
            ApiError::Validation(_) => "ValidationError",
            ApiError::PayloadTooLarge(_) => "PayloadTooLarge",
            ApiError::TooManyRequests(_) => "TooManyRequests",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::DeploymentFailed(_) => "DeploymentError",
            ApiError::Internal(_) => "InternalError",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists(_) => StatusCode::CONFLICT,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::DeploymentFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(details) = self {
            tracing::error!(error = %details, "request failed");
        }
        let mut body = json!({"error": self.to_string(), "type": self.type_name()});
        if let ApiError::Validation(problems) = self {
            body["detail"] = problems
                .iter()
                .map(|(loc, msg)| {
                    json!({"loc": loc.split('.').filter(|s| !s.is_empty()).collect::<Vec<_>>(), "msg": msg, "type": "value_error"})
                })
                .collect();
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::TooManyRequests(retry) = self {
            resp.insert_header((header::RETRY_AFTER, retry.as_secs().max(1).to_string()));
        }
        resp.json(body)
    }
}

/// The one mapping of the application layer's errors to REST answers (status, `type`, message).
impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::NotFound(m) => ApiError::NotFound(m),
            AppError::AlreadyExists(m) => ApiError::AlreadyExists(m),
            AppError::Unauthenticated(d) => ApiError::Unauthenticated(d.to_string()),
            AppError::Forbidden(d) => ApiError::Forbidden(d.to_string()),
            AppError::BadRequest(m) => ApiError::BadRequest(m),
            AppError::Validation(problems) => ApiError::Validation(problems),
            AppError::PayloadTooLarge(m) => ApiError::PayloadTooLarge(m),
            AppError::TooManyRequests(retry) => ApiError::TooManyRequests(retry),
            AppError::Unavailable(m) => ApiError::Unavailable(m),
            AppError::DeploymentFailed(m) => ApiError::DeploymentFailed(m),
            AppError::Internal(details) => ApiError::Internal(details),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        AppError::from(err).into()
    }
}

/// Maps actix's JSON/path/query extractor failures to our error shape.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("request body is larger than {limit} bytes"))
        }
        E::ContentType => {
            ApiError::BadRequest("expected a JSON body (Content-Type: application/json)".into())
        }
        E::Deserialize(e) if e.is_data() => ApiError::validation("body", e.to_string()),
        E::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON body: {e}")),
        other => ApiError::BadRequest(format!("unreadable request body: {other}")),
    };
    api.into()
}

pub fn path_error(err: actix_web::error::PathError) -> actix_web::Error {
    ApiError::validation("path", err.to_string()).into()
}

pub fn query_error(err: actix_web::error::QueryPayloadError) -> actix_web::Error {
    ApiError::validation("query", err.to_string()).into()
}
