//! One measurement: a link in one arrangement, an echo connection and (loaded) a bulk one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use adit_stream_protocol::{Role, Settings};
use adit_transport::mux_session::MuxSession;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::fifo;

/// `TCP_NOTSENT_LOWAT` of every socket of the bench, in bytes: one DATA frame.
const NOTSENT_LOWAT: u32 = 16 * 1024;

/// How the two connections share the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrangement {
    /// One `adit.stream.v1` session with the default settings: the receive window starts at
    /// 64 KiB and adapts to the path.
    AditMux,
    /// One `adit.stream.v1` session whose receive window is fixed at this many bytes.
    AditMuxFixed(u32),
    Separate,
    Fifo,
}

impl Arrangement {
    pub fn name(self) -> String {
        match self {
            Self::AditMux => "adit mux, adaptive window".into(),
            Self::AditMuxFixed(w) if w % 1024 == 0 => {
                format!("adit mux, fixed {} KiB window", w / 1024)
            }
            Self::AditMuxFixed(w) => format!("adit mux, fixed {w} B window"),
            Self::Separate => "separate TCP".into(),
            Self::Fifo => "fifo mux (no fairness)".into(),
        }
    }
}

/// One measurement's results.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Round-trip time, median, in µs.
    pub p50: f64,
    /// Round-trip time, 99th percentile, in µs.
    pub p99: f64,
    /// Bytes per second the bulk connection moved while the round trips ran (loaded only).
    pub bulk: Option<f64>,
    /// The bulk receiver's window at the end, in bytes (Adit mux, loaded only).
    pub window: Option<u32>,
}

/// Two connected loopback sockets.
async fn tcp_pair() -> anyhow::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (a, (b, _)) = (a?, b?);
    for s in [&a, &b] {
        s.set_nodelay(true)?;
        // Unsent bytes wait in the process, not the kernel: what a multiplexer schedules is
        // what goes out next (as HTTP/2 servers do for their priorities).
        socket2::SockRef::from(s).set_tcp_notsent_lowat(NOTSENT_LOWAT)?;
    }
    Ok((a, b))
}

/// Round trips of 64 bytes on `conn` (echoed by the far side): (p50, p99) in µs.
async fn round_trips<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut S,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let msg = [0x5au8; 64];
    let mut back = [0u8; 64];
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        conn.write_all(&msg).await?;
        conn.read_exact(&mut back).await?;
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtts.sort_by(f64::total_cmp);
    let at = |q: f64| rtts[((rtts.len() as f64 - 1.0) * q) as usize];
    Ok((at(0.5), at(0.99)))
}

/// Echoes until the peer closes.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut conn: S) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = conn.read(&mut buf).await {
        if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// Writes as fast as the connection takes bytes until it fails.
async fn bulk_source<S: AsyncWrite + Unpin>(mut conn: S) {
    let chunk = vec![0xb5u8; 64 * 1024];
    while conn.write_all(&chunk).await.is_ok() {}
}

/// Reads and drops everything, counting it in `total`.
async fn bulk_sink<S: AsyncRead + Unpin>(mut conn: S, total: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = conn.read(&mut buf).await {
        if n == 0 {
            break;
        }
        total.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Round trips on `conn` while `total` counts the bulk bytes: the latencies and the bulk
/// bytes per second over the same time.
async fn timed<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut S,
    n: usize,
    total: &AtomicU64,
    loaded: bool,
) -> anyhow::Result<Measured> {
    let (start, before) = (Instant::now(), total.load(Ordering::Relaxed));
    let (p50, p99) = round_trips(conn, n).await?;
    let moved = total.load(Ordering::Relaxed) - before;
    Ok(Measured {
        p50,
        p99,
        bulk: loaded.then(|| moved as f64 / start.elapsed().as_secs_f64()),
        window: None,
    })
}

/// Measures `arrangement`, with a bulk transfer beside the round trips when `loaded`.
pub async fn measure(arrangement: Arrangement, loaded: bool, n: usize) -> anyhow::Result<Measured> {
    let total = Arc::new(AtomicU64::new(0));
    match arrangement {
        Arrangement::AditMux | Arrangement::AditMuxFixed(_) => {
            let settings = match arrangement {
                Arrangement::AditMuxFixed(window) => Settings::fixed(window),
                _ => Settings::default(),
            };
            let (a, b) = tcp_pair().await?;
            let service = MuxSession::start(a, Role::Service, settings);
            let mut device = MuxSession::start(b, Role::Device, settings);
            let mut rtt = service
                .open(Bytes::new())
                .await
                .ok_or_else(|| anyhow::anyhow!("open"))?;
            let (far, _) = device
                .accept()
                .await
                .ok_or_else(|| anyhow::anyhow!("accept"))?;
            let echoing = tokio::spawn(echo(far));
            let mut tasks = vec![echoing];
            if loaded {
                let bulk = service
                    .open(Bytes::new())
                    .await
                    .ok_or_else(|| anyhow::anyhow!("open"))?;
                let (sink, _) = device
                    .accept()
                    .await
                    .ok_or_else(|| anyhow::anyhow!("accept"))?;
                tasks.push(tokio::spawn(bulk_source(bulk)));
                tasks.push(tokio::spawn(bulk_sink(sink, total.clone())));
                // Let the bulk transfer fill the link first (and the window adapt).
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            let mut result = timed(&mut rtt, n, &total, loaded).await;
            if let Ok(m) = &mut result {
                m.window = loaded.then(|| device.stats().window);
            }
            service.close();
            device.close();
            for t in tasks {
                t.abort();
            }
            result
        }
        Arrangement::Separate => {
            let (mut rtt, far) = tcp_pair().await?;
            let mut tasks = vec![tokio::spawn(echo(far))];
            if loaded {
                let (bulk, sink) = tcp_pair().await?;
                tasks.push(tokio::spawn(bulk_source(bulk)));
                tasks.push(tokio::spawn(bulk_sink(sink, total.clone())));
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            let result = timed(&mut rtt, n, &total, loaded).await;
            for t in tasks {
                t.abort();
            }
            result
        }
        Arrangement::Fifo => {
            let (a, b) = tcp_pair().await?;
            let (near, far) = (fifo::Fifo::start(a), fifo::Fifo::start(b));
            let mut rtt = near.conn(1);
            let mut tasks = vec![tokio::spawn(echo(far.conn(1)))];
            if loaded {
                tasks.push(tokio::spawn(bulk_source(near.conn(2))));
                tasks.push(tokio::spawn(bulk_sink(far.conn(2), total.clone())));
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            let result = timed(&mut rtt, n, &total, loaded).await;
            for t in tasks {
                t.abort();
            }
            near.close();
            far.close();
            result
        }
    }
}
