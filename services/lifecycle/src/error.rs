//! The one place where errors become HTTP statuses. Bodies keep the original's shape
//! `{"error": "<message>", "type": "<kind>"}`; request validation errors also carry FastAPI's
//! `detail` list so clients written for either shape understand them.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use racetrack_db::DbError;

use crate::app::AppError;

/// An application error on its way to a REST client: the status, `type` and body are decided
/// here, once, from [`AppError`] (docs/architecture.md, "Lifecycle's layers").
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub AppError);

impl ApiError {
    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        ApiError(AppError::Internal(err.to_string()))
    }

    pub fn validation(loc: impl Into<String>, msg: impl Into<String>) -> ApiError {
        ApiError(AppError::Validation(vec![(loc.into(), msg.into())]))
    }

    fn type_name(&self) -> &'static str {
        match &self.0 {
            AppError::NotFound(_) => "EntityNotFound",
            AppError::AlreadyExists(_) => "AlreadyExists",
            AppError::Unauthenticated(_) | AppError::Forbidden(_) => "UnauthorizedError",
            AppError::BadRequest(_) => "ValueError",
            AppError::Validation(_) => "ValidationError",
            AppError::PayloadTooLarge(_) => "PayloadTooLarge",
            AppError::TooManyRequests(_) => "TooManyRequests",
            AppError::Unavailable(_) => "ServiceUnavailable",
            AppError::DeploymentFailed(_) => "DeploymentError",
            AppError::Internal(_) => "InternalError",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::AlreadyExists(_) => StatusCode::CONFLICT,
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::DeploymentFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(details) = &self.0 {
            tracing::error!(error = %details, "request failed");
        }
        let mut body = json!({"error": self.to_string(), "type": self.type_name()});
        if let AppError::Validation(problems) = &self.0 {
            body["detail"] = problems
                .iter()
                .map(|(loc, msg)| {
                    json!({"loc": loc.split('.').filter(|s| !s.is_empty()).collect::<Vec<_>>(), "msg": msg, "type": "value_error"})
                })
                .collect();
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let AppError::TooManyRequests(retry) = &self.0 {
            resp.insert_header((header::RETRY_AFTER, retry.as_secs().max(1).to_string()));
        }
        resp.json(body)
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
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError(
            AppError::PayloadTooLarge(format!("request body is larger than {limit} bytes")),
        ),
        E::ContentType => ApiError(AppError::BadRequest(
            "expected a JSON body (Content-Type: application/json)".into(),
        )),
        E::Deserialize(e) if e.is_data() => ApiError::validation("body", e.to_string()),
        E::Deserialize(e) => ApiError(AppError::BadRequest(format!("malformed JSON body: {e}"))),
        other => ApiError(AppError::BadRequest(format!(
            "unreadable request body: {other}"
        ))),
    };
    api.into()
}

pub fn path_error(err: actix_web::error::PathError) -> actix_web::Error {
    ApiError::validation("path", err.to_string()).into()
}

pub fn query_error(err: actix_web::error::QueryPayloadError) -> actix_web::Error {
    ApiError::validation("query", err.to_string()).into()
}
