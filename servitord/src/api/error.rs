//! The API's one error type: each variant knows its status code, and every error
//! answers `{"message": ...}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use servitor_shared::api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing or malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No such job, execution or path.
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not for this method; the value lists the allowed ones.
    #[error("method not allowed; use {0}")]
    MethodNotAllowed(&'static str),
    /// The request does not fit the current state (e.g. cancelling a finished run).
    #[error("{0}")]
    Conflict(String),
    /// The daemon cannot do it right now; trying again later may work.
    #[error("{0}")]
    Unavailable(String),
    /// Our fault: logged in full, answered in short.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!("internal error: {detail}");
        }
        let body = ErrorBody {
            message: self.to_string(),
        };
        let mut response = (self.status(), super::json(&body)).into_response();
        if let Self::MethodNotAllowed(allowed) = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allowed));
        }
        response
    }
}
