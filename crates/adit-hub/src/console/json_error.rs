//! The console API's errors: a status and `{"message": "..."}` (`docs/console.md`), unlike
//! the REST API's Azure-shaped bodies.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer of the console API.
#[derive(Debug)]
pub struct ConsoleError {
    status: StatusCode,
    message: String,
}

impl ConsoleError {
    /// `status` with `message` (shown to the user as it is: no secrets in it).
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 401: not signed in, or the session ended.
    pub fn signed_out() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "sign in to use the console")
    }
}

impl From<crate::api::ApiError> for ConsoleError {
    fn from(e: crate::api::ApiError) -> Self {
        let status = StatusCode::from_u16(e.code().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, e.message().to_string())
    }
}

impl From<crate::registry::RegistryError> for ConsoleError {
    fn from(e: crate::registry::RegistryError) -> Self {
        crate::api::ApiError::from(e).into()
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "message": self.message }));
        (self.status, body).into_response()
    }
}

/// Unknown API paths.
pub async fn not_found() -> ConsoleError {
    ConsoleError::new(StatusCode::NOT_FOUND, "no such console API")
}
