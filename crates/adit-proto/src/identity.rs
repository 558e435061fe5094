//! The identity registry's JSON model, in Azure's REST shape (`api-version=2021-04-12`).
//!
//! Field names and nesting follow `azure-iot-hub`'s `Device` model. Every field is optional on
//! input so that bodies from any SDK deserialize (C# sends all fields, read-only ones with
//! default values; Python sends only what it sets); unknown fields are ignored.

use serde::{Deserialize, Serialize};

/// A device identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The device id.
    #[serde(default)]
    pub device_id: String,
    /// Distinguishes devices that were deleted and re-created with the same id.
    #[serde(default)]
    pub generation_id: Option<String>,
    /// Changes on every update; `If-Match` compares against it.
    #[serde(default)]
    pub etag: Option<String>,
    /// `Connected` or `Disconnected`.
    #[serde(default)]
    pub connection_state: Option<String>,
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Free text explaining the status.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// When `connectionState` last changed (ISO 8601).
    #[serde(default)]
    pub connection_state_updated_time: Option<String>,
    /// When `status` last changed (ISO 8601).
    #[serde(default)]
    pub status_updated_time: Option<String>,
    /// When the device last connected or sent anything (ISO 8601).
    #[serde(default)]
    pub last_activity_time: Option<String>,
    /// Always 0: Adit has no cloud-to-device queue.
    #[serde(default)]
    pub cloud_to_device_message_count: Option<i64>,
    /// How the device authenticates.
    #[serde(default)]
    pub authentication: Option<Authentication>,
    /// What the device is.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Edge scope (stored, not interpreted).
    #[serde(default)]
    pub device_scope: Option<String>,
    /// Parent edge scopes (stored, not interpreted).
    #[serde(default)]
    pub parent_scopes: Option<Vec<String>>,
}

/// How a device authenticates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// The two symmetric keys, for `sas`.
    #[serde(default)]
    pub symmetric_key: Option<SymmetricKey>,
    /// Certificate thumbprints, for `selfSigned`.
    #[serde(default)]
    pub x509_thumbprint: Option<X509Thumbprint>,
    /// `sas`, `selfSigned`, `certificateAuthority` or `none`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// Primary and secondary symmetric keys (base64).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SymmetricKey {
    /// Primary key.
    #[serde(default)]
    pub primary_key: Option<String>,
    /// Secondary key.
    #[serde(default)]
    pub secondary_key: Option<String>,
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey(MASKED)")
    }
}

/// X.509 certificate thumbprints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct X509Thumbprint {
    /// Primary thumbprint.
    #[serde(default)]
    pub primary_thumbprint: Option<String>,
    /// Secondary thumbprint.
    #[serde(default)]
    pub secondary_thumbprint: Option<String>,
}

/// Device capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// An IoT Edge device.
    #[serde(default)]
    pub iot_edge: bool,
}

/// A shared access policy, in ARM's `SharedAccessSignatureAuthorizationRule` shape.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicy {
    /// Policy name (`skn`).
    pub key_name: String,
    /// Primary key (base64).
    pub primary_key: String,
    /// Secondary key (base64).
    pub secondary_key: String,
    /// Rights, comma-separated: `RegistryRead, ServiceConnect`.
    pub rights: String,
}

impl std::fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPolicy")
            .field("key_name", &self.key_name)
            .field("rights", &self.rights)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_python_sdk_create_body() {
        // What azure-iot-hub 2.7.0 create_device_with_sas(..., None, None, "enabled") sends.
        let body = r#"{"deviceId": "d1", "status": "enabled", "authentication": {"symmetricKey": {}, "type": "sas"}, "capabilities": {"iotEdge": false}}"#;
        let d: Device = serde_json::from_str(body).expect("parses");
        assert_eq!(d.device_id, "d1");
        assert_eq!(d.status.as_deref(), Some("enabled"));
        let auth = d.authentication.expect("present");
        assert_eq!(auth.kind.as_deref(), Some("sas"));
        assert_eq!(auth.symmetric_key, Some(SymmetricKey::default()));
    }

    #[test]
    fn reads_csharp_style_body_with_extras() {
        let body = r#"{"deviceId":"d","generationId":null,"etag":null,"connectionState":"Disconnected","status":"Enabled","statusReason":null,"connectionStateUpdatedTime":"0001-01-01T00:00:00","statusUpdatedTime":"0001-01-01T00:00:00","lastActivityTime":"0001-01-01T00:00:00","cloudToDeviceMessageCount":0,"authentication":{"symmetricKey":{"primaryKey":null,"secondaryKey":null},"x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"type":"sas"},"capabilities":{"iotEdge":false},"deviceScope":null,"parentScopes":[],"somethingNew":1}"#;
        let d: Device = serde_json::from_str(body).expect("parses");
        assert_eq!(d.status.as_deref(), Some("Enabled"));
    }
}
