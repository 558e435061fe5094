//! An interactive stream: 64-byte messages echoed one at a time, at a keystroke-like pace,
//! for as long as the stream is held; every echo compared with what was sent.

use std::time::Duration;

use adit_service::{ServiceClient, StreamOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::pattern;
use crate::tally::Tally;

/// Size of one message.
pub const MESSAGE: usize = 64;

/// How an interactive stream behaves.
#[derive(Debug, Clone, Copy)]
pub struct Interactive {
    /// Messages sent over the stream's life.
    pub messages: u64,
    /// Pause between one echo and the next message.
    pub every: Duration,
}

/// Opens stream `echo` to `device`, exchanges the messages and closes; records the outcome.
pub async fn run(
    service: &ServiceClient,
    device: &str,
    seed: u64,
    shape: Interactive,
    tally: &Tally,
) {
    let (mut sent, mut echoed) = (0, 0);
    let outcome = exchange(service, device, seed, shape, tally, &mut sent, &mut echoed).await;
    tally.stream_done("interactive", sent, echoed, outcome.err());
}

async fn exchange(
    service: &ServiceClient,
    device: &str,
    seed: u64,
    shape: Interactive,
    tally: &Tally,
    sent: &mut u64,
    echoed: &mut u64,
) -> Result<(), String> {
    let mut options = StreamOptions::default();
    options.connect_timeout = Duration::from_secs(10);
    let mut stream = service
        .open_stream(device, "echo", &options)
        .await
        .map_err(|e| format!("opening to {device}: {e}"))?;
    Tally::add(&tally.opened, 1);
    Tally::add(&tally.interactive, 1);
    let mut back = [0u8; MESSAGE];
    for k in 0..shape.messages {
        let message = pattern::bytes(seed, k * MESSAGE as u64, MESSAGE);
        *sent += MESSAGE as u64;
        stream
            .write_all(&message)
            .await
            .map_err(|e| format!("writing to {device}: {e}"))?;
        tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut back))
            .await
            .map_err(|_| format!("no echo from {device} within 30 s"))?
            .map_err(|e| format!("reading from {device}: {e}"))?;
        if back != message.as_slice() {
            return Err(format!("message {k} from {device} came back different"));
        }
        *echoed += MESSAGE as u64;
        tokio::time::sleep(shape.every).await;
    }
    crate::ending::finish(&mut stream, device).await
}
