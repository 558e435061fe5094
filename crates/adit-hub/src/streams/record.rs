//! One record per stream, whatever its outcome: the material of the DeviceStreams log.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::Initiate;
use crate::diagnostics::Diagnostics;
use crate::gateway::{ClosedBy, EndReason, RelayOutcome};
use crate::metrics::Metrics;
use crate::registry::InFlightStream;

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// One side closed: after the relay ran, or, with no handshake time, before its peer
    /// arrived (the first half to come left while it waited).
    Closed,
    /// The device accepted, but the halves did not both connect before the deadline.
    HandshakeExpired,
    /// The device rejected the request.
    Rejected,
    /// The device did not answer in time.
    TimedOut,
    /// The device was not connected (and subscribed) within the connect timeout.
    DeviceOffline,
    /// No such device.
    DeviceNotFound,
    /// The service went away (its HTTP request was dropped) before the device answered.
    Cancelled,
    /// The hub failed (its registry was unavailable); the service got 500.
    ServerError,
    /// The node relaying the stream died (kill -9, power loss, cut off past its lease); the
    /// record was written by the node that found it dead, or by the node itself when it
    /// started again. Its bytes and end time are not known: the counts are 0 and the
    /// duration runs to when the loss was found.
    NodeLost,
}

impl Outcome {
    /// Name for logs and queries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HandshakeExpired => "handshake_expired",
            Self::Rejected => "rejected",
            Self::TimedOut => "timed_out",
            Self::DeviceOffline => "device_offline",
            Self::DeviceNotFound => "device_not_found",
            Self::Cancelled => "cancelled",
            Self::ServerError => "server_error",
            Self::NodeLost => "node_lost",
        }
    }
}

/// What happened to one stream.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// Stream id (empty when the stream never got one: offline or unknown device).
    pub stream_id: String,
    /// Target device.
    pub device_id: String,
    /// Target module.
    pub module_id: Option<String>,
    /// Stream name.
    pub name: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Who ended an established stream (or `Deadline`).
    pub closed_by: Option<ClosedBy>,
    /// How an accepted stream ended (a Close frame, a dropped connection, a ping timeout...).
    pub end_reason: Option<EndReason>,
    /// The WebSocket close code of the side that ended it, when it sent a Close (1005 for a
    /// Close without a body).
    pub close_code: Option<u16>,
    /// Payload bytes device to service.
    pub bytes_device_to_service: u64,
    /// Payload bytes service to device.
    pub bytes_service_to_device: u64,
    /// The protocol the stream carried (`adit.stream.v1`), or `None` for raw bytes.
    pub protocol: Option<String>,
    /// Times a dropped half came back (only a stream with the Adit protocol can resume).
    pub resumptions: u32,
    /// Time spent with a half away, waiting for it to come back.
    pub parked: Duration,
    /// When the service asked.
    pub requested_at: SystemTime,
    /// From request to both halves connected.
    pub handshake: Option<Duration>,
    /// From request to the end.
    pub duration: Duration,
    /// The service caller's address.
    pub caller: Option<IpAddr>,
    /// The shared access policy whose token asked (`None` in a `node_lost` record: the
    /// registry's row does not keep it).
    pub policy: Option<String>,
    /// The api-version the service sent.
    pub api_version: Option<String>,
    /// The HTTP status the service got.
    pub status_code: u16,
}

impl StreamRecord {
    /// A record for a request, before its outcome is known.
    pub fn new(req: &Initiate, requested_at: SystemTime) -> Self {
        Self {
            stream_id: String::new(),
            device_id: req.device.to_string(),
            module_id: req.module.as_ref().map(|m| m.to_string()),
            name: req.name.clone(),
            outcome: Outcome::DeviceOffline,
            closed_by: None,
            end_reason: None,
            close_code: None,
            bytes_device_to_service: 0,
            bytes_service_to_device: 0,
            protocol: None,
            resumptions: 0,
            parked: Duration::ZERO,
            requested_at,
            handshake: None,
            duration: Duration::ZERO,
            caller: req.caller,
            policy: req.policy.clone(),
            api_version: req.api_version.clone(),
            status_code: 200,
        }
    }

    /// The record of a stream that ended before any relay.
    pub fn ended(mut self, outcome: Outcome, started: Instant) -> Self {
        self.outcome = outcome;
        self.status_code = match outcome {
            Outcome::DeviceNotFound | Outcome::DeviceOffline => 404,
            Outcome::TimedOut => 504,
            // nginx's "client closed request": nobody was left to receive a status.
            Outcome::Cancelled => 499,
            Outcome::ServerError => 500,
            Outcome::Closed | Outcome::HandshakeExpired | Outcome::Rejected | Outcome::NodeLost => {
                200
            }
        };
        self.duration = started.elapsed();
        self
    }

    /// What the registry keeps of this accepted stream while it runs.
    pub fn in_flight(&self) -> InFlightStream {
        InFlightStream {
            stream_id: self.stream_id.clone(),
            device_id: self.device_id.clone(),
            module_id: self.module_id.clone(),
            name: self.name.clone(),
            requested_ms: unix_ms(self.requested_at),
            caller: self.caller.map(|ip| ip.to_string()),
            api_version: self.api_version.clone(),
        }
    }

    /// The record of a stream whose node died while relaying it, found at `now`.
    pub fn node_lost(s: &InFlightStream, now: SystemTime) -> Self {
        let requested_at = SystemTime::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(s.requested_ms).unwrap_or(0));
        Self {
            stream_id: s.stream_id.clone(),
            device_id: s.device_id.clone(),
            module_id: s.module_id.clone(),
            name: s.name.clone(),
            outcome: Outcome::NodeLost,
            closed_by: None,
            end_reason: None,
            close_code: None,
            bytes_device_to_service: 0,
            bytes_service_to_device: 0,
            protocol: None,
            resumptions: 0,
            parked: Duration::ZERO,
            requested_at,
            handshake: None,
            duration: now.duration_since(requested_at).unwrap_or_default(),
            caller: s.caller.as_deref().and_then(|c| c.parse().ok()),
            policy: None,
            api_version: s.api_version.clone(),
            status_code: 200,
        }
    }

    /// The record of an accepted stream, from the gateway's outcome.
    pub fn relayed(mut self, o: &RelayOutcome, started: Instant) -> Self {
        self.outcome = if o.established || o.reason != EndReason::HandshakeDeadline {
            Outcome::Closed
        } else {
            Outcome::HandshakeExpired
        };
        self.closed_by = Some(o.closed_by);
        self.end_reason = Some(o.reason);
        self.close_code = o.close_code;
        self.bytes_device_to_service = o.bytes_device_to_service;
        self.bytes_service_to_device = o.bytes_service_to_device;
        self.resumptions = o.resumptions;
        self.parked = o.parked;
        self.handshake = o.paired_at.map(|p| p.saturating_duration_since(started));
        self.duration = started.elapsed();
        self
    }
}

/// The most recent records, bounded; every record also goes to the metrics and, when
/// configured, the diagnostics log.
#[derive(Debug, Clone)]
pub struct RecordLog {
    capacity: usize,
    metrics: Metrics,
    diagnostics: Option<Diagnostics>,
    // std Mutex: push and copy only, never held across an await.
    records: Arc<Mutex<VecDeque<StreamRecord>>>,
}

impl RecordLog {
    /// A log keeping the last `capacity` records in memory (none when 0; they still go to
    /// the metrics and the diagnostics log).
    pub fn new(capacity: usize, metrics: Metrics, diagnostics: Option<Diagnostics>) -> Self {
        Self {
            capacity,
            metrics,
            diagnostics,
            records: Arc::default(),
        }
    }

    /// Adds a record (and logs it).
    pub fn push(&self, r: StreamRecord) {
        tracing::info!(
            stream = %r.stream_id,
            device = %r.device_id,
            module = r.module_id.as_deref(),
            name = %r.name,
            outcome = r.outcome.as_str(),
            closed_by = r.closed_by.map(ClosedBy::as_str),
            end_reason = r.end_reason.map(EndReason::as_str),
            close_code = r.close_code,
            bytes_d2s = r.bytes_device_to_service,
            bytes_s2d = r.bytes_service_to_device,
            protocol = r.protocol.as_deref(),
            policy = r.policy.as_deref(),
            resumptions = r.resumptions,
            parked_ms = r.parked.as_millis() as u64,
            handshake_ms = r.handshake.map(|d| d.as_millis() as u64),
            duration_ms = r.duration.as_millis() as u64,
            "stream ended"
        );
        self.metrics.stream_ended(
            r.outcome.as_str(),
            r.bytes_device_to_service,
            r.bytes_service_to_device,
            r.handshake,
        );
        if let Some(d) = &self.diagnostics {
            d.stream(&r);
        }
        if self.capacity == 0 {
            return;
        }
        let mut q = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= self.capacity {
            q.pop_front();
        }
        q.push_back(r);
    }

    /// A copy of the records, oldest first.
    pub fn snapshot(&self) -> Vec<StreamRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(device: &str) -> StreamRecord {
        let req = Initiate {
            device: adit_proto::DeviceId::new(device).expect("valid id"),
            module: None,
            name: "ssh".into(),
            connect_timeout: None,
            response_timeout: None,
            caller: None,
            api_version: None,
            protocol: None,
            policy: None,
        };
        StreamRecord::new(&req, SystemTime::now())
    }

    #[test]
    fn keeps_the_last_capacity_records_oldest_first() {
        let log = RecordLog::new(2, Metrics::default(), None);
        for d in ["a", "b", "c"] {
            log.push(record(d));
        }
        let kept: Vec<_> = log.snapshot().into_iter().map(|r| r.device_id).collect();
        assert_eq!(kept, ["b", "c"]);
    }

    #[test]
    fn a_capacity_of_zero_keeps_none_but_still_counts() {
        let metrics = Metrics::default();
        let log = RecordLog::new(0, metrics.clone(), None);
        log.push(record("a"));
        assert!(log.snapshot().is_empty());
        let text = metrics.render(crate::metrics::Gauges::default());
        assert!(
            text.contains("adit_streams_total{outcome=\"device_offline\"} 1"),
            "{text}"
        );
    }
}
