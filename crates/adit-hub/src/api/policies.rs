//! `/adit/policies`: Adit's own endpoint listing shared access policies with their keys.
//!
//! Azure serves policies through its management plane, which a self-hosted hub does not have;
//! this endpoint stands in for `az iot hub policy list`. Listing keys hands out every right,
//! so only a caller that already holds every right may do it.

use adit_proto::Permissions;
use adit_proto::identity::AccessPolicy;
use axum::Json;
use axum::extract::State;

use super::auth::Service;
use super::{ApiError, AppState};

pub async fn list(
    State(state): State<AppState>,
    Service(caller): Service,
) -> Result<Json<Vec<AccessPolicy>>, ApiError> {
    caller.require(Permissions::ALL)?;
    let policies = state.registry.policies().await?;
    Ok(Json(
        policies
            .into_iter()
            .map(|p| AccessPolicy {
                key_name: p.name,
                primary_key: p.primary_key.to_base64().to_string(),
                secondary_key: p.secondary_key.to_base64().to_string(),
                rights: p.rights.to_string(),
            })
            .collect(),
    ))
}
