//! The `Service` extractor: authenticates the caller before a handler runs.

use std::net::SocketAddr;

use adit_proto::ErrorCode;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::auth::{ServiceIdentity, unix_now};

/// An authenticated service caller.
#[derive(Debug)]
pub struct Service(pub ServiceIdentity);

impl FromRequestParts<AppState> for Service {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(ip) = source
            && state.throttle.is_blocked(ip)
        {
            return Err(ApiError::new(
                ErrorCode::ThrottlingException,
                "too many failed authentication attempts from this address; retry later",
            ));
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match state.auth.authenticate_service(header, unix_now()) {
            Ok(identity) => Ok(Self(identity)),
            Err(e) => {
                tracing::info!(source = ?source, path = %parts.uri.path(), reason = %e, "service authentication failed");
                if let Some(ip) = source {
                    state.throttle.record_failure(ip);
                }
                state.metrics.auth_failed("https", e.label());
                state
                    .diagnostics
                    .auth_failure("https", source, None, &e.to_string());
                Err(e.into())
            }
        }
    }
}
