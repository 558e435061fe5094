//! Why a device could not take a stream, in terms of what to do next.
//!
//! The hub answers DeviceNotOnline both for a device whose client is not connected and for a
//! disabled one (Azure's code for both). The registry tells them apart, so before giving up
//! the command asks it, when its credentials may read it.

use std::time::Duration;

use adit_service::{Error as ServiceError, RegistryClient};

/// How long the registry lookup may delay the error.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// A sentence saying what to do about `err` when it means the device is not online; `None`
/// for every other error.
pub async fn offline_hint(
    err: &ServiceError,
    registry: Option<&RegistryClient>,
    device: &str,
) -> Option<String> {
    if !matches!(err, ServiceError::DeviceOffline(_)) {
        return None;
    }
    let lookup = async { registry?.get_device(device).await.ok() };
    let found = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
        .await
        .ok()
        .flatten();
    Some(match found {
        Some(d) if d.status.as_deref() == Some("disabled") => format!(
            "device {device} is disabled in the registry; enable it with `adit device set-status {device} enabled`"
        ),
        Some(d) => format!(
            "device {device} is not connected to this hub (connectionState {}, last activity {}): check that its device client (e.g. `adit device-proxy`) is running on the device, and what it logs",
            d.connection_state.as_deref().unwrap_or("unknown"),
            d.last_activity_time.as_deref().unwrap_or("unknown"),
        ),
        None => format!(
            "device {device} is not connected to this hub: check that its device client (e.g. `adit device-proxy`) is running on the device, and what it logs"
        ),
    })
}
