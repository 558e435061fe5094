//! Conversion between the registry's records and Azure's device JSON.

use adit_proto::identity::{Authentication, Capabilities, Device, SymmetricKey, X509Thumbprint};
use adit_proto::{DeviceId, Key};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ApiError;
use crate::registry::{AuthKind, DeviceRecord, DeviceStatus, NewDevice};

/// What Azure reports for a time that never happened.
const NEVER: &str = "0001-01-01T00:00:00Z";
const MAX_STATUS_REASON: usize = 128;
const MAX_SCOPE: usize = 1024;
const MAX_PARENT_SCOPES: usize = 10;
const MAX_THUMBPRINT: usize = 128;

fn format_ms(ms: Option<i64>) -> String {
    ms.and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| NEVER.to_string())
}

/// The JSON Azure returns for a device.
pub fn to_json(d: &DeviceRecord) -> Device {
    let (symmetric_key, thumbprint) = match &d.auth {
        AuthKind::Sas { primary, secondary } => (
            SymmetricKey {
                primary_key: primary.as_ref().map(|k| k.to_base64().to_string()),
                secondary_key: secondary.as_ref().map(|k| k.to_base64().to_string()),
            },
            X509Thumbprint::default(),
        ),
        AuthKind::SelfSigned { primary, secondary } => (
            SymmetricKey::default(),
            X509Thumbprint {
                primary_thumbprint: primary.clone(),
                secondary_thumbprint: secondary.clone(),
            },
        ),
        AuthKind::CertificateAuthority | AuthKind::None => {
            (SymmetricKey::default(), X509Thumbprint::default())
        }
    };
    Device {
        device_id: d.device_id.to_string(),
        generation_id: Some(d.generation_id.clone()),
        etag: Some(d.etag.clone()),
        connection_state: Some(d.connection_state.as_str().to_string()),
        status: Some(d.status.as_str().to_string()),
        status_reason: d.status_reason.clone(),
        connection_state_updated_time: Some(format_ms(d.connection_state_updated_ms)),
        status_updated_time: Some(format_ms(Some(d.status_updated_ms))),
        last_activity_time: Some(format_ms(d.last_activity_ms)),
        cloud_to_device_message_count: Some(0),
        authentication: Some(Authentication {
            symmetric_key: Some(symmetric_key),
            x509_thumbprint: Some(thumbprint),
            kind: Some(d.auth.type_name().to_string()),
        }),
        capabilities: Some(Capabilities {
            iot_edge: d.iot_edge,
        }),
        device_scope: d.device_scope.clone(),
        parent_scopes: Some(d.parent_scopes.clone()),
    }
}

fn optional_key(value: Option<&String>, which: &str) -> Result<Option<Key>, ApiError> {
    match value.map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => Key::from_base64(s)
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("authentication.symmetricKey.{which}: {e}"))),
    }
}

fn bounded(value: Option<String>, max: usize, field: &str) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.len() > max => Err(ApiError::invalid(format!(
            "{field} is longer than {max} characters"
        ))),
        other => Ok(other),
    }
}

/// Decodes and validates the JSON body of `PUT /devices/{id}` for the device at `path_id`:
/// everything the handler does with remote bytes before the registry sees them.
pub fn parse(path_id: &DeviceId, body: &[u8]) -> Result<NewDevice, ApiError> {
    let device: Device = serde_json::from_slice(body).map_err(|e| {
        let e = super::error::body_error(&e);
        ApiError::invalid(format!("request body is not a valid device: {e}"))
    })?;
    from_json(path_id, device)
}

/// Validates a PUT body for the device at `path_id`.
pub fn from_json(path_id: &DeviceId, body: Device) -> Result<NewDevice, ApiError> {
    if !body.device_id.is_empty() && body.device_id != path_id.as_str() {
        return Err(ApiError::invalid(format!(
            "deviceId {:?} in the body does not match {:?} in the URL",
            body.device_id,
            path_id.as_str()
        )));
    }
    let status = match body.status.as_deref() {
        None | Some("") => DeviceStatus::Enabled,
        Some(s) => DeviceStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(format!("status must be enabled or disabled, not {s:?}"))
        })?,
    };
    let auth = body.authentication.unwrap_or_default();
    let kind = auth.kind.as_deref().unwrap_or("sas");
    let auth = if kind.eq_ignore_ascii_case("sas") {
        let keys = auth.symmetric_key.unwrap_or_default();
        AuthKind::Sas {
            primary: optional_key(keys.primary_key.as_ref(), "primaryKey")?,
            secondary: optional_key(keys.secondary_key.as_ref(), "secondaryKey")?,
        }
    } else if kind.eq_ignore_ascii_case("selfSigned") {
        let t = auth.x509_thumbprint.unwrap_or_default();
        let primary = bounded(t.primary_thumbprint, MAX_THUMBPRINT, "primaryThumbprint")?;
        if primary.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                "selfSigned authentication needs x509Thumbprint.primaryThumbprint",
            ));
        }
        AuthKind::SelfSigned {
            primary,
            secondary: bounded(
                t.secondary_thumbprint,
                MAX_THUMBPRINT,
                "secondaryThumbprint",
            )?,
        }
    } else if kind.eq_ignore_ascii_case("certificateAuthority") {
        AuthKind::CertificateAuthority
    } else if kind.eq_ignore_ascii_case("none") {
        AuthKind::None
    } else {
        return Err(ApiError::invalid(format!(
            "authentication.type must be sas, selfSigned, certificateAuthority or none, not {kind:?}"
        )));
    };
    let parent_scopes = body.parent_scopes.unwrap_or_default();
    if parent_scopes.len() > MAX_PARENT_SCOPES || parent_scopes.iter().any(|s| s.len() > MAX_SCOPE)
    {
        return Err(ApiError::invalid("parentScopes is too large"));
    }
    Ok(NewDevice {
        device_id: path_id.clone(),
        status,
        status_reason: bounded(body.status_reason, MAX_STATUS_REASON, "statusReason")?,
        auth,
        iot_edge: body.capabilities.is_some_and(|c| c.iot_edge),
        device_scope: bounded(body.device_scope, MAX_SCOPE, "deviceScope")?,
        parent_scopes,
    })
}
