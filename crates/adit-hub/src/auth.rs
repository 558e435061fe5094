//! Authentication of services (and later devices) by SAS token.
//!
//! Every endpoint goes through [`Authenticator`], which goes through the one SAS verifier in
//! `adit-proto`: parse, check the audience names this hub, find the key(s), verify in
//! constant time. Policies are cached in memory because every REST call needs them and they
//! change only through the registry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use adit_proto::{Permissions, SasError, SasToken};

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
    /// The token is for another hub.
    #[error("token audience {0:?} is not this hub")]
    WrongAudience(String),
    /// The token does not name a policy (`skn`), so it cannot be a service token.
    #[error("token has no policy name (skn); service endpoints need a shared access policy token")]
    NotAPolicyToken,
    /// No policy with that name.
    #[error("unknown shared access policy {0:?}")]
    UnknownPolicy(String),
    /// The policy lacks a right the operation needs.
    #[error("policy {policy:?} lacks the {needed} permission")]
    Forbidden {
        /// The policy used.
        policy: String,
        /// What was needed.
        needed: Permissions,
    },
    /// The registry failed while looking up keys.
    #[error("registry unavailable")]
    Registry(#[from] RegistryError),
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
}

impl Authenticator {
    /// An authenticator for a hub reachable as any of `host_names` (ports are ignored).
    pub async fn new(registry: Registry, host_names: Vec<String>) -> Result<Self, RegistryError> {
        let auth = Self {
            registry,
            host_names: Arc::new(host_names),
            policies: Arc::new(RwLock::new(Arc::new(HashMap::new()))),
        };
        auth.reload_policies().await?;
        Ok(auth)
    }

    /// Re-reads the policies from the registry.
    pub async fn reload_policies(&self) -> Result<(), RegistryError> {
        let map: HashMap<_, _> = self
            .registry
            .policies()
            .await?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut guard = self.policies.write().unwrap_or_else(|e| e.into_inner());
        *guard = Arc::new(map);
        Ok(())
    }

    fn policy(&self, name: &str) -> Option<PolicyRecord> {
        let map = self
            .policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        map.get(name).cloned()
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
}
