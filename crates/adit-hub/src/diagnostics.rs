//! The diagnostics log: one JSON line per event in Azure's resource-log schema, written to
//! `<data-dir>/logs/diagnostics.jsonl` (rotated by size) and optionally to stdout.
//!
//! Categories: `DeviceStreams` (one record per stream, whatever its outcome, with Adit's own
//! fields added to `properties`), `Connections` (device connect and disconnect) and
//! `Authentication` (failures). Writing happens on one task fed by a bounded channel, so no
//! request ever waits on the disk; if the disk cannot keep up, records are counted as dropped
//! rather than piling up in memory.

mod query;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde_json::{Value, json};
use std::sync::mpsc;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use query::{Filter, query};

use crate::streams::{Outcome, StreamRecord};

/// Name of the current log file inside the log directory.
pub const LOG_FILE: &str = "diagnostics.jsonl";
const QUEUE: usize = 65_536;

/// Where and how the log is written.
#[derive(Debug, Clone)]
pub struct DiagnosticsConfig {
    /// Directory of the log files.
    pub dir: PathBuf,
    /// Rotate when the current file passes this size.
    pub max_file_bytes: u64,
    /// Rotated files kept (`diagnostics.jsonl.1` is the newest).
    pub keep_files: usize,
    /// Also print every record to stdout.
    pub stdout: bool,
    /// `resourceId` of every record.
    pub resource_id: String,
    /// `location` of every record.
    pub location: String,
}

/// Sends records to the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    tx: mpsc::SyncSender<String>,
    dropped: Arc<AtomicU64>,
    config: Arc<DiagnosticsConfig>,
}

/// `2026-11-26T08:40:00.123Z`: fixed width, so times compare as strings.
pub fn format_time(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

impl Diagnostics {
    /// Starts the writer on a blocking thread of `tracker` (file writes and stdout never block
    /// the runtime's threads); it drains what is queued and stops after `shutdown`.
    pub fn start(
        config: DiagnosticsConfig,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let file = writer::LogFile::open(&config)?;
        let stdout = config.stdout;
        tracker.spawn_blocking(move || writer::run(file, rx, stdout, &shutdown));
        Ok(Self {
            tx,
            dropped: Arc::default(),
            config: Arc::new(config),
        })
    }

    /// The log directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.config.dir
    }

    /// Records lost because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn emit(&self, mut record: Value, properties: Value) {
        record["resourceId"] = json!(self.config.resource_id);
        record["location"] = json!(self.config.location);
        // Azure carries properties as a JSON string inside the record.
        record["properties"] = json!(properties.to_string());
        if self.tx.try_send(record.to_string()).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The DeviceStreams record of a stream.
    pub fn stream(&self, r: &StreamRecord) {
        let (result, level, description) = match r.outcome {
            Outcome::Closed => (
                "Success",
                "Information",
                format!(
                    "stream closed by {} ({})",
                    r.closed_by.map(|c| c.as_str()).unwrap_or("?"),
                    r.end_reason.map(|e| e.as_str()).unwrap_or("?")
                ),
            ),
            Outcome::ServerError => (
                "ServerError",
                "Error",
                "the hub could not serve the request (registry unavailable)".to_string(),
            ),
            Outcome::Cancelled => (
                "Cancelled",
                "Warning",
                "the service went away before the device answered".to_string(),
            ),
            Outcome::Rejected => (
                "Rejected",
                "Warning",
                "device rejected the stream".to_string(),
            ),
            Outcome::TimedOut => (
                "Timeout",
                "Error",
                "Timed out waiting for the response from device.".to_string(),
            ),
            Outcome::DeviceOffline => (
                "DeviceNotOnline",
                "Error",
                "device was not online".to_string(),
            ),
            Outcome::DeviceNotFound => ("DeviceNotFound", "Error", "device not found".to_string()),
            Outcome::HandshakeExpired => (
                "HandshakeExpired",
                "Error",
                "both halves did not connect before the handshake deadline".to_string(),
            ),
            Outcome::NodeLost => (
                "NodeLost",
                "Error",
                "the hub node relaying the stream died; bytes and end time unknown".to_string(),
            ),
        };
        let record = json!({
            // When the stream ended (the record is written then): the log stays in time order,
            // so `adit logs --follow` sees a long stream's record; `durationMs` gives the start.
            "time": format_time(r.requested_at + r.duration),
            "operationName": "invoke",
            "category": "DeviceStreams",
            "resultType": result,
            "resultDescription": description,
            "level": level,
            "durationMs": r.duration.as_millis().to_string(),
        });
        let properties = json!({
            "deviceId": r.device_id,
            "moduleId": r.module_id,
            "sdkVersion": r.api_version,
            "requestSize": "0",
            "responseSize": "0",
            "statusCode": r.status_code.to_string(),
            "requestName": r.name,
            "direction": "c2d",
            "streamId": r.stream_id,
            "outcome": r.outcome.as_str(),
            "closedBy": r.closed_by.map(|c| c.as_str()),
            "endReason": r.end_reason.map(|e| e.as_str()),
            "closeCode": r.close_code,
            "bytesDeviceToService": r.bytes_device_to_service,
            "bytesServiceToDevice": r.bytes_service_to_device,
            "protocol": r.protocol,
            "resumptions": r.resumptions,
            "parkedMs": r.parked.as_millis() as u64,
            "handshakeMs": r.handshake.map(|d| d.as_millis() as u64),
            "callerAddress": r.caller.map(|ip| ip.to_string()),
            "policyName": r.policy,
        });
        self.emit(record, properties);
    }

    /// A device connected (`connected = true`) or disconnected.
    pub fn connection(
        &self,
        device: &str,
        module: Option<&str>,
        transport: &str,
        source: std::net::IpAddr,
        connected: bool,
        reason: &str,
    ) {
        let record = json!({
            "time": format_time(SystemTime::now()),
            "operationName": if connected { "deviceConnect" } else { "deviceDisconnect" },
            "category": "Connections",
            "resultType": "Success",
            "resultDescription": reason,
            "level": "Information",
            "durationMs": "0",
        });
        let properties = json!({
            "deviceId": device,
            "moduleId": module,
            "protocol": transport,
            "sourceAddress": source.to_string(),
        });
        self.emit(record, properties);
    }

    /// An authentication failed. `identity` is what the caller claimed, as received (it is
    /// escaped and bounded here); `reason` must hold no secret (error texts of `adit-proto`
    /// and of the authenticator never echo a token). `throttled` numbers a throttled
    /// attempt within its window: such attempts are recorded sparsely, so the latest record
    /// says how many there were.
    pub fn auth_failure(
        &self,
        protocol: &str,
        source: Option<std::net::IpAddr>,
        identity: Option<&str>,
        reason: &str,
        throttled: Option<u32>,
    ) {
        let description = match throttled {
            Some(n) => format!("throttled (attempt {n} past the limit in this window): {reason}"),
            None => reason.to_string(),
        };
        let record = json!({
            "time": format_time(SystemTime::now()),
            "operationName": "authenticate",
            "category": "Authentication",
            "resultType": "Failure",
            "resultDescription": description,
            "level": "Warning",
            "durationMs": "0",
        });
        let properties = json!({
            "protocol": protocol,
            "sourceAddress": source.map(|ip| ip.to_string()),
            "identity": identity.map(|id| adit_proto::remote_text(id).to_string()),
            "throttledAttempts": throttled,
        });
        self.emit(record, properties);
    }
}
