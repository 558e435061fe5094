//! Slowloris on every listener: thousands of connections from attacker addresses that open and
//! then stall, at each stage where a server may wait (TCP open, TLS started, TLS done, request
//! headers or CONNECT trickled a byte every 2 s, WebSocket upgraded and silent). Measures when
//! the hub closes each one against its deadline, while the legitimate clients run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

use crate::attacker::{self, Sources};
use crate::legit::Legit;
use crate::row::{Latencies, Row, secs};

/// The hub's deadlines (its defaults), measured from TCP accept.
pub const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// HTTP request headers (hyper's `header_read_timeout`), after the TLS handshake.
pub const HEADER_READ: Duration = Duration::from_secs(30);
/// MQTT: TCP accept to a complete CONNECT, TLS included (README, `MqttConfig`).
pub const MQTT_CONNECT: Duration = Duration::from_secs(10);
/// Between trickled bytes.
const TRICKLE: Duration = Duration::from_secs(2);

/// Which listener a variant attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// HTTPS (REST).
    Https,
    /// MQTT over TLS.
    MqttTls,
    /// MQTT over WebSocket (HTTPS port, `/$iothub/websocket`).
    MqttWs,
    /// The streaming gateway (HTTPS port, `/bridges/...`).
    Gateway,
}

impl Listener {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::MqttTls => "mqtt-tls",
            Self::MqttWs => "mqtt-ws",
            Self::Gateway => "gateway",
        }
    }
}

/// How a connection stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// TCP open, nothing sent.
    TcpSilent,
    /// TLS ClientHello sent, nothing more.
    TlsStalled,
    /// TLS done, nothing sent.
    TlsSilent,
    /// TLS done, the request line and headers (or MQTT CONNECT) a byte every 2 s.
    Trickle,
    /// MQTT: TLS started only after 8 s, then CONNECT trickled: the deadline counts from
    /// accept, TLS included.
    LateTlsTrickle,
    /// HTTP: complete headers, then the body a byte every 2 s (slow POST), no valid token.
    BodyTrickle,
    /// WebSocket upgraded (MQTT over WebSocket), then silent.
    UpgradedSilent,
    /// WebSocket upgraded, then CONNECT a byte every 2 s, one WebSocket message each.
    UpgradedTrickle,
    /// An upgrade refused (bad bearer token: 401), then the connection kept idle.
    RefusedIdle,
}

impl Stall {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::TcpSilent => "tcp-silent",
            Self::TlsStalled => "tls-stalled",
            Self::TlsSilent => "tls-silent",
            Self::Trickle => "trickle",
            Self::LateTlsTrickle => "late-tls+trickle",
            Self::BodyTrickle => "body-trickle",
            Self::UpgradedSilent => "upgraded-silent",
            Self::UpgradedTrickle => "upgraded-trickle",
            Self::RefusedIdle => "refused-idle",
        }
    }
}

/// The variants attacked, per listener, with the deadline each must be closed by.
pub fn variants(listener: Listener) -> Vec<(Stall, Duration)> {
    let http = HEADER_READ;
    match listener {
        Listener::Https => vec![
            (Stall::TcpSilent, TLS_HANDSHAKE),
            (Stall::TlsStalled, TLS_HANDSHAKE),
            (Stall::TlsSilent, http),
            (Stall::Trickle, http),
            (Stall::BodyTrickle, http),
        ],
        Listener::MqttTls => vec![
            (Stall::TcpSilent, MQTT_CONNECT),
            (Stall::TlsStalled, MQTT_CONNECT),
            (Stall::TlsSilent, MQTT_CONNECT),
            (Stall::Trickle, MQTT_CONNECT),
            (Stall::LateTlsTrickle, MQTT_CONNECT),
        ],
        Listener::MqttWs => vec![
            (Stall::Trickle, http),
            (Stall::UpgradedSilent, MQTT_CONNECT),
            (Stall::UpgradedTrickle, MQTT_CONNECT),
        ],
        Listener::Gateway => vec![(Stall::Trickle, http), (Stall::RefusedIdle, http)],
    }
}

/// What one attacker connection saw.
#[derive(Debug, Clone, Copy)]
pub enum Held {
    /// The hub closed it this long after TCP connect.
    ClosedAfter(Duration),
    /// Still open when the attacker gave up.
    StillOpen,
    /// The attack could not be set up (connect refused, handshake failed early).
    NotOpened,
}

/// Everything needed to open attacker connections.
#[derive(Clone)]
pub struct Target {
    /// HTTPS port.
    pub https: SocketAddr,
    /// MQTT over TLS port.
    pub mqtt: SocketAddr,
    /// TLS to the hub.
    pub tls: TlsConnector,
    /// A ClientHello to send and stall after.
    pub hello: Arc<Vec<u8>>,
    /// Attacker addresses.
    pub sources: Arc<Sources>,
}

impl Target {
    /// How many attacker addresses there are.
    pub fn sources_count(&self) -> u32 {
        self.sources.count()
    }
}

/// Reads until the peer closes (EOF or error) or `cap` passes; true when it closed.
async fn wait_close<S: AsyncRead + Unpin>(io: &mut S, cap: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(cap, async {
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Writes `bytes` one every 2 s (then repeats the last one) until the peer closes or `cap`
/// passes; true when it closed.
async fn trickle<S: AsyncRead + AsyncWrite + Unpin>(io: S, bytes: &[u8], cap: Duration) -> bool {
    let (mut r, mut w) = tokio::io::split(io);
    let writer = async {
        let mut i = 0;
        loop {
            let b = bytes[i.min(bytes.len() - 1)];
            if w.write_all(&[b]).await.is_err() || w.flush().await.is_err() {
                // A failed write means the hub has closed: let the reader see it.
                std::future::pending::<()>().await;
            }
            i += 1;
            tokio::time::sleep(TRICKLE).await;
        }
    };
    tokio::select! {
        closed = wait_close(&mut r, cap) => closed,
        () = writer => false,
    }
}

/// The start of an MQTT CONNECT that announces 200 bytes and never finishes.
fn connect_prefix() -> Vec<u8> {
    let mut v = vec![0x10, 0xc8, 0x01, 0x00, 0x04];
    v.extend_from_slice(b"MQTT");
    v.extend_from_slice(&[0x04, 0xc2, 0x00, 0x3c, 0x00, 0x10]);
    v.extend_from_slice(b"slowloris-device");
    v
}

fn http_request(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    )
    .into_bytes()
}

/// One attacker connection of `stall` against `listener`.
pub async fn one(t: Target, listener: Listener, stall: Stall, cap: Duration) -> Held {
    let to = if listener == Listener::MqttTls {
        t.mqtt
    } else {
        t.https
    };
    let Ok(mut tcp) = attacker::tcp_from(t.sources.pick(), to).await else {
        return Held::NotOpened;
    };
    let started = Instant::now();
    let closed = |ok: bool| {
        if ok {
            Held::ClosedAfter(started.elapsed())
        } else {
            Held::StillOpen
        }
    };
    match stall {
        Stall::TcpSilent => closed(wait_close(&mut tcp, cap).await),
        Stall::TlsStalled => {
            if tcp.write_all(&t.hello).await.is_err() {
                return Held::NotOpened;
            }
            closed(wait_close(&mut tcp, cap).await)
        }
        Stall::LateTlsTrickle => {
            tokio::time::sleep(Duration::from_secs(8)).await;
            match attacker::tls_over(&t.tls, tcp).await {
                Ok(tls) => closed(trickle(tls, &connect_prefix(), cap).await),
                // Closed during the handshake: still a close by the hub.
                Err(_) => Held::ClosedAfter(started.elapsed()),
            }
        }
        _ => {
            let Ok(mut tls) = attacker::tls_over(&t.tls, tcp).await else {
                return Held::NotOpened;
            };
            match (listener, stall) {
                (_, Stall::TlsSilent) => closed(wait_close(&mut tls, cap).await),
                (Listener::MqttTls, Stall::Trickle) => {
                    closed(trickle(tls, &connect_prefix(), cap).await)
                }
                (Listener::Https, Stall::Trickle) => {
                    closed(trickle(tls, &http_request("/devices", ""), cap).await)
                }
                (Listener::MqttWs, Stall::Trickle) => {
                    let req = http_request(
                        "/$iothub/websocket",
                        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: mqtt\r\n",
                    );
                    closed(trickle(tls, &req, cap).await)
                }
                (Listener::Gateway, Stall::Trickle) => {
                    let req = http_request(
                        "/bridges/0123456789abcdef/device",
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n",
                    );
                    closed(trickle(tls, &req, cap).await)
                }
                (_, Stall::BodyTrickle) => {
                    let head = "PUT /devices/slow?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\nAuthorization: SharedAccessSignature sr=x&sig=y&se=1&skn=z\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
                    if tls.write_all(head.as_bytes()).await.is_err() {
                        return Held::NotOpened;
                    }
                    let _ = tls.flush().await;
                    closed(trickle(tls, b"{\"deviceId\":\"slow\"", cap).await)
                }
                (_, Stall::RefusedIdle) => {
                    let req = "GET /bridges/0123456789abcdef/device HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer not-a-token\r\n\r\n";
                    if tls.write_all(req.as_bytes()).await.is_err() {
                        return Held::NotOpened;
                    }
                    let _ = tls.flush().await;
                    closed(wait_close(&mut tls, cap).await)
                }
                (_, Stall::UpgradedSilent | Stall::UpgradedTrickle) => {
                    upgraded(tls, t.https, stall, cap, started).await
                }
                _ => Held::NotOpened,
            }
        }
    }
}

/// MQTT over WebSocket: upgrade, then stay silent or trickle CONNECT.
async fn upgraded<S: AsyncRead + AsyncWrite + Unpin>(
    tls: S,
    https: SocketAddr,
    stall: Stall,
    cap: Duration,
    started: Instant,
) -> Held {
    let Ok(uri) =
        format!("wss://localhost:{}/$iothub/websocket", https.port()).parse::<http::Uri>()
    else {
        return Held::NotOpened;
    };
    let builder = match tokio_websockets::ClientBuilder::from_uri(uri).add_header(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static("mqtt"),
    ) {
        Ok(b) => b,
        Err(_) => return Held::NotOpened,
    };
    let Ok((ws, _)) = builder.connect_on(tls).await else {
        return Held::NotOpened;
    };
    let (mut tx, mut rx) = ws.split();
    let reader = async {
        loop {
            match rx.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(m)) if m.is_close() => return,
                Some(Ok(_)) => {}
            }
        }
    };
    let writer = async {
        if stall == Stall::UpgradedSilent {
            return std::future::pending::<()>().await;
        }
        for b in connect_prefix().into_iter().cycle() {
            if tx
                .send(tokio_websockets::Message::binary(vec![b]))
                .await
                .is_err()
            {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(TRICKLE).await;
        }
    };
    let closed = tokio::time::timeout(cap, async {
        tokio::select! {
            () = reader => true,
            () = writer => false,
        }
    })
    .await
    .unwrap_or(false);
    if closed {
        Held::ClosedAfter(started.elapsed())
    } else {
        Held::StillOpen
    }
}

/// Holds `per_variant` connections of every variant of each of `listeners` at once (opened
/// 200 at a time) while the legitimate clients run; one row per variant, and one for the
/// legitimate clients, quoting `quiet`.
pub async fn attack(
    target: &Target,
    legit: &Legit,
    listeners: &[Listener],
    per_variant: usize,
    quiet: &str,
) -> Vec<Row> {
    let variants: Vec<(Listener, Stall, Duration)> = listeners
        .iter()
        .flat_map(|&l| variants(l).into_iter().map(move |(s, d)| (l, s, d)))
        .collect();
    let opening = Arc::new(Semaphore::new(200));
    let work = async {
        let mut all = Vec::new();
        for &(listener, stall, deadline) in &variants {
            let mut tasks = Vec::with_capacity(per_variant);
            for _ in 0..per_variant {
                let (t, opening) = (target.clone(), opening.clone());
                let cap = deadline + Duration::from_secs(15);
                tasks.push(tokio::spawn(async move {
                    // Hold the opening permit only while connecting: the stall itself is not
                    // limited.
                    let permit = opening.acquire_owned().await;
                    let held = tokio::spawn(one(t, listener, stall, cap));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    drop(permit);
                    held.await.unwrap_or(Held::NotOpened)
                }));
            }
            all.push((listener, stall, deadline, tasks));
        }
        let mut results = Vec::new();
        for (listener, stall, deadline, tasks) in all {
            let mut held = Vec::with_capacity(tasks.len());
            for t in tasks {
                held.push(t.await.unwrap_or(Held::NotOpened));
            }
            results.push((listener, stall, deadline, held));
        }
        results
    };
    let (results, report) = legit.during(work).await;
    let mut rows = Vec::new();
    for (listener, stall, deadline, held) in results {
        let mut closed = Latencies::default();
        let (mut open, mut not_opened) = (0, 0);
        for h in &held {
            match h {
                Held::ClosedAfter(d) => closed.add(*d),
                Held::StillOpen => open += 1,
                Held::NotOpened => not_opened += 1,
            }
        }
        let p50 = closed.quantile_ms(0.5).unwrap_or(0.0) / 1000.0;
        let max = closed.quantile_ms(1.0).unwrap_or(0.0) / 1000.0;
        let late = max > deadline.as_secs_f64() + 2.0;
        rows.push(Row {
            scenario: "slowloris",
            load: format!("{per_variant} conns x {} variants", variants.len()),
            tried: format!("{} {}", listener.name(), stall.name()),
            outcome: format!(
                "closed {} (p50 {p50:.1} s, max {max:.1} s), open at cap {open}, not opened {not_opened}",
                closed.count()
            ),
            figure: format!("deadline {}", secs(deadline)),
            pass: open == 0 && not_opened == 0 && !late,
        });
    }
    let names: Vec<&str> = listeners.iter().map(|l| l.name()).collect();
    rows.push(Row {
        scenario: "slowloris",
        load: format!("{} attacked", names.join(", ")),
        tried: "legitimate clients meanwhile".into(),
        outcome: report.summary(),
        figure: format!("quiet: {quiet}"),
        pass: report.failures() == 0,
    });
    rows
}
