//! Prometheus metrics, kept per hub (no global recorder, so several hubs in one process, as in
//! tests, never mix their numbers) and rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the stream setup histogram, in seconds.
const SETUP_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; SETUP_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The hub's counters. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    // Labelled counters: a map behind a std Mutex (updates are rare next to relay work and
    // never held across an await).
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    bytes_device_to_service: AtomicU64,
    bytes_service_to_device: AtomicU64,
    setup: Mutex<Histogram>,
}

/// Point-in-time values that live elsewhere (presence, admission).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Device sessions connected now.
    pub connected_devices: usize,
    /// Streams in their handshake or data phase now.
    pub active_streams: usize,
    /// Tasks alive on the hub's Tokio runtime now (spawned and not yet finished); a count that
    /// keeps growing under steady load is a task leak.
    pub alive_tasks: usize,
}

const HELP: &[(&str, &str, &str)] = &[
    ("adit_streams_total", "counter", "Streams by outcome."),
    (
        "adit_auth_failures_total",
        "counter",
        "Failed authentications by protocol and reason.",
    ),
    (
        "adit_auth_throttled_total",
        "counter",
        "Failed authentications answered as throttled, by protocol and by what they were held against (identity or source).",
    ),
    (
        "adit_mqtt_connections_total",
        "counter",
        "Accepted device connections by transport.",
    ),
    (
        "adit_gateway_connections_total",
        "counter",
        "Gateway WebSocket halves admitted, by role.",
    ),
    (
        "adit_gateway_refusals_total",
        "counter",
        "Gateway WebSocket halves refused, by reason.",
    ),
];

impl Metrics {
    fn add(&self, name: &'static str, label: String) {
        let mut c = self
            .inner
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *c.entry((name, label)).or_insert(0) += 1;
    }

    /// A stream ended with `outcome` after moving these bytes; `setup` is request to paired.
    pub fn stream_ended(&self, outcome: &str, d2s: u64, s2d: u64, setup: Option<Duration>) {
        self.add("adit_streams_total", format!("outcome=\"{outcome}\""));
        self.inner
            .bytes_device_to_service
            .fetch_add(d2s, Ordering::Relaxed);
        self.inner
            .bytes_service_to_device
            .fetch_add(s2d, Ordering::Relaxed);
        if let Some(setup) = setup {
            let secs = setup.as_secs_f64();
            let mut h = self.inner.setup.lock().unwrap_or_else(|e| e.into_inner());
            for (i, bound) in SETUP_BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// An authentication failed.
    pub fn auth_failed(&self, protocol: &str, reason: &str) {
        self.add(
            "adit_auth_failures_total",
            format!("protocol=\"{protocol}\",reason=\"{reason}\""),
        );
    }

    /// A failed authentication was answered as throttled; `against` is `identity` or `source`.
    pub fn auth_throttled(&self, protocol: &str, against: &str) {
        self.add(
            "adit_auth_throttled_total",
            format!("protocol=\"{protocol}\",against=\"{against}\""),
        );
    }

    /// A device connected over `transport`.
    pub fn device_connected(&self, transport: &str) {
        self.add(
            "adit_mqtt_connections_total",
            format!("transport=\"{transport}\""),
        );
    }

    /// A gateway half was admitted.
    pub fn gateway_admitted(&self, role: &str) {
        self.add("adit_gateway_connections_total", format!("role=\"{role}\""));
    }

    /// A gateway half was refused.
    pub fn gateway_refused(&self, reason: &str) {
        self.add(
            "adit_gateway_refusals_total",
            format!("reason=\"{reason}\""),
        );
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP adit_connected_devices Device sessions connected now.\n# TYPE adit_connected_devices gauge\nadit_connected_devices {}",
            gauges.connected_devices
        );
        let _ = writeln!(
            out,
            "# HELP adit_active_streams Streams in handshake or relay now.\n# TYPE adit_active_streams gauge\nadit_active_streams {}",
            gauges.active_streams
        );
        let _ = writeln!(
            out,
            "# HELP adit_tokio_alive_tasks Tasks alive on the hub's Tokio runtime now.\n# TYPE adit_tokio_alive_tasks gauge\nadit_tokio_alive_tasks {}",
            gauges.alive_tasks
        );
        let _ = writeln!(
            out,
            "# HELP adit_relayed_bytes_total Stream payload bytes relayed, by direction.\n# TYPE adit_relayed_bytes_total counter"
        );
        let _ = writeln!(
            out,
            "adit_relayed_bytes_total{{direction=\"device_to_service\"}} {}",
            self.inner.bytes_device_to_service.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "adit_relayed_bytes_total{{direction=\"service_to_device\"}} {}",
            self.inner.bytes_service_to_device.load(Ordering::Relaxed)
        );
        let counters = self
            .inner
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, labels), value) in counters.iter() {
                if n == name {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        drop(counters);
        let h = self.inner.setup.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP adit_stream_setup_seconds From stream request to both halves relaying.\n# TYPE adit_stream_setup_seconds histogram"
        );
        for (i, bound) in SETUP_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "adit_stream_setup_seconds_bucket{{le=\"{bound}\"}} {}",
                h.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "adit_stream_setup_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "adit_stream_setup_seconds_sum {}", h.sum);
        let _ = writeln!(out, "adit_stream_setup_seconds_count {}", h.count);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.stream_ended("closed", 10, 20, Some(Duration::from_millis(3)));
        m.stream_ended("closed", 1, 2, Some(Duration::from_millis(40)));
        m.stream_ended("rejected", 0, 0, None);
        m.auth_failed("mqtt", "bad_signature");
        m.auth_throttled("mqtt", "identity");
        let text = m.render(Gauges {
            connected_devices: 2,
            active_streams: 1,
            alive_tasks: 7,
        });
        for line in [
            "adit_connected_devices 2",
            "adit_active_streams 1",
            "adit_tokio_alive_tasks 7",
            "adit_streams_total{outcome=\"closed\"} 2",
            "adit_streams_total{outcome=\"rejected\"} 1",
            "adit_relayed_bytes_total{direction=\"device_to_service\"} 11",
            "adit_relayed_bytes_total{direction=\"service_to_device\"} 22",
            "adit_auth_failures_total{protocol=\"mqtt\",reason=\"bad_signature\"} 1",
            "adit_auth_throttled_total{protocol=\"mqtt\",against=\"identity\"} 1",
            "adit_stream_setup_seconds_bucket{le=\"0.0025\"} 0",
            "adit_stream_setup_seconds_bucket{le=\"0.005\"} 1",
            "adit_stream_setup_seconds_bucket{le=\"0.05\"} 2",
            "adit_stream_setup_seconds_count 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
