//! The target server and the measurements made through every path.

use std::time::Instant;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The server at the end of every path. First byte of a connection picks the mode:
/// `E` echoes everything; `S` discards until EOF, then answers the byte count (8 bytes).
#[derive(Debug)]
pub struct Target {
    pub port: u16,
}

impl Target {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let _ = conn.set_nodelay(true);
                tokio::spawn(async move {
                    let mut mode = [0u8; 1];
                    if conn.read_exact(&mut mode).await.is_err() {
                        return;
                    }
                    let mut buf = vec![0u8; 256 * 1024];
                    match mode[0] {
                        b'E' => {
                            let _ = conn.write_all(b"E").await;
                            while let Ok(n) = conn.read(&mut buf).await {
                                if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                        _ => {
                            let mut total = 0u64;
                            while let Ok(n) = conn.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                                total += n as u64;
                            }
                            let _ = conn.write_all(&total.to_be_bytes()).await;
                        }
                    }
                });
            }
        });
        Ok(Self { port })
    }
}

async fn connect(port: u16) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One-way bulk: write `mib` MiB, half-close, wait for the target's byte count. MB/s.
pub async fn throughput(port: u16, mib: usize) -> anyhow::Result<f64> {
    let mut s = connect(port).await?;
    s.write_all(b"S").await?;
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

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Sequential 64-byte request/response on one connection: p50 and p99 in microseconds.
pub async fn round_trips(port: u16, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut s = connect(port).await?;
    s.write_all(b"E").await?;
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack).await?;
    let msg = [0x42u8; 64];
    let mut back = [0u8; 64];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(percentiles(samples))
}

/// Connect, send the mode byte, wait for the first echoed byte: p50 and p99 in milliseconds.
/// Connection `i` goes to `ports[i % ports.len()]` (one port for one path; several to spread
/// the setups over several ways to the same target).
pub async fn setup(ports: &[u16], n: usize) -> anyhow::Result<(f64, f64)> {
    anyhow::ensure!(!ports.is_empty(), "no port to set up streams through");
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let mut s = connect(ports[i % ports.len()]).await?;
        s.write_all(b"E").await?;
        let mut ack = [0u8; 1];
        s.read_exact(&mut ack).await?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(percentiles(samples))
}

/// Streams (connections) per second that `workers` clients sustain for `seconds`, each one
/// connect, mode byte, first echoed byte, close. Every one must succeed. Worker `i` uses
/// `ports[i % ports.len()]`.
pub async fn initiation_rate(ports: &[u16], workers: usize, seconds: f64) -> anyhow::Result<f64> {
    anyhow::ensure!(!ports.is_empty(), "no port to set up streams through");
    let started = Instant::now();
    let deadline = started + std::time::Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(workers);
    for i in 0..workers {
        let port = ports[i % ports.len()];
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let mut s = connect(port).await?;
                s.write_all(b"E").await?;
                let mut ack = [0u8; 1];
                s.read_exact(&mut ack).await?;
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0u64;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
