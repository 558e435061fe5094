//! The service API under load: a steady stream of registry reads (open loop, so a slow hub
//! does not slow the sampling), each timed, for comparing quiet and storm windows of one run.
//!
//! The sampler runs on a thread and Tokio runtime of its own: on the fleet's runtime, each
//! request waited its turn behind 10,000 device clients' TLS handshakes, and the bench's own
//! queueing (seconds) was measured as the hub's latency.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adit_service::RegistryClient;
use tokio_util::sync::CancellationToken;

use crate::registry_fill::device_id;
use crate::stats::Latencies;

/// What a sample asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// `GET /devices/{id}`: one registry entry with its presence (connectionState).
    Device,
    /// `GET /devices?top=100`: a page of the registry, each with its presence.
    List,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    query: Query,
    sent: Instant,
    /// `None`: failed or timed out.
    took: Option<Duration>,
    /// Answered (or given up on).
    done: bool,
}

/// A running sampler.
#[derive(Debug)]
pub struct ApiProbe {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: CancellationToken,
}

/// Latencies of one query kind in one window.
#[derive(Debug)]
pub struct Window {
    /// Successful requests' latencies.
    pub ok: Latencies,
    /// Requests that failed or took over the timeout.
    pub failed: usize,
}

const TIMEOUT: Duration = Duration::from_secs(10);

impl ApiProbe {
    /// Sends `rate` requests a second (alternating the two queries, device ids spread over
    /// `0..devices`) until dropped. `registry` should be a client of its own: its connections
    /// are made on the sampler's runtime.
    pub fn start(registry: RegistryClient, rate: f64, devices: usize) -> anyhow::Result<Self> {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (out, halt) = (samples.clone(), stop.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("api-probe".into())
            .spawn(move || runtime.block_on(sample(registry, rate, devices, out, halt)))?;
        Ok(Self { samples, stop })
    }

    /// Requests of `query` sent in `[from, to)`, once each has been answered or given up on.
    pub async fn window(&self, query: Query, from: Instant, to: Instant) -> Window {
        let in_window = |s: &Sample| s.query == query && s.sent >= from && s.sent < to;
        let give_up = Instant::now() + TIMEOUT + Duration::from_secs(1);
        let samples = loop {
            let samples = self.samples.lock().map(|s| s.clone()).unwrap_or_default();
            if Instant::now() > give_up || samples.iter().filter(|s| in_window(s)).all(|s| s.done) {
                break samples;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut ok = Vec::new();
        let mut failed = 0;
        for s in samples.iter().filter(|s| in_window(s)) {
            match s.took {
                Some(t) => ok.push(t),
                None => failed += 1,
            }
        }
        Window {
            ok: Latencies::new(ok),
            failed,
        }
    }
}

/// The sampling loop: a request every `1 / rate` s until `halt`, each on a task of its own.
async fn sample(
    registry: RegistryClient,
    rate: f64,
    devices: usize,
    out: Arc<Mutex<Vec<Sample>>>,
    halt: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: usize = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = halt.cancelled() => return,
        }
        n += 1;
        let query = if n.is_multiple_of(2) {
            Query::Device
        } else {
            Query::List
        };
        // A stride co-prime with most fleet sizes walks the whole fleet.
        let id = device_id((n.wrapping_mul(7919)) % devices.max(1));
        let (registry, out) = (registry.clone(), out.clone());
        let sent = Instant::now();
        let slot = match out.lock() {
            Ok(mut s) => {
                s.push(Sample {
                    query,
                    sent,
                    took: None,
                    done: false,
                });
                s.len() - 1
            }
            Err(_) => return,
        };
        tokio::spawn(async move {
            let ok = match query {
                Query::Device => tokio::time::timeout(TIMEOUT, registry.get_device(&id))
                    .await
                    .is_ok_and(|r| r.is_ok()),
                Query::List => tokio::time::timeout(TIMEOUT, registry.list_devices(100))
                    .await
                    .is_ok_and(|r| r.is_ok()),
            };
            let took = ok.then(|| sent.elapsed());
            if let Ok(mut s) = out.lock()
                && let Some(sample) = s.get_mut(slot)
            {
                sample.took = took;
                sample.done = true;
            }
        });
    }
}

impl Drop for ApiProbe {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
