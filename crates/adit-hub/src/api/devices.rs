//! `/devices` and `/devices/{id}`: the identity registry, as Azure's REST API.

use adit_proto::identity::Device;
use adit_proto::{DeviceId, Permissions};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Service;
use super::device_body::{parse, to_json};
use super::{ApiError, AppState};
use crate::cluster::registry_changes::RegistryChange;
use crate::registry::{DeviceRecord, IfMatch};

/// Most devices one list call returns, as in Azure.
const MAX_TOP: u32 = 1000;

fn parse_id(raw: &str) -> Result<DeviceId, ApiError> {
    DeviceId::new(raw).map_err(|e| ApiError::invalid(format!("invalid device id {raw:?}: {e}")))
}

fn device_response(d: &DeviceRecord) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", d.etag)).ok();
    let mut response = Json(to_json(d)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// The `If-Match` header of a registry write: `None` when absent, an error when it is not
/// visible ASCII text.
pub fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    headers
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .map(IfMatch::parse)
                .map_err(|_| ApiError::invalid("If-Match is not valid text"))
        })
        .transpose()
}

/// After device `id` was written (`record`) or deleted (`None`): its sessions and streams
/// are judged by the new state, and the other nodes are told. The write is what invalidates:
/// sessions end only once the new state is stored, so a device that reconnects at once is
/// judged by it.
pub(crate) async fn device_changed(state: &AppState, id: &str, record: Option<&DeviceRecord>) {
    crate::revocation::device_changed(&state.presence, &state.streams, id, record);
    if let Some(cluster) = &state.cluster {
        cluster
            .announce(&RegistryChange::Device(id.to_string()))
            .await;
    }
}

pub async fn get(
    State(state): State<AppState>,
    Service(caller): Service,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permissions::REGISTRY_READ)?;
    let id = parse_id(&id)?;
    match state.registry.device(id.as_str()).await? {
        Some(d) => Ok(device_response(&d)),
        None => Err(crate::registry::RegistryError::DeviceNotFound(id.to_string()).into()),
    }
}

pub async fn put(
    State(state): State<AppState>,
    Service(caller): Service,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permissions::REGISTRY_WRITE)?;
    let id = parse_id(&id)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                adit_proto::ErrorCode::MessageTooLarge,
                "request body is too large",
            )
        } else {
            ApiError::invalid(format!("cannot read request body: {e}"))
        }
    })?;
    let spec = parse(&id, &body)?;
    let record = match if_match(&headers)? {
        None => {
            // Only a new identity must meet the current rule: one created before it (with
            // `+`, `#` or `;`) can still be read, updated and deleted.
            id.check_creatable().map_err(|e| {
                ApiError::invalid(format!("invalid device id {:?}: {e}", id.as_str()))
            })?;
            state.registry.create_device(&spec).await?
        }
        Some(cond) => state.registry.update_device(&spec, &cond).await?,
    };
    tracing::info!(device = %id, policy = %caller.policy, "device identity written");
    device_changed(&state, id.as_str(), Some(&record)).await;
    Ok(device_response(&record))
}

pub async fn delete(
    State(state): State<AppState>,
    Service(caller): Service,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    caller.require(Permissions::REGISTRY_WRITE)?;
    let id = parse_id(&id)?;
    let cond = if_match(&headers)?.unwrap_or(IfMatch::Any);
    state.registry.delete_device(id.as_str(), &cond).await?;
    tracing::info!(device = %id, policy = %caller.policy, "device identity deleted");
    device_changed(&state, id.as_str(), None).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    top: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Service(caller): Service,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Device>>, ApiError> {
    caller.require(Permissions::REGISTRY_READ)?;
    let top = match q.top.as_deref() {
        None => MAX_TOP,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(format!(
                    "top must be a number from 1 to {MAX_TOP}"
                )));
            }
        },
    };
    let devices = state.registry.devices(top).await?;
    Ok(Json(devices.iter().map(to_json).collect()))
}
