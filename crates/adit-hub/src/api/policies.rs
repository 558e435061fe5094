//! `/adit/policies`: Adit's own endpoints for shared access policies and their keys.
//!
//! Azure serves policies through its management plane, which a self-hosted hub does not have;
//! these endpoints stand in for `az iot hub policy list` and `az iot hub policy renew-key`.
//! Listing or renewing keys hands out every right, so only a caller that already holds every
//! right may do either.

use adit_proto::Permissions;
use adit_proto::identity::AccessPolicy;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::auth::Service;
use super::{ApiError, AppState};
use crate::registry::{KeyRenewal, PolicyRecord};

fn to_json(p: PolicyRecord) -> AccessPolicy {
    AccessPolicy {
        key_name: p.name,
        primary_key: p.primary_key.to_base64().to_string(),
        secondary_key: p.secondary_key.to_base64().to_string(),
        rights: p.rights.to_string(),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Service(caller): Service,
) -> Result<Json<Vec<AccessPolicy>>, ApiError> {
    caller.require(Permissions::ALL)?;
    let policies = state.registry.policies().await?;
    Ok(Json(policies.into_iter().map(to_json).collect()))
}

/// Body of a renewal: `{"renewKey": "primary" | "secondary" | "swap"}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewBody {
    renew_key: String,
}

/// `POST /adit/policies/{name}/renew-key`: replaces a key, then makes the change hold at
/// once on this node: tokens signed with a replaced key are refused from the next request on,
/// and device sessions that connected with one are closed.
pub async fn renew_key(
    State(state): State<AppState>,
    Service(caller): Service,
    Path(name): Path<String>,
    body: Result<Json<RenewBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<AccessPolicy>, ApiError> {
    caller.require(Permissions::ALL)?;
    let Json(body) = body.map_err(|e| ApiError::invalid(format!("invalid body: {e}")))?;
    let which = KeyRenewal::parse(&body.renew_key).ok_or_else(|| {
        ApiError::invalid("renewKey must be primary, secondary or swap".to_string())
    })?;
    let policy = state.registry.renew_policy_key(&name, which).await?;
    state.auth.reload_policies().await?;
    let closed = state
        .presence
        .revoke_stale_policy_keys(&policy.name, &[&policy.primary_key, &policy.secondary_key]);
    tracing::info!(policy = %policy.name, renewed = which.as_str(), by = %caller.policy, sessions_closed = closed, "policy key renewed");
    if let Some(cluster) = &state.cluster {
        cluster
            .announce(&crate::cluster::registry_changes::RegistryChange::Policies)
            .await;
    }
    Ok(Json(to_json(policy)))
}
