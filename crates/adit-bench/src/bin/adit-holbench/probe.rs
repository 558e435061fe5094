//! One measurement: a link in one arrangement, an echo connection and (loaded) a bulk one.

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
    AditMux,
    Separate,
    Fifo,
}

impl Arrangement {
    pub fn name(self) -> &'static str {
        match self {
            Self::AditMux => "adit mux",
            Self::Separate => "separate TCP",
            Self::Fifo => "fifo mux (no fairness)",
        }
    }
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

/// Reads and drops everything.
async fn bulk_sink<S: AsyncRead + Unpin>(mut conn: S) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = conn.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Measures `arrangement`, with a bulk transfer beside the round trips when `loaded`.
pub async fn measure(
    arrangement: Arrangement,
    loaded: bool,
    n: usize,
    window: u32,
) -> anyhow::Result<(f64, f64)> {
    let settings = Settings {
        initial_window: window,
        ..Settings::default()
    };
    match arrangement {
        Arrangement::AditMux => {
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
                tasks.push(tokio::spawn(bulk_sink(sink)));
                // Let the bulk transfer fill the link first.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            let result = round_trips(&mut rtt, n).await;
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
                tasks.push(tokio::spawn(bulk_sink(sink)));
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            let result = round_trips(&mut rtt, n).await;
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
                tasks.push(tokio::spawn(bulk_sink(far.conn(2))));
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            let result = round_trips(&mut rtt, n).await;
            for t in tasks {
                t.abort();
            }
            near.close();
            far.close();
            result
        }
    }
}
