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

/// The query parameters of `GET /adit/logs`.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    category: Option<String>,
    device: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

impl LogQuery {
    /// The log filter these parameters ask for, the limit clamped to 1..=10,000.
    pub fn into_filter(self) -> Filter {
        Filter {
            category: self.category,
            device: self.device,
            outcome: self.outcome,
            since: self.since,
            until: self.until,
            limit: self.limit.unwrap_or(1000).clamp(1, MAX_LIMIT),
        }
    }
}

pub async fn logs(
    State(state): State<AppState>,
    Service(caller): Service,
    Query(q): Query<LogQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require(Permissions::REGISTRY_READ)?;
    let filter = q.into_filter();
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
