//! Device identities.

use adit_proto::{DeviceId, Key};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore as _;
use sqlx::AnyPool;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::connection_writes::ConnectionWrite;
use super::policies::generate_key;
use super::{Registry, RegistryError, now_ms};

/// Whether a device may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// It may connect.
    Enabled,
    /// It is refused.
    Disabled,
}

impl DeviceStatus {
    /// Azure's spelling: `enabled` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }

    /// Parses `enabled`/`disabled` in any case (C# sends `Enabled`).
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("enabled") {
            Some(Self::Enabled)
        } else if s.eq_ignore_ascii_case("disabled") {
            Some(Self::Disabled)
        } else {
            None
        }
    }
}

/// Whether the device holds a connection to the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connected now.
    Connected,
    /// Not connected.
    Disconnected,
}

impl ConnectionState {
    /// Azure's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "Connected",
            Self::Disconnected => "Disconnected",
        }
    }
}

/// How a device authenticates; for `Sas`, keys left out are generated (on create) or kept
/// (on update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKind {
    /// Symmetric keys.
    Sas {
        /// Primary key.
        primary: Option<Key>,
        /// Secondary key.
        secondary: Option<Key>,
    },
    /// Self-signed X.509 certificates, by thumbprint.
    SelfSigned {
        /// Primary thumbprint.
        primary: Option<String>,
        /// Secondary thumbprint.
        secondary: Option<String>,
    },
    /// X.509 certificates issued by a registered CA.
    CertificateAuthority,
    /// No authentication (a module managed by its device).
    None,
}

impl AuthKind {
    /// Azure's `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Sas { .. } => "sas",
            Self::SelfSigned { .. } => "selfSigned",
            Self::CertificateAuthority => "certificateAuthority",
            Self::None => "none",
        }
    }
}

/// What a create or update request asks for. Updates replace the whole identity, as Azure's
/// PUT does.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// The id.
    pub device_id: DeviceId,
    /// Enabled or disabled.
    pub status: DeviceStatus,
    /// Why.
    pub status_reason: Option<String>,
    /// How it authenticates.
    pub auth: AuthKind,
    /// An IoT Edge device.
    pub iot_edge: bool,
    /// Edge scope, stored as given.
    pub device_scope: Option<String>,
    /// Parent scopes, stored as given.
    pub parent_scopes: Vec<String>,
}

impl NewDevice {
    /// An enabled, non-Edge device whose two SAS keys the registry generates: what
    /// `adit device create ID` makes.
    pub fn enabled_sas(device_id: DeviceId) -> Self {
        Self {
            device_id,
            status: DeviceStatus::Enabled,
            status_reason: None,
            auth: AuthKind::Sas {
                primary: None,
                secondary: None,
            },
            iot_edge: false,
            device_scope: None,
            parent_scopes: Vec::new(),
        }
    }
}

/// An update is a full replacement.
pub type DeviceUpdate = NewDevice;

/// The `If-Match` condition of an update or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*` or `"*"`: any version.
    Any,
    /// Only this etag (without quotes).
    Etag(String),
}

impl IfMatch {
    /// Parses an `If-Match` header value: `*`, `"*"`, `"etag"` or a bare etag.
    pub fn parse(header: &str) -> Self {
        let v = header.trim();
        let v = v.strip_prefix("W/").unwrap_or(v);
        let unquoted = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(v);
        if unquoted == "*" {
            Self::Any
        } else {
            Self::Etag(unquoted.to_string())
        }
    }

    fn allows(&self, etag: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Etag(e) => e == etag,
        }
    }
}

/// A stored device.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    /// The id.
    pub device_id: DeviceId,
    /// Changes when the id is deleted and created again.
    pub generation_id: String,
    /// Changes on every write.
    pub etag: String,
    /// Enabled or disabled.
    pub status: DeviceStatus,
    /// Why.
    pub status_reason: Option<String>,
    /// When the status last changed (Unix ms).
    pub status_updated_ms: i64,
    /// Authentication; for `Sas` both keys are always present.
    pub auth: AuthKind,
    /// An IoT Edge device.
    pub iot_edge: bool,
    /// Edge scope.
    pub device_scope: Option<String>,
    /// Parent scopes.
    pub parent_scopes: Vec<String>,
    /// Connected or not.
    pub connection_state: ConnectionState,
    /// When the connection state last changed (Unix ms).
    pub connection_state_updated_ms: Option<i64>,
    /// When the device last did anything (Unix ms).
    pub last_activity_ms: Option<i64>,
    /// The hub node holding the device's connection, while it is connected.
    pub connection_node: Option<String>,
}

impl DeviceRecord {
    /// The device's symmetric keys, primary first, if it uses SAS.
    pub fn keys(&self) -> Vec<&Key> {
        match &self.auth {
            AuthKind::Sas { primary, secondary } => {
                primary.iter().chain(secondary.iter()).collect()
            }
            _ => Vec::new(),
        }
    }
}

fn new_etag() -> String {
    let mut bytes = [0u8; 9];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD_NO_PAD.encode(bytes)
}

fn new_generation_id() -> String {
    // Azure's generation ids are long decimal numbers; a time-derived one is unique enough per
    // id (a delete and re-create in the same microsecond would need two writes at once).
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("{micros}")
}

// A macro rather than a const so the queries stay `&'static str` (sqlx refuses built strings).
macro_rules! columns {
    () => {
        "device_id, generation_id, etag, status, status_reason, status_updated_ms, auth_type, primary_key, secondary_key, primary_thumbprint, secondary_thumbprint, iot_edge, device_scope, parent_scopes, connection_state, connection_state_updated_ms, last_activity_ms, connection_node"
    };
}

fn from_row(row: &AnyRow) -> Result<DeviceRecord, RegistryError> {
    let id: String = row.try_get("device_id")?;
    let corrupt = |what: &str| RegistryError::Corrupt(id.clone(), what.to_string());
    let key = |col: &str| -> Result<Option<Key>, RegistryError> {
        row.try_get::<Option<String>, _>(col)?
            .map(|k| Key::from_base64(&k).map_err(|_| corrupt(col)))
            .transpose()
    };
    let auth = match row.try_get::<String, _>("auth_type")?.as_str() {
        "sas" => AuthKind::Sas {
            primary: key("primary_key")?,
            secondary: key("secondary_key")?,
        },
        "selfSigned" => AuthKind::SelfSigned {
            primary: row.try_get("primary_thumbprint")?,
            secondary: row.try_get("secondary_thumbprint")?,
        },
        "certificateAuthority" => AuthKind::CertificateAuthority,
        "none" => AuthKind::None,
        _ => return Err(corrupt("auth_type")),
    };
    let parent_scopes = match row.try_get::<Option<String>, _>("parent_scopes")? {
        Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("parent_scopes"))?,
        None => Vec::new(),
    };
    Ok(DeviceRecord {
        device_id: DeviceId::new(id.clone()).map_err(|_| corrupt("device_id"))?,
        generation_id: row.try_get("generation_id")?,
        etag: row.try_get("etag")?,
        status: DeviceStatus::parse(&row.try_get::<String, _>("status")?)
            .ok_or_else(|| corrupt("status"))?,
        status_reason: row.try_get("status_reason")?,
        status_updated_ms: row.try_get("status_updated_ms")?,
        auth,
        iot_edge: row.try_get::<i64, _>("iot_edge")? != 0,
        device_scope: row.try_get("device_scope")?,
        parent_scopes,
        connection_state: if row.try_get::<String, _>("connection_state")? == "Connected" {
            ConnectionState::Connected
        } else {
            ConnectionState::Disconnected
        },
        connection_state_updated_ms: row.try_get("connection_state_updated_ms")?,
        last_activity_ms: row.try_get("last_activity_ms")?,
        connection_node: row.try_get("connection_node")?,
    })
}

/// The columns a create or update writes, resolved from the request.
struct Written {
    auth_type: &'static str,
    primary_key: Option<String>,
    secondary_key: Option<String>,
    primary_thumbprint: Option<String>,
    secondary_thumbprint: Option<String>,
    parent_scopes: Option<String>,
}

fn resolve(spec: &NewDevice, existing: Option<&AuthKind>) -> Written {
    let (mut pk, mut sk, mut pt, mut st) = (None, None, None, None);
    match &spec.auth {
        AuthKind::Sas { primary, secondary } => {
            let (old_p, old_s) = match existing {
                Some(AuthKind::Sas { primary, secondary }) => (primary.clone(), secondary.clone()),
                _ => (None, None),
            };
            let pick = |given: &Option<Key>, old: Option<Key>| {
                given.clone().or(old).unwrap_or_else(generate_key)
            };
            pk = Some(pick(primary, old_p).to_base64().to_string());
            sk = Some(pick(secondary, old_s).to_base64().to_string());
        }
        AuthKind::SelfSigned { primary, secondary } => {
            pt = primary.clone();
            st = secondary.clone();
        }
        AuthKind::CertificateAuthority | AuthKind::None => {}
    }
    Written {
        auth_type: spec.auth.type_name(),
        primary_key: pk,
        secondary_key: sk,
        primary_thumbprint: pt,
        secondary_thumbprint: st,
        parent_scopes: if spec.parent_scopes.is_empty() {
            None
        } else {
            serde_json::to_string(&spec.parent_scopes).ok()
        },
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

async fn device_in(pool: &AnyPool, id: &str) -> Result<Option<DeviceRecord>, RegistryError> {
    sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM devices WHERE device_id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

impl Registry {
    /// Creates a device. Fails with `DeviceAlreadyExists` if the id is taken.
    pub async fn create_device(&self, spec: &NewDevice) -> Result<DeviceRecord, RegistryError> {
        let w = resolve(spec, None);
        let now = now_ms();
        let result = sqlx::query(concat!(
            "INSERT INTO devices (",
            columns!(),
            ", created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(spec.device_id.as_str().to_string())
        .bind(new_generation_id())
        .bind(new_etag())
        .bind(spec.status.as_str())
        .bind(spec.status_reason.clone())
        .bind(now)
        .bind(w.auth_type)
        .bind(w.primary_key)
        .bind(w.secondary_key)
        .bind(w.primary_thumbprint)
        .bind(w.secondary_thumbprint)
        .bind(i64::from(spec.iot_edge))
        .bind(spec.device_scope.clone())
        .bind(w.parent_scopes)
        .bind(ConnectionState::Disconnected.as_str())
        .bind(None::<i64>)
        .bind(None::<i64>)
        .bind(None::<String>)
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(RegistryError::DeviceAlreadyExists(
                    spec.device_id.to_string(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.device_changed(spec.device_id.as_str());
        self.device(spec.device_id.as_str())
            .await?
            .ok_or_else(|| RegistryError::DeviceNotFound(spec.device_id.to_string()))
    }

    /// Replaces a device's settings if `if_match` allows. Connection state is kept.
    pub async fn update_device(
        &self,
        spec: &DeviceUpdate,
        if_match: &IfMatch,
    ) -> Result<DeviceRecord, RegistryError> {
        let id = spec.device_id.as_str();
        let current = self
            .device(id)
            .await?
            .ok_or_else(|| RegistryError::DeviceNotFound(id.to_string()))?;
        if !if_match.allows(&current.etag) {
            return Err(RegistryError::PreconditionFailed(id.to_string()));
        }
        let w = resolve(spec, Some(&current.auth));
        let status_updated = if current.status == spec.status {
            current.status_updated_ms
        } else {
            now_ms()
        };
        // Optimistic concurrency: the write only lands if nobody changed the row since it
        // was read, so two racing updates with the same If-Match cannot both succeed.
        let done = sqlx::query(
            "UPDATE devices SET etag = $1, status = $2, status_reason = $3, status_updated_ms = $4, auth_type = $5, primary_key = $6, secondary_key = $7, primary_thumbprint = $8, secondary_thumbprint = $9, iot_edge = $10, device_scope = $11, parent_scopes = $12 WHERE device_id = $13 AND etag = $14",
        )
        .bind(new_etag())
        .bind(spec.status.as_str())
        .bind(spec.status_reason.clone())
        .bind(status_updated)
        .bind(w.auth_type)
        .bind(w.primary_key)
        .bind(w.secondary_key)
        .bind(w.primary_thumbprint)
        .bind(w.secondary_thumbprint)
        .bind(i64::from(spec.iot_edge))
        .bind(spec.device_scope.clone())
        .bind(w.parent_scopes)
        .bind(id.to_string())
        .bind(current.etag.clone())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(match self.device(id).await? {
                Some(_) => RegistryError::PreconditionFailed(id.to_string()),
                None => RegistryError::DeviceNotFound(id.to_string()),
            });
        }
        self.device_changed(id);
        self.device(id)
            .await?
            .ok_or_else(|| RegistryError::DeviceNotFound(id.to_string()))
    }

    /// One device.
    pub async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, RegistryError> {
        device_in(&self.pool, id).await
    }

    /// One device, read for a device's session (its CONNECT) through the sessions' own
    /// pool, so a fleet connecting at once does not queue ahead of the service API.
    pub async fn device_for_session(
        &self,
        id: &str,
    ) -> Result<Option<DeviceRecord>, RegistryError> {
        device_in(&self.sessions, id).await
    }

    /// Up to `limit` devices, ordered by id.
    pub async fn devices(&self, limit: u32) -> Result<Vec<DeviceRecord>, RegistryError> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM devices ORDER BY device_id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(from_row)
        .collect()
    }

    /// The devices whose connection `node` holds, by the registry.
    pub async fn devices_held_by(&self, node: &str) -> Result<Vec<DeviceRecord>, RegistryError> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM devices WHERE connection_node = $1"
        ))
        .bind(node.to_string())
        .fetch_all(&self.sessions)
        .await?
        .iter()
        .map(from_row)
        .collect()
    }

    /// Deletes a device if `if_match` allows.
    pub async fn delete_device(&self, id: &str, if_match: &IfMatch) -> Result<(), RegistryError> {
        let done = match if_match {
            IfMatch::Any => {
                sqlx::query("DELETE FROM devices WHERE device_id = $1")
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?
            }
            IfMatch::Etag(etag) => {
                sqlx::query("DELETE FROM devices WHERE device_id = $1 AND etag = $2")
                    .bind(id.to_string())
                    .bind(etag.clone())
                    .execute(&self.pool)
                    .await?
            }
        };
        if done.rows_affected() == 1 {
            // Its host key, if the console kept one, went with it (ON DELETE CASCADE).
            self.device_changed(id);
            return Ok(());
        }
        Err(match self.device(id).await? {
            Some(_) => RegistryError::PreconditionFailed(id.to_string()),
            None => RegistryError::DeviceNotFound(id.to_string()),
        })
    }

    /// Records that `node` now holds the device's connection. Does not change the etag.
    /// Committed together with other devices' connection changes waiting at the same time
    /// (see `connection_writes`); returns once committed.
    pub async fn record_connected(&self, id: &str, node: &str) -> Result<(), RegistryError> {
        self.connection_writes
            .apply(ConnectionWrite::Connected {
                id: id.to_string(),
                node: node.to_string(),
                at_ms: now_ms(),
            })
            .await?;
        self.device_changed(id);
        Ok(())
    }

    /// Records that `node`, which another node took for dead (its devices cleared), still
    /// holds the device: unless another node holds it by now. Returns whether the row changed.
    pub async fn record_reclaimed(&self, id: &str, node: &str) -> Result<bool, RegistryError> {
        let rows = self
            .connection_writes
            .apply(ConnectionWrite::Reclaimed {
                id: id.to_string(),
                node: node.to_string(),
                at_ms: now_ms(),
            })
            .await?;
        self.device_changed(id);
        Ok(rows > 0)
    }

    /// Records that the device's connection on `node` ended. A no-op when another node has
    /// taken the device over since (its later connection must not be overwritten). Returns
    /// whether the row changed. Does not change the etag. Committed like
    /// [`Registry::record_connected`].
    pub async fn record_disconnected(&self, id: &str, node: &str) -> Result<bool, RegistryError> {
        let rows = self
            .connection_writes
            .apply(ConnectionWrite::Disconnected {
                id: id.to_string(),
                node: node.to_string(),
                at_ms: now_ms(),
            })
            .await?;
        self.device_changed(id);
        Ok(rows > 0)
    }

    /// At the start of node `node`: every device the registry still shows connected to it is
    /// marked disconnected as of now, because a starting node holds no connection; they are
    /// left over from a crash (a clean stop records each disconnection). Devices connected
    /// with no node recorded (by a hub from before node ids) are cleared too: no running node
    /// can claim them. Other nodes' devices are left alone. Returns how many were cleared.
    pub async fn clear_node_connections(&self, node: &str) -> Result<u64, RegistryError> {
        let done = sqlx::query(
            "UPDATE devices SET connection_state = $1, connection_state_updated_ms = $2, connection_node = NULL WHERE connection_state = $3 AND (connection_node = $4 OR connection_node IS NULL)",
        )
        .bind(ConnectionState::Disconnected.as_str())
        .bind(now_ms())
        .bind(ConnectionState::Connected.as_str())
        .bind(node.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        assert_eq!(IfMatch::parse("*"), IfMatch::Any);
        assert_eq!(IfMatch::parse("\"*\""), IfMatch::Any);
        assert_eq!(IfMatch::parse("\"abc\""), IfMatch::Etag("abc".into()));
        assert_eq!(IfMatch::parse("W/\"abc\""), IfMatch::Etag("abc".into()));
        assert_eq!(IfMatch::parse("abc"), IfMatch::Etag("abc".into()));
    }
}
