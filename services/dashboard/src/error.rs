//! The dashboard's one mapping of failures to responses. Pages show Lifecycle's errors inside
//! themselves (keeping what the user typed); what reaches this is the rest: not signed in, a
//! failed CSRF check, a broken session, or an error outside any page.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::lifecycle::{self, LifecycleError};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in to see this page")]
    SignInRequired { next: String },
    #[error("the form was not sent from this dashboard page or has expired (CSRF check failed): reload the page and try again")]
    Csrf,
    #[error("{0}")]
    Lifecycle(#[from] LifecycleError),
    #[error("{0}")]
    BadRequest(String),
    #[error("you need staff or admin rights for this page")]
    StaffOnly,
    #[error("your session could not be stored: {0}")]
    Session(String),
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignInRequired { .. } => StatusCode::SEE_OTHER,
            PageError::Csrf | PageError::StaffOnly => StatusCode::FORBIDDEN,
            PageError::Lifecycle(e) => lifecycle::http_status(e),
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Session(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::SignInRequired { next } = self {
            let to = format!(
                "/dashboard/accounts/login?next={}",
                racetrack_config::redact::percent_encode(next)
            );
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish();
        }
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(crate::layout::error_page(self.status_code(), &self.to_string()).into_string())
    }
}

/// A script's action failed: `{"error": "..."}` with the matching status.
pub fn json_error(err: &PageError) -> HttpResponse {
    HttpResponse::build(err.status_code()).json(serde_json::json!({ "error": err.to_string() }))
}
