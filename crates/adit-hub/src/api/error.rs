//! Azure-shaped error responses.

use adit_proto::error_code::ERROR_CODE_HEADER;
use adit_proto::{ErrorBody, ErrorCode};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::registry::RegistryError;

/// An error answered with Azure's status, `iothub-errorcode` header and JSON body.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// 400 ArgumentInvalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ArgumentInvalid, message)
    }

    /// The Azure code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message, as the caller reads it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let tracking_id = uuid::Uuid::new_v4().simple().to_string();
        // Messages may quote what the caller sent: escaped and bounded in the log.
        let logged = adit_proto::remote_text(&self.message);
        if status.is_server_error() {
            tracing::error!(code = self.code.name(), %tracking_id, "{logged}");
        } else {
            tracing::debug!(code = self.code.name(), %tracking_id, "{logged}");
        }
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let body = ErrorBody::new(self.code, self.message, tracking_id, now).to_json();
        (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                ),
                (
                    header::HeaderName::from_static(ERROR_CODE_HEADER),
                    HeaderValue::from_static(self.code.name()),
                ),
            ],
            body,
        )
            .into_response()
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let code = match &e {
            RegistryError::DeviceNotFound(_) => ErrorCode::DeviceNotFound,
            RegistryError::DeviceAlreadyExists(_) => ErrorCode::DeviceAlreadyExists,
            RegistryError::PolicyNotFound(_) => ErrorCode::NotFound,
            RegistryError::PreconditionFailed(_) => ErrorCode::PreconditionFailed,
            RegistryError::Database(_) | RegistryError::Migrate(_) | RegistryError::Corrupt(..) => {
                // Never leak database details to the caller; they are logged in full.
                tracing::error!(error = %crate::report::Report(&e), "registry failure");
                return Self::new(ErrorCode::ServerError, "internal registry error");
            }
        };
        Self::new(code, e.to_string())
    }
}

/// A JSON body that did not deserialize, described without the values serde quotes (a key
/// sent where an object belongs would otherwise come back in the answer and the log).
pub fn body_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            // serde prints a string value as "...", with \" and \\ escaped inside.
            let mut escaped = false;
            for c in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    _ => escaped = false,
                }
            }
            out.push_str("(a value)");
        } else {
            out.push(c);
        }
    }
    out
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Registry(r) => r.into(),
            other => Self::new(
                ErrorCode::IotHubUnauthorizedAccess,
                format!("Unauthorized: {other}"),
            ),
        }
    }
}

/// Azure refuses requests without `api-version`; so does Adit (any value is accepted).
pub async fn require_api_version(request: Request, next: Next) -> Response {
    let has_version = request.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|p| p.starts_with("api-version=") && p.len() > "api-version=".len())
    });
    if has_version {
        next.run(request).await
    } else {
        ApiError::invalid("the api-version query parameter is required").into_response()
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this endpoint",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors_never_quote_values() {
        #[derive(Debug, serde::Deserialize)]
        struct Keys {
            #[serde(rename = "primaryKey")]
            _primary_key: String,
        }
        let secret = "c2VjcmV0IGtleSBcIiB3aXRoIGEgcXVvdGU=";
        for body in [
            format!(r#"{{"primaryKey": {{"nested": "{secret}"}}}}"#),
            format!(r#"{{"primaryKey": 1, "x": "{secret}"}}"#),
            format!(r#""{secret}\"more\\""#),
        ] {
            let e = serde_json::from_str::<Keys>(&body).expect_err("not Keys");
            let shown = body_error(&e);
            assert!(!shown.contains("c2VjcmV0"), "{shown}");
            assert!(shown.contains("line 1"), "{shown}");
        }
    }
}
