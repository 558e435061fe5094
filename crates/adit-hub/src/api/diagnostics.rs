//! `/adit/logs` (query the diagnostics log, RegistryRead) and `/adit/devicestreams` (the
//! streaming endpoints, as `az iot hub devicestream show` reports them). With several nodes,
//! both answer for the cluster: this node's, and what the others answer over NATS.

use adit_proto::Permissions;
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Service;
use super::{ApiError, AppState};
use crate::cluster::questions::{Question, merge_records};
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
    Ok(Json(cluster_log(&state, q.into_filter()).await?))
}

/// The log records `filter` matches, this node's and the other nodes' merged, newest
/// `filter.limit`.
pub(crate) async fn cluster_log(state: &AppState, filter: Filter) -> Result<Vec<Value>, ApiError> {
    let dir = state.diagnostics.dir().to_path_buf();
    // The other nodes read their logs meanwhile.
    let question = Question::Logs {
        filter: filter.clone(),
    };
    let others = async {
        match &state.cluster {
            Some(c) => c.ask_others(question, other_nodes(state, c).await).await,
            None => Vec::new(),
        }
    };
    let limit = filter.limit;
    // File reading is blocking work: keep it off the async workers.
    let local = tokio::task::spawn_blocking(move || query(&dir, &filter));
    let (local, others) = tokio::join!(local, others);
    let records = local
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
    if others.is_empty() {
        return Ok(records);
    }
    Ok(merge_records(records, others, limit))
}

/// How many other nodes hold a lease now (the ones expected to answer). Bounded: a registry
/// that does not answer within a second costs the full wait for answers, not the request.
pub(crate) async fn other_nodes(state: &AppState, cluster: &crate::cluster::Cluster) -> usize {
    match tokio::time::timeout(std::time::Duration::from_secs(1), state.registry.leases()).await {
        Ok(Ok(leases)) => leases.iter().filter(|(n, _)| n != cluster.node()).count(),
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::report::Report(&e), "cannot read the nodes' leases; waiting the full time for answers");
            usize::MAX
        }
        Err(_) => {
            tracing::warn!(
                "reading the nodes' leases took over 1 s; waiting the full time for answers"
            );
            usize::MAX
        }
    }
}

pub async fn streaming_endpoints(
    State(state): State<AppState>,
    Service(_caller): Service,
) -> Json<Value> {
    let mut endpoints = vec![state.streaming_endpoint.clone()];
    if let Some(c) = &state.cluster {
        let mut answers = c
            .ask_others(Question::StreamingEndpoint, other_nodes(&state, c).await)
            .await;
        answers.sort_by(|a, b| a.node.cmp(&b.node));
        for e in answers.into_iter().filter_map(|a| a.streaming_endpoint) {
            if !endpoints.contains(&e) {
                endpoints.push(e);
            }
        }
    }
    Json(json!({ "streamingEndpoints": endpoints }))
}
