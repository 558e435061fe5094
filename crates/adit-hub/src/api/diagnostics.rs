//! `/adit/logs` (query the diagnostics log, RegistryRead) and `/adit/devicestreams` (the
//! streaming endpoints, as `az iot hub devicestream show` reports them).

use adit_proto::Permissions;
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Service;
use super::{ApiError, AppState};
use crate::diagnostics::{Filter, query};

/// Most records one query returns.
const MAX_LIMIT: usize = 10_000;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    category: Option<String>,
    device: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

pub async fn logs(
    State(state): State<AppState>,
    Service(caller): Service,
    Query(q): Query<LogQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require(Permissions::REGISTRY_READ)?;
    let filter = Filter {
        category: q.category,
        device: q.device,
        outcome: q.outcome,
        since: q.since,
        until: q.until,
        limit: q.limit.unwrap_or(1000).clamp(1, MAX_LIMIT),
    };
    let dir = state.diagnostics.dir().to_path_buf();
    // File reading is blocking work: keep it off the async workers.
    let records = tokio::task::spawn_blocking(move || query(&dir, &filter))
        .await
        .map_err(|e| {
            ApiError::new(
                adit_proto::ErrorCode::ServerError,
                format!("log query failed: {e}"),
            )
        })?
        .map_err(|e| {
            ApiError::new(
                adit_proto::ErrorCode::ServerError,
                format!("cannot read the log: {e}"),
            )
        })?;
    Ok(Json(records))
}

pub async fn streaming_endpoints(
    State(state): State<AppState>,
    Service(_caller): Service,
) -> Json<Value> {
    Json(json!({ "streamingEndpoints": [state.streaming_endpoint] }))
}
