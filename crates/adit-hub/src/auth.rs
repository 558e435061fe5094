//! Authentication of services and devices by SAS token.
//!
//! Every endpoint goes through [`Authenticator`], which goes through the one SAS verifier in
//! `adit-proto`: parse, check the audience names this hub, find the key(s), verify in
//! constant time. Policies are cached in memory because every REST call needs them and they
//! change only through the registry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use adit_proto::topic::ClientId;
use adit_proto::{Key, Permissions, SasError, SasToken, remote_text};

use subtle::ConstantTimeEq as _;

use crate::registry::{PolicyRecord, Registry, RegistryError};

/// Why a request was not authenticated or not authorized. The text is safe to send back.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing Authorization header")]
    Missing,
    /// The token is malformed, expired or wrongly signed.
    #[error(transparent)]
    Token(#[from] SasError),
    /// The token is for another hub. (Remote text, printed escaped and bounded.)
    #[error("token audience {:?} is not this hub", remote_text(.0))]
    WrongAudience(String),
    /// The token does not name a policy (`skn`), so it cannot be a service token.
    #[error("token has no policy name (skn); service endpoints need a shared access policy token")]
    NotAPolicyToken,
    /// No policy with that name. (Remote text, printed escaped and bounded.)
    #[error("unknown shared access policy {:?}", remote_text(.0))]
    UnknownPolicy(String),
    /// The policy lacks a right the operation needs.
    #[error("policy {policy:?} lacks the {needed} permission")]
    Forbidden {
        /// The policy used.
        policy: String,
        /// What was needed.
        needed: Permissions,
    },
    /// The token is not for the identity that is connecting.
    #[error("token is not for {0}")]
    WrongIdentity(String),
    /// No device with that id.
    #[error("device {0} is not registered")]
    UnknownDevice(String),
    /// The device is disabled.
    #[error("device {0} is disabled")]
    DeviceDisabled(String),
    /// The device does not authenticate with symmetric keys.
    #[error("device {0} does not use SAS authentication")]
    NotSasDevice(String),
    /// The registry failed while looking up keys.
    #[error("registry unavailable")]
    Registry(#[from] RegistryError),
}

impl AuthError {
    /// A short, bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Token(SasError::Expired) => "expired",
            Self::Token(SasError::BadSignature) => "bad_signature",
            Self::Token(_) => "malformed",
            Self::WrongAudience(_) => "wrong_audience",
            Self::NotAPolicyToken => "not_a_policy_token",
            Self::UnknownPolicy(_) => "unknown_policy",
            Self::Forbidden { .. } => "forbidden",
            Self::WrongIdentity(_) => "wrong_identity",
            Self::UnknownDevice(_) => "unknown_device",
            Self::DeviceDisabled(_) => "device_disabled",
            Self::NotSasDevice(_) => "not_sas_device",
            Self::Registry(_) => "registry_error",
        }
    }
}

/// The shared access policy a service token claims (its `skn`), if it parses: what a failed
/// signature is held against.
pub fn claimed_policy(header: Option<&str>) -> Option<String> {
    let token = SasToken::parse(header?).ok()?;
    token.key_name().map(str::to_string)
}

/// A successfully authenticated service caller.
#[derive(Debug, Clone)]
pub struct ServiceIdentity {
    /// The policy the token was signed with.
    pub policy: String,
    /// What it may do.
    pub rights: Permissions,
}

impl ServiceIdentity {
    /// Fails with [`AuthError::Forbidden`] unless every right in `needed` is granted.
    pub fn require(&self, needed: Permissions) -> Result<(), AuthError> {
        if self.rights.contains(needed) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                policy: self.policy.clone(),
                needed,
            })
        }
    }
}

/// An authenticated device connection.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    /// Who connected.
    pub client: ClientId,
    /// The policy used, when not the device's own key.
    pub policy: Option<String>,
    /// The key that signed the token: the device's or the policy's. Kept so that replacing
    /// exactly that key ends the session, and replacing the other one does not.
    pub signed_with: Key,
    /// The token's `se`, in Unix seconds: the session must end then.
    pub expires_at: u64,
}

/// Current time in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Verifies SAS tokens against the registry.
#[derive(Debug, Clone)]
pub struct Authenticator {
    registry: Registry,
    host_names: Arc<Vec<String>>,
    // std RwLock: held only to clone an Arc, never across an await.
    policies: Arc<RwLock<Arc<HashMap<String, PolicyRecord>>>>,
    // One reload at a time, database read included: a slow read finishing after a newer one
    // would otherwise put back keys that are gone (and report the new ones as changed).
    reloading: Arc<tokio::sync::Mutex<()>>,
}

impl Authenticator {
    /// An authenticator for a hub reachable as any of `host_names` (ports are ignored).
    pub async fn new(registry: Registry, host_names: Vec<String>) -> Result<Self, RegistryError> {
        let auth = Self {
            registry,
            host_names: Arc::new(host_names),
            policies: Arc::new(RwLock::new(Arc::new(HashMap::new()))),
            reloading: Arc::default(),
        };
        auth.reload_policies().await?;
        Ok(auth)
    }

    /// Re-reads the policies from the registry. Returns the policies whose keys changed (or
    /// that are gone) since the last read, each with the keys valid now (none when gone), so
    /// the caller can close the sessions signed with a key that no longer is.
    pub async fn reload_policies(&self) -> Result<Vec<(String, Vec<Key>)>, RegistryError> {
        let _one_at_a_time = self.reloading.lock().await;
        let map: HashMap<_, _> = self
            .registry
            .policies()
            .await?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut guard = self.policies.write().unwrap_or_else(|e| e.into_inner());
        let changed = guard
            .values()
            .filter_map(|old| match map.get(&old.name) {
                Some(new)
                    if new.primary_key == old.primary_key
                        && new.secondary_key == old.secondary_key =>
                {
                    None
                }
                Some(new) => Some((
                    old.name.clone(),
                    vec![new.primary_key.clone(), new.secondary_key.clone()],
                )),
                None => Some((old.name.clone(), Vec::new())),
            })
            .collect();
        *guard = Arc::new(map);
        Ok(changed)
    }

    fn policy(&self, name: &str) -> Option<PolicyRecord> {
        let map = self
            .policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        map.get(name).cloned()
    }

    /// The policy key that signed the service token in `header` (already authenticated with
    /// [`Authenticator::authenticate_service`]), if it is still valid at `now`.
    pub fn signing_key(&self, header: &str, now: u64) -> Option<Key> {
        let token = SasToken::parse(header).ok()?;
        let policy = self.policy(token.key_name()?)?;
        let keys = [&policy.primary_key, &policy.secondary_key];
        let which = token.verify_which(keys, now).ok()?;
        keys.get(which).map(|k| (*k).clone())
    }

    /// What policy `name` may do while `key` is still one of its keys: `None` once the policy
    /// is gone or that key was replaced (a console session signed in with it ends then).
    pub fn policy_rights_with(&self, name: &str, key: &Key) -> Option<Permissions> {
        let policy = self.policy(name)?;
        let held = [&policy.primary_key, &policy.secondary_key]
            .into_iter()
            .any(|k| bool::from(k.as_bytes().ct_eq(key.as_bytes())));
        held.then_some(policy.rights)
    }

    /// The hub's host names (for audience checks and connection strings).
    pub fn host_names(&self) -> &[String] {
        &self.host_names
    }

    /// Authenticates the `Authorization` header of a service request at time `now`.
    pub fn authenticate_service(
        &self,
        header: Option<&str>,
        now: u64,
    ) -> Result<ServiceIdentity, AuthError> {
        let token = SasToken::parse(header.ok_or(AuthError::Missing)?)?;
        let audience = token.audience()?;
        if !audience.is_for_host(self.host_names.iter().map(String::as_str)) {
            return Err(AuthError::WrongAudience(audience.host().to_string()));
        }
        let name = token.key_name().ok_or(AuthError::NotAPolicyToken)?;
        let policy = self
            .policy(name)
            .ok_or_else(|| AuthError::UnknownPolicy(name.to_string()))?;
        token.verify([&policy.primary_key, &policy.secondary_key], now)?;
        Ok(ServiceIdentity {
            policy: policy.name,
            rights: policy.rights,
        })
    }

    /// Authenticates a device connecting as `client` with SAS token `password` at `now`:
    /// signed with the device's own key for exactly its identity, or with a policy that has
    /// DeviceConnect for a resource covering it. The device must exist and be enabled.
    pub async fn authenticate_device(
        &self,
        client: &ClientId,
        password: &str,
        now: u64,
    ) -> Result<DeviceIdentity, AuthError> {
        let token = SasToken::parse(password)?;
        let audience = token.audience()?;
        if !audience.is_for_host(self.host_names.iter().map(String::as_str)) {
            return Err(AuthError::WrongAudience(audience.host().to_string()));
        }
        let device_id = client.device.as_str();
        let module_id = client.module.as_ref().map(|m| m.as_str());
        let device = self
            .registry
            .device_for_session(device_id)
            .await?
            .ok_or_else(|| AuthError::UnknownDevice(device_id.to_string()))?;
        let (policy, signed_with) = match token.key_name() {
            Some(name) => {
                let policy = self
                    .policy(name)
                    .ok_or_else(|| AuthError::UnknownPolicy(name.to_string()))?;
                let mut target = vec!["devices", device_id];
                if let Some(m) = module_id {
                    target.extend(["modules", m]);
                }
                if !audience.covers(&target) {
                    return Err(AuthError::WrongIdentity(client.to_string()));
                }
                let keys = [&policy.primary_key, &policy.secondary_key];
                let which = token.verify_which(keys, now)?;
                if !policy.rights.contains(Permissions::DEVICE_CONNECT) {
                    return Err(AuthError::Forbidden {
                        policy: policy.name,
                        needed: Permissions::DEVICE_CONNECT,
                    });
                }
                let signed_with = keys.get(which).copied().cloned();
                (Some(policy.name), signed_with)
            }
            None => {
                if !audience.is_identity(device_id, module_id) {
                    return Err(AuthError::WrongIdentity(client.to_string()));
                }
                let keys = device.keys();
                if keys.is_empty() {
                    return Err(AuthError::NotSasDevice(device_id.to_string()));
                }
                let which = token.verify_which(keys.iter().copied(), now)?;
                (None, keys.get(which).copied().cloned())
            }
        };
        // verify_which returns a position within the keys it was given, so this is always set.
        let signed_with = signed_with.ok_or(AuthError::Token(SasError::BadSignature))?;
        // Checked after the signature so that an unauthenticated caller cannot probe status.
        if device.status != crate::registry::DeviceStatus::Enabled {
            return Err(AuthError::DeviceDisabled(device_id.to_string()));
        }
        Ok(DeviceIdentity {
            client: client.clone(),
            policy,
            signed_with,
            expires_at: token.expiry(),
        })
    }
}
