//! One transport's run: the connect storm, a quiet baseline, kill -9 of the hub and the
//! reconnect storm, with the service API sampled throughout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adit_device::Transport;

use crate::api_probe::{ApiProbe, Query, Window};
use crate::failures::FailureLog;
use crate::fleet::{self, Fleet};
use crate::rig::Rig;
use crate::stats::Latencies;

/// Knobs of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Connection strings of the fleet.
    pub strings: Vec<String>,
    /// Clients are created evenly over this long (zero: all at once).
    pub spread: Duration,
    /// How long to wait for every device before calling the rest failed.
    pub give_up: Duration,
    /// The quiet window, every device connected, before the kill.
    pub baseline: Duration,
}

/// What one connect storm showed.
#[derive(Debug)]
pub struct Storm {
    /// Devices connected in the end.
    pub connected: usize,
    /// Per device: from the start (its client's creation, or the kill) to connected.
    pub latencies: Latencies,
    /// From the first client's creation (or the kill) to the last device connected, when all
    /// did.
    pub all_after: Option<Duration>,
    /// Failed attempts as the SDK reported them, by reason.
    pub failures: BTreeMap<String, u64>,
}

/// The service API in one window.
#[derive(Debug)]
pub struct ApiWindows {
    /// `GET /devices/{id}`.
    pub device: Window,
    /// `GET /devices?top=100`.
    pub list: Window,
}

/// One transport's figures.
#[derive(Debug)]
pub struct Outcome {
    /// Which transport.
    pub transport: &'static str,
    /// Devices in the fleet.
    pub devices: usize,
    /// First connection of the whole fleet.
    pub connect: Storm,
    /// After kill -9 and restart (latencies from the kill).
    pub reconnect: Storm,
    /// kill -9 to the new hub's listeners.
    pub restart: Duration,
    /// The API while the fleet connected.
    pub api_connect: ApiWindows,
    /// The API with every device connected and quiet.
    pub api_quiet: ApiWindows,
    /// The API from the restarted hub's listeners to the last device back.
    pub api_reconnect: ApiWindows,
}

/// The label of a transport.
pub fn label(t: Transport) -> &'static str {
    match t {
        Transport::Tls => "MQTT/TLS",
        _ => "MQTT/WS",
    }
}

fn storm(first: &[Option<Instant>], from: &[Instant], failures: BTreeMap<String, u64>) -> Storm {
    let mut latencies = Vec::with_capacity(first.len());
    let mut last = None;
    for (at, start) in first.iter().zip(from) {
        if let Some(at) = at {
            latencies.push(at.saturating_duration_since(*start));
            last = last.max(Some(*at));
        }
    }
    let connected = latencies.len();
    let begin = from.iter().min().copied();
    let all_after = match (connected == first.len(), last, begin) {
        (true, Some(last), Some(begin)) => Some(last.saturating_duration_since(begin)),
        _ => None,
    };
    Storm {
        connected,
        latencies: Latencies::new(latencies),
        all_after,
        failures,
    }
}

async fn api(probe: &ApiProbe, from: Instant, to: Instant) -> ApiWindows {
    ApiWindows {
        device: probe.window(Query::Device, from, to).await,
        list: probe.window(Query::List, from, to).await,
    }
}

/// Runs the connect storm, the quiet window and the kill -9 storm for `transport`, then
/// disconnects the fleet and waits for the hub to see every device gone.
pub async fn run(
    rig: &mut Rig,
    plan: &Plan,
    transport: Transport,
    probe: &ApiProbe,
    failures: &FailureLog,
) -> anyhow::Result<Outcome> {
    let options = fleet::options(transport, rig.mqtt.port(), &rig.ca);
    let n = plan.strings.len();
    failures.take();
    eprintln!("{}: connecting {n} devices", label(transport));
    let begin = Instant::now();
    let mut fleet = Fleet::start(&plan.strings, &options, plan.spread).await?;
    let first = fleet.connections_since(begin, plan.give_up).await;
    let connected_at = Instant::now();
    let connect = storm(&first, &fleet.started, failures.take());
    eprintln!(
        "{}: {} of {n} connected; quiet for {:?}",
        label(transport),
        connect.connected,
        plan.baseline
    );

    let quiet_from = Instant::now();
    tokio::time::sleep(plan.baseline).await;
    let quiet_to = Instant::now();

    eprintln!(
        "{}: kill -9 of the hub, then start it again",
        label(transport)
    );
    let (killed, ready) = rig.crash_and_start_again().await?;
    let back = fleet.connections_since(killed, plan.give_up).await;
    let back_at = Instant::now();
    let reconnect = storm(&back, &vec![killed; fleet.len()], failures.take());
    eprintln!(
        "{}: {} of {n} back; disconnecting the fleet",
        label(transport),
        reconnect.connected
    );

    fleet.shutdown().await;
    let drained = Instant::now() + Duration::from_secs(30);
    while rig.connected_devices().await.unwrap_or(0) > 0 && Instant::now() < drained {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    failures.take();

    Ok(Outcome {
        transport: label(transport),
        devices: n,
        connect,
        reconnect,
        restart: ready.saturating_duration_since(killed),
        api_connect: api(probe, begin, connected_at).await,
        api_quiet: api(probe, quiet_from, quiet_to).await,
        api_reconnect: api(probe, ready, back_at.max(ready + Duration::from_secs(1))).await,
    })
}
