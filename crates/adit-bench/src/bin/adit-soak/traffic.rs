//! The stream traffic: interactive and bulk streams opened at steady rates, spread round-robin
//! over the stable devices, until the soak ends; then the streams in flight are let finish.

use std::sync::Arc;
use std::time::Duration;

use adit_service::ServiceClient;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::interactive::{self, Interactive};
use crate::{bulk, tally};

/// The traffic mix.
#[derive(Debug, Clone)]
pub struct Mix {
    /// A new interactive stream every this often.
    pub interactive_every: Duration,
    /// Each interactive stream's shape.
    pub interactive: Interactive,
    /// A new bulk stream every this often.
    pub bulk_every: Duration,
    /// Bytes each bulk stream sends (and gets back).
    pub bulk_bytes: u64,
}

/// Opens streams to `devices` (round-robin) per `mix` until `stop`, then waits for the
/// streams in flight.
pub async fn run(
    service: ServiceClient,
    devices: Vec<String>,
    mix: Mix,
    tally: Arc<tally::Tally>,
    stop: CancellationToken,
) {
    let mut next = 0u64;
    // Each stream's number is its pattern seed too.
    let mut pick = move || {
        next += 1;
        (
            next,
            devices[(next % devices.len() as u64) as usize].clone(),
        )
    };
    let mut streams = JoinSet::new();
    let mut interactive_tick = ticker(mix.interactive_every);
    let mut bulk_tick = ticker(mix.bulk_every);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = interactive_tick.tick() => {
                let (seed, device) = pick();
                let (service, tally, shape) = (service.clone(), tally.clone(), mix.interactive);
                streams.spawn(async move {
                    interactive::run(&service, &device, seed, shape, &tally).await;
                });
            }
            _ = bulk_tick.tick() => {
                let (seed, device) = pick();
                let (service, tally, bytes) = (service.clone(), tally.clone(), mix.bulk_bytes);
                streams.spawn(async move {
                    bulk::run(&service, &device, seed, bytes, &tally).await;
                });
            }
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
    while streams.join_next().await.is_some() {}
}

fn ticker(every: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval(every);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}
