//! A bulk stream: a few MiB written as fast as the stream takes them while the echo is read
//! back and compared, as a file copy through the device would.

use std::time::Duration;

use adit_service::{ServiceClient, StreamOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::pattern;
use crate::tally::Tally;

/// Bytes per write.
const CHUNK: usize = 64 * 1024;

/// Opens stream `echo` to `device`, sends `bytes` bytes and checks the echo; records the
/// outcome.
pub async fn run(service: &ServiceClient, device: &str, seed: u64, bytes: u64, tally: &Tally) {
    let (mut sent, mut echoed) = (0, 0);
    let outcome = tokio::time::timeout(
        Duration::from_secs(300),
        transfer(service, device, seed, bytes, tally, &mut sent, &mut echoed),
    )
    .await
    .unwrap_or_else(|_| Err(format!("bulk transfer to {device} took over 300 s")));
    tally.stream_done("bulk", sent, echoed, outcome.err());
}

async fn transfer(
    service: &ServiceClient,
    device: &str,
    seed: u64,
    bytes: u64,
    tally: &Tally,
    sent: &mut u64,
    echoed: &mut u64,
) -> Result<(), String> {
    let mut options = StreamOptions::default();
    options.connect_timeout = Duration::from_secs(10);
    let stream = service
        .open_stream(device, "echo", &options)
        .await
        .map_err(|e| format!("opening to {device}: {e}"))?;
    Tally::add(&tally.opened, 1);
    Tally::add(&tally.bulk, 1);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let write = async {
        while *sent < bytes {
            let n = CHUNK.min((bytes - *sent) as usize);
            let chunk = pattern::bytes(seed, *sent, n);
            *sent += n as u64;
            wr.write_all(&chunk)
                .await
                .map_err(|e| format!("writing to {device}: {e}"))?;
        }
        // Half-close: the device echoes the rest, then ends its side.
        wr.shutdown()
            .await
            .map_err(|e| format!("half-closing to {device}: {e}"))
    };
    let read = async {
        let mut buf = vec![0u8; CHUNK];
        while *echoed < bytes {
            let n = rd
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading from {device}: {e}"))?;
            if n == 0 {
                return Err(format!("{device} ended the echo early"));
            }
            if buf[..n] != pattern::bytes(seed, *echoed, n) {
                return Err(format!("bytes from {device} came back different"));
            }
            *echoed += n as u64;
        }
        Ok(())
    };
    let (wrote, read) = tokio::join!(write, read);
    wrote?;
    read?;
    let mut stream = rd.unsplit(wr);
    crate::ending::finish(&mut stream, device).await
}
