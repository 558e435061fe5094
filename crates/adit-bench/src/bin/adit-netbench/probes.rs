//! What is measured through each path: one-way bulk throughput, 64-byte round trips, and a
//! byte-identical echo of a payload.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn connect(addr: SocketAddr, mode: u8) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&[mode]).await?;
    Ok(s)
}

/// Writes `mib` MiB, half-closes, waits for the target's byte count: MB/s.
pub async fn throughput(addr: SocketAddr, mib: usize) -> anyhow::Result<f64> {
    let mut s = connect(addr, b'S').await?;
    let chunk = vec![0x5au8; 256 * 1024];
    let started = Instant::now();
    for _ in 0..mib * 4 {
        s.write_all(&chunk).await?;
    }
    s.shutdown().await?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count).await?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = u64::from_be_bytes(count);
    anyhow::ensure!(
        bytes == (mib * 1024 * 1024) as u64,
        "target counted {bytes} bytes"
    );
    Ok(bytes as f64 / secs / 1e6)
}

/// The value at quantile `q` of sorted samples.
fn at(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// `n` sequential 64-byte requests and responses on one connection: p50 and p99, ms.
pub async fn round_trips(addr: SocketAddr, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut s = connect(addr, b'E').await?;
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack).await?;
    let msg = [0x42u8; 64];
    let mut back = [0u8; 64];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    Ok((at(&samples, 0.5), at(&samples, 0.99)))
}

/// An echo connection that has answered its mode byte, so the stream behind it is open.
pub async fn open_echo(addr: SocketAddr, within: Duration) -> anyhow::Result<TcpStream> {
    tokio::time::timeout(within, async {
        let mut s = connect(addr, b'E').await?;
        let mut ack = [0u8; 1];
        s.read_exact(&mut ack).await?;
        anyhow::ensure!(ack == *b"E", "the target did not answer");
        Ok(s)
    })
    .await
    .map_err(|_| anyhow::anyhow!("no echo stream within {within:?}"))?
}

/// Sends `payload` on `s` and reads it back: whether every byte came back the same.
pub async fn echo_identical(s: &mut TcpStream, payload: &[u8]) -> anyhow::Result<bool> {
    let (mut r, mut w) = s.split();
    let mut back = vec![0u8; payload.len()];
    let (written, read) = tokio::join!(w.write_all(payload), r.read_exact(&mut back));
    written?;
    read?;
    Ok(back == payload)
}
