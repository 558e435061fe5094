//! Hub memory per concurrently open, idle stream.

use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use adit_bench::rss::rss_kib;

/// Opens `n` streams through the service proxy on `port` (each one answered end to end by the
/// target, so both halves are relaying), leaves them idle, and returns the hub's RSS growth
/// per stream in KiB.
pub async fn hub_kib_per_stream(hub_pid: u32, port: u16, n: usize) -> anyhow::Result<f64> {
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = rss_kib(hub_pid)?;
    let gate = Arc::new(Semaphore::new(32));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
            s.write_all(b"E").await?;
            let mut ack = [0u8; 1];
            s.read_exact(&mut ack).await?;
            anyhow::Ok(s)
        }));
    }
    let mut open = Vec::with_capacity(n);
    for t in tasks {
        open.push(t.await??);
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let after = rss_kib(hub_pid)?;
    drop(open);
    Ok((after - before) / n as f64)
}
