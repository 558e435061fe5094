//! Reading the hub's diagnostics log and its streaming endpoints (Adit's own endpoints).

use serde_json::Value;

use crate::{Error, RegistryClient};

/// A log query; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LogQuery {
    /// `DeviceStreams`, `Connections` or `Authentication`.
    pub category: Option<String>,
    /// Only this device.
    pub device: Option<String>,
    /// Only this stream outcome.
    pub outcome: Option<String>,
    /// At or after this time (`2026-11-26T08:00:00.000Z`).
    pub since: Option<String>,
    /// Before this time.
    pub until: Option<String>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

impl RegistryClient {
    /// Diagnostics records, oldest first (needs RegistryRead).
    pub async fn logs(&self, q: &LogQuery) -> Result<Vec<Value>, Error> {
        let mut params: Vec<(&str, String)> = Vec::new();
        let fields = [
            ("category", &q.category),
            ("device", &q.device),
            ("outcome", &q.outcome),
            ("since", &q.since),
            ("until", &q.until),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                params.push((k, v.clone()));
            }
        }
        if let Some(l) = q.limit {
            params.push(("limit", l.to_string()));
        }
        self.get_json("/adit/logs", &params).await
    }

    /// `{"streamingEndpoints": ["https://..."]}`.
    pub async fn streaming_endpoints(&self) -> Result<Value, Error> {
        self.get_json("/adit/devicestreams", &[]).await
    }
}
