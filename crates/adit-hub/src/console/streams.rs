//! The console's streams (`docs/console.md`): those open now, the DeviceStreams log
//! (searchable), and streams and bytes per minute over the last hour, read from that log.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use adit_proto::Permissions;
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ConsoleState;
use super::json_error::ConsoleError;
use super::signed_in::SignedIn;
use crate::cluster::questions::{Question, newest_open};
use crate::diagnostics::{Filter, format_time};
use crate::streams::OpenStream;

/// Records a log search returns by default, and at most.
const LOG_DEFAULT: usize = 200;
const LOG_MAX: usize = 1000;
/// Records a search reads before matching its text: the newest ones.
const SEARCHED: usize = 10_000;
/// The history's span and bucket.
const HISTORY: Duration = Duration::from_secs(60 * 60);
const BUCKET: Duration = Duration::from_secs(60);

/// `GET /console/api/streams`: the streams open now on every node that answers (see
/// [`crate::cluster::questions`]), newest first, each with what it has carried so far and its
/// rate of late. `partial` is true when a node did not answer in time or listed only its
/// newest.
pub async fn live(
    State(state): State<ConsoleState>,
    user: SignedIn,
) -> Result<Json<Value>, ConsoleError> {
    user.require(Permissions::REGISTRY_READ)?;
    let (mut streams, mut partial) = newest_open(state.app.streams.open_streams());
    if let Some(cluster) = &state.app.cluster {
        let expected = crate::api::diagnostics::other_nodes(&state.app, cluster).await;
        let answers = cluster.ask_others(Question::OpenStreams, expected).await;
        partial |= answers.len() < expected || answers.iter().any(|a| a.truncated);
        streams.extend(answers.into_iter().flat_map(|a| a.streams));
    }
    streams.sort_by_key(|s| std::cmp::Reverse(s.requested_ms));
    let now_ms = crate::registry::now_ms();
    let listed: Vec<Value> = streams.iter().map(|s| open_json(s, now_ms)).collect();
    Ok(Json(json!({ "streams": listed, "partial": partial })))
}

/// One open stream as the console shows it.
fn open_json(s: &OpenStream, now_ms: i64) -> Value {
    // Another node's clock, or its bug, is not trusted to keep a date in range.
    let requested_ms = s.requested_ms.clamp(0, now_ms.saturating_add(86_400_000));
    let started =
        SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(requested_ms).unwrap_or(0));
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["startedAt"] = json!(format_time(started));
    v["durationMs"] = json!(now_ms.saturating_sub(requested_ms).max(0));
    v
}

/// A DeviceStreams log record (as `/adit/logs` returns it) in the console's shape.
pub fn log_record(r: &Value) -> Value {
    let props: Value = r
        .get("properties")
        .and_then(Value::as_str)
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let number = |v: &Value| match v {
        Value::String(s) => s
            .parse::<u64>()
            .ok()
            .map(Value::from)
            .unwrap_or(Value::Null),
        other => other.clone(),
    };
    json!({
        "time": r.get("time"),
        "streamId": props.get("streamId"),
        "deviceId": props.get("deviceId"),
        "streamName": props.get("requestName"),
        "outcome": props.get("outcome"),
        "reason": r.get("resultDescription"),
        "durationMs": r.get("durationMs").map(number),
        "bytesDeviceToService": props.get("bytesDeviceToService"),
        "bytesServiceToDevice": props.get("bytesServiceToDevice"),
        "policy": props.get("policyName"),
        "caller": props.get("callerAddress"),
    })
}

fn mentions(record: &Value, needle: &str) -> bool {
    ["deviceId", "streamName", "outcome", "reason", "streamId"]
        .iter()
        .filter_map(|k| record.get(*k).and_then(Value::as_str))
        .any(|v| v.to_lowercase().contains(needle))
}

#[derive(Deserialize)]
pub struct LogQuery {
    q: Option<String>,
    limit: Option<usize>,
}

async fn stream_records(state: &ConsoleState, limit: usize) -> Result<Vec<Value>, ConsoleError> {
    let filter = Filter {
        category: Some("DeviceStreams".into()),
        limit,
        ..Filter::default()
    };
    let records = crate::api::diagnostics::cluster_log(&state.app, filter).await?;
    Ok(records.iter().map(log_record).collect())
}

/// `GET /console/api/streams/log?q=&limit=`: newest first.
pub async fn log(
    State(state): State<ConsoleState>,
    user: SignedIn,
    Query(q): Query<LogQuery>,
) -> Result<Json<Value>, ConsoleError> {
    user.require(Permissions::REGISTRY_READ)?;
    let limit = q.limit.unwrap_or(LOG_DEFAULT).clamp(1, LOG_MAX);
    let needle = q.q.unwrap_or_default().trim().to_lowercase();
    let read = if needle.is_empty() { limit } else { SEARCHED };
    let records: Vec<Value> = stream_records(&state, read)
        .await?
        .into_iter()
        .rev()
        .filter(|r| needle.is_empty() || mentions(r, &needle))
        .take(limit)
        .collect();
    Ok(Json(json!({ "records": records })))
}

/// `GET /console/api/streams/history`: per minute of the last hour, the streams that ended
/// and the bytes they carried.
pub async fn history(
    State(state): State<ConsoleState>,
    user: SignedIn,
) -> Result<Json<Value>, ConsoleError> {
    user.require(Permissions::REGISTRY_READ)?;
    let now = SystemTime::now();
    let since = format_time(now - HISTORY);
    let filter = Filter {
        category: Some("DeviceStreams".into()),
        since: Some(since),
        limit: SEARCHED,
        ..Filter::default()
    };
    let records = crate::api::diagnostics::cluster_log(&state.app, filter).await?;
    Ok(Json(buckets(&records, now)))
}

/// Log records counted into [`BUCKET`]s ending at `now`.
fn buckets(records: &[Value], now: SystemTime) -> Value {
    let now_s = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let width = BUCKET.as_secs();
    let first = (now_s - now_s % width).saturating_sub(HISTORY.as_secs() - width);
    let mut counts: BTreeMap<u64, (u64, u64)> = (0..HISTORY.as_secs() / width)
        .map(|i| (first + i * width, (0, 0)))
        .collect();
    for r in records {
        let Some(t) = r.get("time").and_then(Value::as_str).and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        }) else {
            continue;
        };
        let Ok(at) = u64::try_from(t.unix_timestamp()) else {
            continue;
        };
        let slot = at - at % width;
        if let Some((streams, bytes)) = counts.get_mut(&slot) {
            let rec = log_record(r);
            *streams += 1;
            *bytes += rec["bytesDeviceToService"].as_u64().unwrap_or(0)
                + rec["bytesServiceToDevice"].as_u64().unwrap_or(0);
        }
    }
    let list: Vec<Value> = counts
        .into_iter()
        .map(|(at, (streams, bytes))| {
            json!({
                "time": format_time(SystemTime::UNIX_EPOCH + Duration::from_secs(at)),
                "streams": streams,
                "bytes": bytes,
            })
        })
        .collect();
    json!({ "bucketSeconds": width, "buckets": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: &str, device: &str, bytes: u64) -> Value {
        let props = json!({
            "deviceId": device,
            "requestName": "ssh",
            "outcome": "closed",
            "bytesDeviceToService": bytes,
            "bytesServiceToDevice": 1,
        });
        json!({
            "time": time,
            "category": "DeviceStreams",
            "resultDescription": "stream closed by service (close)",
            "durationMs": "1500",
            "properties": props.to_string(),
        })
    }

    #[test]
    fn records_take_the_consoles_shape_and_are_found_by_any_field() {
        let r = log_record(&record("2026-12-02T10:00:30.000Z", "pump-7", 10));
        assert_eq!(r["deviceId"], "pump-7");
        assert_eq!(r["streamName"], "ssh");
        assert_eq!(r["durationMs"], 1500);
        assert!(mentions(&r, "pump"));
        assert!(mentions(&r, "closed by service"));
        assert!(!mentions(&r, "valve"));
    }

    #[test]
    fn history_counts_streams_and_bytes_per_minute_of_the_last_hour() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_669_630); // 10:00:30Z
        let got = buckets(
            &[
                record("2025-12-02T10:00:05.000Z", "a", 10),
                record("2025-12-02T10:00:59.999Z", "b", 20),
                record("2025-12-02T09:59:00.000Z", "c", 5),
                record("2025-12-02T08:00:00.000Z", "old", 99),
            ],
            now,
        );
        let b = got["buckets"].as_array().expect("buckets");
        assert_eq!(b.len(), 60);
        let last = &b[59];
        assert_eq!(last["time"], "2025-12-02T10:00:00.000Z");
        assert_eq!(
            (last["streams"].as_u64(), last["bytes"].as_u64()),
            (Some(2), Some(32))
        );
        assert_eq!(
            (b[58]["streams"].as_u64(), b[58]["bytes"].as_u64()),
            (Some(1), Some(6))
        );
        let total: u64 = b.iter().filter_map(|x| x["streams"].as_u64()).sum();
        assert_eq!(
            total, 3,
            "the one from two hours ago is not in the last hour"
        );
    }
}
