//! `POST /twins/{id}/streams/{name}` (and the module form): initiate a device stream.
//!
//! Answers 200 with `iothub-streaming-is-accepted: True|False` (exactly that spelling: C
//! compares strings) plus, when accepted, `iothub-streaming-url` and
//! `iothub-streaming-auth-token`. Errors use Azure's codes: 404 DeviceNotFound,
//! 404 DeviceNotOnline, 504 GatewayTimeout (504101), 429 ThrottlingException.

use std::net::SocketAddr;
use std::time::Duration;

use adit_proto::{DeviceId, ErrorCode, ModuleId, Permissions};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};

use super::auth::Service;
use super::{ApiError, AppState};
use crate::streams::{Initiate, InitiateError, Initiated};

const IS_ACCEPTED: HeaderName = HeaderName::from_static("iothub-streaming-is-accepted");
const URL: HeaderName = HeaderName::from_static("iothub-streaming-url");
const AUTH_TOKEN: HeaderName = HeaderName::from_static("iothub-streaming-auth-token");
/// Adit's own: the protocol the stream is to carry, asked for by the service and, in the
/// answer, agreed by both sides (`adit.stream.v1`, `docs/stream-protocol.md`). Absent from
/// Azure's wire, and no Azure SDK sends it.
const STREAM_PROTOCOL: HeaderName = HeaderName::from_static("adit-stream-protocol");
const CONNECT_TIMEOUT: &str = "iothub-streaming-connect-timeout-in-seconds";
const RESPONSE_TIMEOUT: &str = "iothub-streaming-response-timeout-in-seconds";

/// Reads a stream initiation's timeout header `name`: seconds, possibly fractional (C# formats
/// a TimeSpan's TotalSeconds), at most a day; `None` when absent.
pub fn timeout_header(headers: &HeaderMap, name: &str) -> Result<Option<Duration>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let secs = value
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
        .ok_or_else(|| ApiError::invalid(format!("{name} must be a number of seconds")))?;
    Ok(Some(Duration::from_secs_f64(secs)))
}

#[derive(Debug, serde::Deserialize)]
pub struct VersionQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

pub async fn initiate_device(
    state: State<AppState>,
    caller: Service,
    peer: ConnectInfo<SocketAddr>,
    query: Query<VersionQuery>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    initiate(state, caller, peer, query, id, None, name, headers).await
}

pub async fn initiate_module(
    state: State<AppState>,
    caller: Service,
    peer: ConnectInfo<SocketAddr>,
    query: Query<VersionQuery>,
    Path((id, module, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    initiate(state, caller, peer, query, id, Some(module), name, headers).await
}

#[allow(clippy::too_many_arguments)]
async fn initiate(
    State(state): State<AppState>,
    Service(caller): Service,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<VersionQuery>,
    id: String,
    module: Option<String>,
    name: String,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Permissions::SERVICE_CONNECT)?;
    let api_version = query.api_version;
    let device = DeviceId::new(&id)
        .map_err(|e| ApiError::invalid(format!("invalid device id {id:?}: {e}")))?;
    let module = module
        .map(|m| {
            ModuleId::new(&m)
                .map_err(|e| ApiError::invalid(format!("invalid module id {m:?}: {e}")))
        })
        .transpose()?;
    let request = Initiate {
        device,
        module,
        name,
        connect_timeout: timeout_header(&headers, CONNECT_TIMEOUT)?,
        response_timeout: timeout_header(&headers, RESPONSE_TIMEOUT)?,
        caller: Some(peer.ip()),
        api_version,
        protocol: headers
            .get(&STREAM_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string()),
        policy: Some(caller.policy.clone()),
    };
    let result = state.streams.initiate(request).await.map_err(|e| {
        let code = match &e {
            InitiateError::InvalidName(_) => ErrorCode::ArgumentInvalid,
            InitiateError::Undeliverable(t) => {
                tracing::error!(error = %t, "stream request topic could not be built");
                ErrorCode::ServerError
            }
            InitiateError::Throttled(_) | InitiateError::ThrottledOnNode(_) => {
                ErrorCode::ThrottlingException
            }
            InitiateError::DeviceNotFound(_) => ErrorCode::DeviceNotFound,
            InitiateError::DeviceNotOnline(_)
            | InitiateError::DeviceDisabled(_)
            | InitiateError::DeviceDisconnected(_) => {
                ErrorCode::DeviceNotOnline
            }
            InitiateError::Timeout => ErrorCode::GatewayTimeout,
            InitiateError::Registry(r) => {
                tracing::error!(error = %crate::report::Report(r), "registry failure during stream initiation");
                ErrorCode::ServerError
            }
            InitiateError::Cluster(why) => {
                tracing::error!(error = %why, "cluster failure during stream initiation");
                ErrorCode::ServerError
            }
        };
        ApiError::new(code, e.to_string())
    })?;
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    match result {
        Initiated::Accepted {
            url,
            token,
            protocol,
            ..
        } => {
            h.insert(IS_ACCEPTED, HeaderValue::from_static("True"));
            if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
                h.insert(STREAM_PROTOCOL, p);
            }
            if let (Ok(url), Ok(token)) =
                (HeaderValue::from_str(&url), HeaderValue::from_str(&token))
            {
                h.insert(URL, url);
                h.insert(AUTH_TOKEN, token);
            }
        }
        Initiated::Rejected => {
            h.insert(IS_ACCEPTED, HeaderValue::from_static("False"));
        }
    }
    Ok(response)
}
