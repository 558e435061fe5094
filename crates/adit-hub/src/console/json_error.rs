//! The console API's errors: a status and `{"message": "..."}` (`docs/console.md`), unlike
//! the REST API's Azure-shaped bodies.

use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
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

/// Gives the error answers that are not in the console's shape (axum's own rejections of a
/// malformed body, path, query or upgrade, in plain text) the `{"message"}` shape. Their text
/// is not passed on: a rejected body's text can quote what was sent.
pub async fn uniform(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let message = match status {
        StatusCode::BAD_REQUEST => "the request is malformed",
        StatusCode::METHOD_NOT_ALLOWED => "this console API does not take that method",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "the body must be JSON (Content-Type: application/json)"
        }
        StatusCode::UNPROCESSABLE_ENTITY => "the JSON body does not have the fields this API takes",
        StatusCode::UPGRADE_REQUIRED => "this console API is a WebSocket",
        s if s.is_server_error() => "the hub failed to answer",
        _ => "the request was refused",
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut answer = ConsoleError::new(status, message).into_response();
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}
