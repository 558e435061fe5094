//! The `Service` extractor: authenticates the caller before a handler runs.

use std::net::SocketAddr;

use adit_proto::{ErrorCode, SasError, remote_text};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::auth::{AuthError, ServiceIdentity, claimed_policy, unix_now};
use crate::throttle::{Blame, Verdict};

/// An authenticated service caller.
#[derive(Debug)]
pub struct Service(pub ServiceIdentity);

impl FromRequestParts<AppState> for Service {
    type Rejection = ApiError;

    /// Checks every token, whatever its address did before: a valid one always passes.
    /// Failures are counted by the REST throttle (its own, not the MQTT one); a throttled
    /// failure is answered 429 after the penalty (see [`crate::throttle`]).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        authenticate(state, source, header, parts.uri.path())
            .await
            .map(Self)
    }
}

/// Authenticates the SAS token in `header`, from `source`, for `path`: as the REST API does,
/// with its throttle, metrics, log line and diagnostics record on failure (the console's
/// sign-in goes through here too).
pub async fn authenticate(
    state: &AppState,
    source: Option<std::net::IpAddr>,
    header: Option<&str>,
    path: &str,
) -> Result<ServiceIdentity, ApiError> {
    let e = match state.auth.authenticate_service(header, unix_now()) {
        Ok(identity) => return Ok(identity),
        Err(e) => e,
    };
    // A failed signature is held against the policy it claims (which exists, or the
    // signature would not have been checked); anything else against the address.
    let policy = match e {
        AuthError::Token(SasError::BadSignature | SasError::Expired) => claimed_policy(header),
        _ => None,
    };
    let blame = policy.as_deref().map_or(Blame::Source, Blame::Identity);
    let verdict = source.map(|ip| state.throttle.record_failure(ip, blame));
    state.metrics.auth_failed("https", e.label());
    let throttled = match verdict {
        Some(Verdict::Throttled { attempts }) => {
            state.metrics.auth_throttled("https", blame.label());
            Some(attempts)
        }
        _ => None,
    };
    if verdict.is_none_or(Verdict::is_reported) {
        tracing::info!(
            source = source.map(tracing::field::display),
            path = %remote_text(path),
            reason = %e,
            throttled,
            "service authentication failed"
        );
        state.diagnostics.auth_failure(
            "https",
            source,
            policy.as_deref(),
            &e.to_string(),
            throttled,
        );
    }
    match verdict {
        Some(verdict) if verdict.is_throttled() => {
            state.throttle.penalize(verdict).await;
            let whose = match blame {
                Blame::Identity(_) => "for this policy ",
                Blame::Source => "",
            };
            Err(ApiError::new(
                ErrorCode::ThrottlingException,
                format!(
                    "too many failed authentication attempts {whose}from this address; \
                         retry later with a valid token"
                ),
            ))
        }
        _ => Err(e.into()),
    }
}
