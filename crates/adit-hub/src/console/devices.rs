//! The console's devices (`docs/console.md`): the list with presence and live streams, one
//! device with its recent stream records, and create, disable/enable and delete, each with
//! the permission the REST API asks for the same thing.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use adit_proto::{DeviceId, Permissions};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ConsoleState;
use super::json_error::ConsoleError;
use super::signed_in::SignedIn;
use crate::api::devices::device_changed;
use crate::diagnostics::{Filter, format_time};
use crate::registry::{DeviceRecord, DeviceStatus, IfMatch, NewDevice};

/// Most devices the list shows.
const MAX_DEVICES: u32 = 10_000;
/// Stream records on a device's page.
const DEVICE_RECORDS: usize = 50;
/// Longest the device pages wait for the registry's count of open streams.
const COUNT_WITHIN: Duration = Duration::from_secs(1);

fn time_of(ms: Option<i64>) -> Value {
    ms.and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| format_time(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)))
        .map_or(Value::Null, Value::String)
}

/// A device as the console shows it; `active` is its streams open now.
pub fn device_json(d: &DeviceRecord, active: usize) -> Value {
    json!({
        "deviceId": d.device_id.as_str(),
        "status": d.status.as_str(),
        "connectionState": d.connection_state.as_str(),
        "lastActivityTime": time_of(d.last_activity_ms.or(d.connection_state_updated_ms)),
        "activeStreams": active,
    })
}

/// Streams open now, per device, on every node (as the registry has them). A registry that
/// cannot say within [`COUNT_WITHIN`] leaves the counts out (0) rather than holding the page:
/// they are a hint.
async fn active_streams(state: &ConsoleState) -> HashMap<String, usize> {
    match tokio::time::timeout(COUNT_WITHIN, state.app.registry.open_streams_per_device()).await {
        Ok(Ok(counts)) => counts,
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::report::Report(&e), "cannot count the open streams per device");
            HashMap::new()
        }
        Err(_) => {
            tracing::warn!(
                "counting the open streams per device took over {COUNT_WITHIN:?}; left out"
            );
            HashMap::new()
        }
    }
}

fn parse_id(raw: &str) -> Result<DeviceId, ConsoleError> {
    DeviceId::new(raw).map_err(|e| {
        ConsoleError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid device id {:?}: {e}", adit_proto::remote_text(raw)),
        )
    })
}

/// `GET /console/api/devices`.
pub async fn list(
    State(state): State<ConsoleState>,
    user: SignedIn,
) -> Result<Json<Value>, ConsoleError> {
    user.require(Permissions::REGISTRY_READ)?;
    let devices = state.app.registry.devices(MAX_DEVICES).await?;
    let active = active_streams(&state).await;
    let list: Vec<Value> = devices
        .iter()
        .map(|d| device_json(d, active.get(d.device_id.as_str()).copied().unwrap_or(0)))
        .collect();
    Ok(Json(json!({ "devices": list })))
}

/// `GET /console/api/devices/{id}`: the device and its latest stream records.
pub async fn get(
    State(state): State<ConsoleState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Value>, ConsoleError> {
    user.require(Permissions::REGISTRY_READ)?;
    let id = parse_id(&id)?;
    let device = state
        .app
        .registry
        .device(id.as_str())
        .await?
        .ok_or_else(|| ConsoleError::new(StatusCode::NOT_FOUND, format!("no device {id}")))?;
    let active = active_streams(&state).await;
    let filter = Filter {
        category: Some("DeviceStreams".into()),
        device: Some(id.to_string()),
        limit: DEVICE_RECORDS,
        ..Filter::default()
    };
    let records = crate::api::diagnostics::cluster_log(&state.app, filter).await?;
    let streams: Vec<Value> = records
        .iter()
        .rev()
        .map(super::streams::log_record)
        .collect();
    Ok(Json(json!({
        "device": device_json(&device, active.get(id.as_str()).copied().unwrap_or(0)),
        "streams": streams,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    device_id: String,
}

/// `POST /console/api/devices`: an enabled device with generated SAS keys.
pub async fn create(
    State(state): State<ConsoleState>,
    user: SignedIn,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ConsoleError> {
    user.require(Permissions::REGISTRY_WRITE)?;
    let id = parse_id(&body.device_id)?;
    id.check_creatable().map_err(|e| {
        ConsoleError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid device id {:?}: {e}", id.as_str()),
        )
    })?;
    let record = state
        .app
        .registry
        .create_device(&NewDevice::enabled_sas(id.clone()))
        .await?;
    tracing::info!(device = %id, policy = %user.policy, "device identity created from the console");
    device_changed(&state.app, id.as_str(), Some(&record)).await;
    Ok((StatusCode::CREATED, Json(device_json(&record, 0))))
}

#[derive(Deserialize)]
pub struct StatusBody {
    status: String,
}

/// `PATCH /console/api/devices/{id}`: enables or disables it (disabling closes its sessions
/// and streams, as through the REST API).
pub async fn set_status(
    State(state): State<ConsoleState>,
    user: SignedIn,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<Json<Value>, ConsoleError> {
    user.require(Permissions::REGISTRY_WRITE)?;
    let id = parse_id(&id)?;
    let status = DeviceStatus::parse(&body.status).ok_or_else(|| {
        ConsoleError::new(
            StatusCode::BAD_REQUEST,
            "status must be enabled or disabled",
        )
    })?;
    let registry = &state.app.registry;
    let current = registry
        .device(id.as_str())
        .await?
        .ok_or_else(|| ConsoleError::new(StatusCode::NOT_FOUND, format!("no device {id}")))?;
    let update = NewDevice {
        device_id: id.clone(),
        status,
        status_reason: current.status_reason.clone(),
        auth: current.auth.clone(),
        iot_edge: current.iot_edge,
        device_scope: current.device_scope.clone(),
        parent_scopes: current.parent_scopes.clone(),
    };
    // Written only over what was read: a change made meanwhile is not overwritten.
    let record = registry
        .update_device(&update, &IfMatch::Etag(current.etag.clone()))
        .await?;
    tracing::info!(device = %id, status = status.as_str(), policy = %user.policy, "device status set from the console");
    device_changed(&state.app, id.as_str(), Some(&record)).await;
    let active = active_streams(&state).await;
    Ok(Json(device_json(
        &record,
        active.get(id.as_str()).copied().unwrap_or(0),
    )))
}

/// `DELETE /console/api/devices/{id}`.
pub async fn delete(
    State(state): State<ConsoleState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<StatusCode, ConsoleError> {
    user.require(Permissions::REGISTRY_WRITE)?;
    let id = parse_id(&id)?;
    state
        .app
        .registry
        .delete_device(id.as_str(), &IfMatch::Any)
        .await?;
    tracing::info!(device = %id, policy = %user.policy, "device identity deleted from the console");
    device_changed(&state.app, id.as_str(), None).await;
    Ok(StatusCode::NO_CONTENT)
}
