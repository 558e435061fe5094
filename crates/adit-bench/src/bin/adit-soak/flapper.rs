//! A device that flaps: connects with the device SDK, stays up a while, disconnects, stays
//! away a while, and again, until the soak ends. Each completed cycle is one flap.

use std::sync::Arc;
use std::time::Duration;

use adit_device::{DeviceClient, DeviceOptions};
use tokio_util::sync::CancellationToken;

use crate::echo_device;
use crate::tally::Tally;

/// How one flapping device behaves.
#[derive(Debug, Clone)]
pub struct Flap {
    /// Its connection string.
    pub connection_string: String,
    /// Client settings (transport, trust).
    pub options: DeviceOptions,
    /// Time connected in each cycle.
    pub up: Duration,
    /// Time disconnected in each cycle.
    pub down: Duration,
    /// Delay before the first cycle (to spread the devices over a period).
    pub offset: Duration,
}

/// Cycles until `stop`.
pub async fn run(flap: Flap, tally: Arc<Tally>, stop: CancellationToken) {
    if stop
        .run_until_cancelled(tokio::time::sleep(flap.offset))
        .await
        .is_none()
    {
        return;
    }
    while !stop.is_cancelled() {
        let mut client = match DeviceClient::new(&flap.connection_string, flap.options.clone()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("soak: flapping device: {e}");
                Tally::add(&tally.flap_failures, 1);
                return;
            }
        };
        let connected = tokio::time::timeout(Duration::from_secs(30), client.connected()).await;
        if connected.is_err() {
            eprintln!("soak: a flapping device did not connect within 30 s");
            Tally::add(&tally.flap_failures, 1);
        }
        // It serves streams while up, like any device (none are sent to it), then
        // disconnects cleanly (MQTT DISCONNECT).
        let up = tokio::time::timeout(flap.up, echo_device::serve(&mut client));
        let _ = stop.run_until_cancelled(up).await;
        client.shutdown().await;
        if connected.is_ok() {
            Tally::add(&tally.flaps, 1);
        }
        let _ = stop
            .run_until_cancelled(tokio::time::sleep(flap.down))
            .await;
    }
}
