//! Oversize and lying input on every decoder of remote bytes: MQTT packets past the size
//! limit, remaining lengths that lie (claim much, send little, stall; or claim more than MQTT
//! allows; or never end), WebSocket frames past the gateway's frame limit, endless
//! continuation frames, REST bodies and headers past their limits. Each must get its protocol's
//! error and a log line, while the hub's memory stays flat and the legitimate stream echoes on.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Connect, Login, Packet, Publish};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_websockets::Message;

use crate::attacker;
use crate::fleet::Fleet;
use crate::row::{Latencies, Row, secs};
use crate::slowloris::Target;

/// The hub's limits (defaults).
const MAX_PACKET: usize = 256 * 1024;
const MAX_FRAME: usize = 1024 * 1024;

/// What the hub answered one bad input with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Closed the connection, after this long.
    Closed(Duration),
    /// Sent this (a CONNACK code, an HTTP status, a close code) and closed.
    Said(String, Duration),
    /// Nothing within the cap.
    Nothing,
    /// The attack could not be made.
    Failed(String),
}

impl Answer {
    fn label(&self) -> String {
        match self {
            Self::Closed(_) => "closed".into(),
            Self::Said(s, _) => s.clone(),
            Self::Nothing => "nothing (still open)".into(),
            Self::Failed(e) => format!("attack failed: {e}"),
        }
    }

    fn after(&self) -> Option<Duration> {
        match self {
            Self::Closed(d) | Self::Said(_, d) => Some(*d),
            _ => None,
        }
    }
}

fn encode(packet: Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    // The encoder's own limit is set high: these packets are meant to be too big.
    let _ = packet.write(&mut out, 1 << 30);
    out.to_vec()
}

/// Reads what the hub says until it closes: the first MQTT packet's CONNACK code, if any.
async fn mqtt_answer<S: AsyncRead + Unpin>(io: &mut S, started: Instant, cap: Duration) -> Answer {
    let mut buf = BytesMut::new();
    let read = tokio::time::timeout(cap, async {
        let mut said = None;
        loop {
            if said.is_none()
                && let Ok(Packet::ConnAck(c)) = Packet::read(&mut buf, 1 << 20)
            {
                said = Some(format!("CONNACK {:?}", c.code));
            }
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return said,
                Ok(_) => {}
            }
        }
    })
    .await;
    match read {
        Ok(Some(s)) => Answer::Said(s, started.elapsed()),
        Ok(None) => Answer::Closed(started.elapsed()),
        Err(_) => Answer::Nothing,
    }
}

/// Sends `bytes` on a fresh MQTT/TLS connection from an attacker address and waits for the
/// hub's answer.
async fn mqtt_raw(t: &Target, bytes: &[u8], cap: Duration) -> Answer {
    let tcp = match attacker::tcp_from(t.sources.pick(), t.mqtt).await {
        Ok(s) => s,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let mut tls = match attacker::tls_over(&t.tls, tcp).await {
        Ok(s) => s,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let started = Instant::now();
    // The hub may close before taking it all: that is an answer, not a failure.
    let _ = tls.write_all(bytes).await;
    let _ = tls.flush().await;
    mqtt_answer(&mut tls, started, cap).await
}

fn big_connect(fleet: &Fleet) -> Vec<u8> {
    let mut c = Connect::new("big-connect");
    c.keep_alive = 60;
    c.login = Some(Login::new(
        fleet.username("big-connect"),
        "x".repeat(MAX_PACKET + 1024),
    ));
    encode(Packet::Connect(c))
}

/// A device that connects properly, then publishes past the limit.
async fn mqtt_big_publish(fleet: &Fleet, device: &crate::fleet::DeviceCreds) -> Answer {
    let tls = attacker::connector(&fleet.ca);
    let tcp = match attacker::tcp_from(std::net::Ipv4Addr::new(127, 0, 0, 1), fleet.mqtt).await {
        Ok(s) => s,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let mut io = match attacker::tls_over(&tls, tcp).await {
        Ok(s) => s,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let mut c = Connect::new(device.id.as_str());
    c.keep_alive = 60;
    c.login = Some(Login::new(
        fleet.username(&device.id),
        fleet.device_token(&device.id, &device.key, adit_hub::auth::unix_now() + 3600),
    ));
    let _ = io.write_all(&encode(Packet::Connect(c))).await;
    let mut buf = BytesMut::new();
    let mut connack = false;
    while !connack {
        match io.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Answer::Failed("no CONNACK".into()),
            Ok(_) => connack = matches!(Packet::read(&mut buf, 1 << 20), Ok(Packet::ConnAck(_))),
        }
    }
    let topic = format!("devices/{}/messages/events/", device.id);
    let publish = Publish::new(topic, QoS::AtMostOnce, vec![0u8; MAX_PACKET + 1024]);
    let started = Instant::now();
    let _ = io.write_all(&encode(Packet::Publish(publish))).await;
    let _ = io.flush().await;
    mqtt_answer(&mut io, started, Duration::from_secs(20)).await
}

/// MQTT over WebSocket: one WebSocket message past the hub's limit for it.
async fn mqtt_ws_big_message(t: &Target) -> Answer {
    let tcp = match attacker::tcp_from(t.sources.pick(), t.https).await {
        Ok(s) => s,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let tls = match attacker::tls_over(&t.tls, tcp).await {
        Ok(s) => s,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let Ok(uri) =
        format!("wss://localhost:{}/$iothub/websocket", t.https.port()).parse::<http::Uri>()
    else {
        return Answer::Failed("URI".into());
    };
    let builder = match tokio_websockets::ClientBuilder::from_uri(uri).add_header(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static("mqtt"),
    ) {
        Ok(b) => b,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let (ws, _) = match builder.connect_on(tls).await {
        Ok(w) => w,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    ws_answer(ws, vec![0x10; MAX_PACKET + 4096], None).await
}

/// Sends `message` (split into `frame_size` frames, if given) and reads the hub's close.
async fn ws_answer<S: AsyncRead + AsyncWrite + Unpin>(
    ws: tokio_websockets::WebSocketStream<S>,
    message: Vec<u8>,
    _frame_size: Option<usize>,
) -> Answer {
    let (mut tx, mut rx) = ws.split();
    let started = Instant::now();
    let send = async {
        let _ = tx.send(Message::binary(message)).await;
        std::future::pending::<()>().await;
    };
    let read = async {
        loop {
            match rx.next().await {
                Some(Ok(m)) if m.is_close() => {
                    let code = m.as_close().map(|(c, _)| u16::from(c));
                    return Answer::Said(
                        format!("close {}", code.map_or("none".into(), |c| c.to_string())),
                        started.elapsed(),
                    );
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return Answer::Closed(started.elapsed()),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        tokio::select! {
            a = read => a,
            () = send => Answer::Nothing,
        }
    })
    .await
    .unwrap_or(Answer::Nothing)
}

/// A stream to the legitimate echo device, its service half joined by `frame_size` frames.
async fn service_half(
    fleet: &Fleet,
    frame_size: usize,
) -> anyhow::Result<
    tokio_websockets::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
> {
    let (url, token) = initiate(fleet).await?;
    let uri: http::Uri = url.parse()?;
    let tcp = attacker::tcp_from(std::net::Ipv4Addr::new(127, 0, 0, 1), fleet.https).await?;
    let tls = attacker::tls_over(&attacker::connector(&fleet.ca), tcp).await?;
    let config = tokio_websockets::Config::default().frame_size(frame_size);
    let (ws, _) = tokio_websockets::ClientBuilder::from_uri(uri)
        .config(config)
        .add_header(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {token}"))?,
        )?
        .connect_on(tls)
        .await?;
    Ok(ws)
}

/// `POST /twins/legit-echo-0/streams/echo`: the service half's URL and token.
pub async fn initiate(fleet: &Fleet) -> anyhow::Result<(String, String)> {
    let resp = adit_testkit::https_client(&fleet.ca)
        .post(format!(
            "https://localhost:{}/twins/legit-echo-0/streams/echo?api-version=2020-09-30",
            fleet.https.port()
        ))
        .header(
            "Authorization",
            fleet.owner_token(adit_hub::auth::unix_now() + 3600)?,
        )
        .send()
        .await?;
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let url = header("iothub-streaming-url").ok_or_else(|| anyhow::anyhow!("no URL"))?;
    let token = header("iothub-streaming-auth-token").ok_or_else(|| anyhow::anyhow!("no token"))?;
    Ok((url, token))
}

/// A raw HTTP/1.1 request over TLS from an attacker address; the status line's code.
async fn http_raw(t: &Target, head: &[u8], body: &[u8]) -> Answer {
    let tcp = match attacker::tcp_from(t.sources.pick(), t.https).await {
        Ok(s) => s,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let mut tls = match attacker::tls_over(&t.tls, tcp).await {
        Ok(s) => s,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let started = Instant::now();
    let (mut r, mut w) = tokio::io::split(&mut tls);
    let write = async {
        let _ = w.write_all(head).await;
        let _ = w.write_all(body).await;
        let _ = w.flush().await;
        std::future::pending::<()>().await;
    };
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
        let text = String::from_utf8_lossy(&got);
        match text.split_whitespace().nth(1) {
            Some(code) => Answer::Said(format!("HTTP {code}"), started.elapsed()),
            None => Answer::Closed(started.elapsed()),
        }
    };
    tokio::time::timeout(Duration::from_secs(40), async {
        tokio::select! {
            a = read => a,
            () = write => Answer::Nothing,
        }
    })
    .await
    .unwrap_or(Answer::Nothing)
}

/// Runs `attempt` `n` times, `concurrency` at a time; tallies answers by label and times.
async fn repeat<F, Fut>(
    n: usize,
    concurrency: usize,
    attempt: F,
) -> (Vec<(String, usize)>, Latencies)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    use futures_util::stream::StreamExt as _;
    let answers: Vec<Answer> = futures_util::stream::iter((0..n).map(|_| attempt()))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut labels: Vec<(String, usize)> = Vec::new();
    let mut times = Latencies::default();
    for a in &answers {
        let l = a.label();
        match labels.iter_mut().find(|(k, _)| *k == l) {
            Some((_, c)) => *c += 1,
            None => labels.push((l, 1)),
        }
        match a.after() {
            Some(d) => times.add(d),
            None => times.failures += 1,
        }
    }
    (labels, times)
}

/// Runs `work` while sampling the hub's RSS; its output and the peak RSS in KiB.
async fn with_peak<T>(fleet: &Fleet, work: impl std::future::Future<Output = T>) -> (T, f64) {
    let mut peak = fleet.rss_kib();
    let sampler = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            peak = peak.max(fleet.rss_kib());
        }
    };
    let out = tokio::select! {
        out = work => out,
        () = sampler => unreachable!("the sampler never ends"),
    };
    (out, peak)
}

fn tally(labels: &[(String, usize)]) -> String {
    labels
        .iter()
        .map(|(l, c)| format!("{c}x {l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything of scenario (b), with the hub's RSS and the legitimate clients around it.
pub async fn run(
    fleet: &Fleet,
    target: &Target,
    legit: &crate::legit::Legit,
    n: usize,
) -> anyhow::Result<Vec<Row>> {
    // One device per attempt: attempts with one client id would take over each other.
    let publishers = fleet.create_devices("oversize-pub", n.min(50)).await?;
    let next_publisher = std::sync::atomic::AtomicUsize::new(0);
    let quiet = legit.quiet(Duration::from_secs(3)).await;
    let rss_before = fleet.rss_kib();
    let logs_before = |needle: &str| fleet.log_count(needle);
    let bad_connect_logs = logs_before("bad CONNECT");
    let deadline_logs = logs_before("no CONNECT within the deadline");
    let violation_logs = logs_before("protocol violation");
    let mut rss_peak = rss_before;
    let work = async {
        let mut rows = Vec::new();
        let mut row =
            |tried: &str, expect: &str, labels: Vec<(String, usize)>, t: Latencies, ok: bool| {
                rows.push(Row {
                    scenario: "oversize",
                    load: format!("{n} attempts"),
                    tried: tried.into(),
                    outcome: tally(&labels),
                    figure: format!("expect {expect}; answered in p50/p99 {}", t.summary()),
                    pass: ok && t.failures == 0,
                });
            };
        let all = |labels: &[(String, usize)], want: &str| labels.iter().all(|(l, _)| l == want);

        let big = big_connect(fleet);
        let (l, t) = repeat(n, 50, || mqtt_raw(target, &big, Duration::from_secs(20))).await;
        let ok = all(&l, "closed");
        row(
            "MQTT CONNECT of 257 KiB (limit 256 KiB)",
            "close at once",
            l,
            t,
            ok,
        );

        let (l, t) = repeat(n.min(50), 10, || {
            let i = next_publisher.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            mqtt_big_publish(fleet, &publishers[i % publishers.len()])
        })
        .await;
        let ok = l
            .iter()
            .all(|(k, _)| k == "closed" || k == "CONNACK Success");
        row(
            "MQTT PUBLISH of 257 KiB after a valid CONNECT",
            "close",
            l,
            t,
            ok,
        );

        // Remaining length 200,000 (under the limit), 20 bytes sent, then nothing.
        let mut lie = vec![0x10, 0xc0, 0x9a, 0x0c];
        lie.extend_from_slice(&[0u8; 20]);
        let (l, t) = repeat(n, n.max(1), || {
            mqtt_raw(target, &lie, Duration::from_secs(30))
        })
        .await;
        let ok = all(&l, "closed") && t.quantile_ms(1.0).unwrap_or(0.0) < 12_500.0;
        row(
            "MQTT CONNECT claiming 200,000 bytes, sending 20, stalling",
            "close at the CONNECT deadline (10 s)",
            l,
            t,
            ok,
        );

        // The largest remaining length MQTT can encode (256 MiB - 1).
        let huge = [0x10, 0xff, 0xff, 0xff, 0x7f, 0, 4];
        let (l, t) = repeat(n, 50, || mqtt_raw(target, &huge, Duration::from_secs(20))).await;
        let ok = all(&l, "closed") && t.quantile_ms(1.0).unwrap_or(0.0) < 2_000.0;
        row("MQTT CONNECT claiming 256 MiB", "close at once", l, t, ok);

        // A fifth continuation byte: not a valid remaining length.
        let varint = [0x10, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0];
        let (l, t) = repeat(n, 50, || mqtt_raw(target, &varint, Duration::from_secs(20))).await;
        let ok = all(&l, "closed") && t.quantile_ms(1.0).unwrap_or(0.0) < 2_000.0;
        row(
            "MQTT malformed remaining length (5 bytes)",
            "close at once",
            l,
            t,
            ok,
        );

        let (l, t) = repeat(n, 20, || mqtt_ws_big_message(target)).await;
        let ok = all(&l, "close 1009");
        row(
            "MQTT over WebSocket: one 260 KiB message",
            "close 1009",
            l,
            t,
            ok,
        );

        let (l, t) = repeat(n.min(50), 5, || async {
            match service_half(fleet, MAX_FRAME + 1).await {
                Ok(ws) => ws_answer(ws, vec![7u8; MAX_FRAME + 1024], None).await,
                Err(e) => Answer::Failed(e.to_string()),
            }
        })
        .await;
        let ok = all(&l, "close 1009");
        row(
            "gateway: one frame of 1 MiB + 1 KiB (limit 1 MiB)",
            "close 1009",
            l,
            t,
            ok,
        );

        let (l, t) = repeat(n.min(50), 5, || async {
            match service_half(fleet, 64).await {
                // 64 MiB in 64-byte frames: a million continuation frames.
                Ok(ws) => ws_answer(ws, vec![7u8; 64 * 1024 * 1024], Some(64)).await,
                Err(e) => Answer::Failed(e.to_string()),
            }
        })
        .await;
        let ok = all(&l, "close 1009");
        row(
            "gateway: continuation-frame flood (64-byte frames of a 64 MiB message)",
            "close 1009 past 1 MiB",
            l,
            t,
            ok,
        );

        let body = vec![b'a'; 1024 * 1024];
        let head = format!(
            "PUT /devices/too-big?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            fleet
                .owner_token(adit_hub::auth::unix_now() + 3600)
                .unwrap_or_default(),
            body.len()
        );
        let (l, t) = repeat(n, 20, || http_raw(target, head.as_bytes(), &body)).await;
        let ok = all(&l, "HTTP 413");
        row(
            "REST: 1 MiB body with a valid token (limit 64 KiB)",
            "HTTP 413",
            l,
            t,
            ok,
        );

        let head = format!(
            "GET /devices?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
            "h".repeat(64 * 1024)
        );
        let (l, t) = repeat(n, 20, || http_raw(target, head.as_bytes(), b"")).await;
        let ok = all(&l, "HTTP 431");
        row("REST: one 64 KiB header", "HTTP 431", l, t, ok);

        // Memory an unauthenticated client can pin: headers that never end, and a CONNECT
        // that claims 250 KiB and stops one byte short; all at once.
        let start = fleet.rss_kib();
        let head = format!(
            "GET /devices?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\nX-Big: {}",
            "h".repeat(390 * 1024)
        );
        let ((l, t), peak) = with_peak(
            fleet,
            repeat(n, n.max(1), || http_raw(target, head.as_bytes(), b"")),
        )
        .await;
        let ok = all(&l, "HTTP 431") && peak - start < 64.0 * 1024.0;
        rows.push(Row {
            scenario: "oversize",
            load: format!("{n} connections at once"),
            tried: "REST: 390 KiB of headers without an end, then stalling".into(),
            outcome: tally(&l),
            figure: format!(
                "RSS +{:.1} MiB while held; answered in {}",
                (peak - start) / 1024.0,
                t.summary()
            ),
            pass: ok,
        });
        let start = fleet.rss_kib();
        let mut filled = vec![0x10, 0x80, 0xd0, 0x0f];
        filled.extend(std::iter::repeat_n(0u8, 250 * 1024 - 1));
        let ((l, t), peak) = with_peak(
            fleet,
            repeat(n, n.max(1), || {
                mqtt_raw(target, &filled, Duration::from_secs(30))
            }),
        )
        .await;
        let ok = all(&l, "closed") && peak - start < 64.0 * 1024.0;
        rows.push(Row {
            scenario: "oversize",
            load: format!("{n} connections at once"),
            tried: "MQTT CONNECT claiming 250 KiB, sending all but one byte, stalling".into(),
            outcome: tally(&l),
            figure: format!(
                "RSS +{:.1} MiB while held; closed in {}",
                (peak - start) / 1024.0,
                t.summary()
            ),
            pass: ok,
        });
        rows
    };
    let sampler = async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            rss_peak = rss_peak.max(fleet.rss_kib());
        }
    };
    let (mut rows, report) = legit
        .during(async {
            tokio::select! {
                rows = work => rows,
                () = sampler => Vec::new(),
            }
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = fleet.rss_kib();
    rows.push(Row {
        scenario: "oversize",
        load: "all of the above, in turn".into(),
        tried: "log lines, hub RSS, legitimate clients".into(),
        outcome: format!(
            "log lines: 'bad CONNECT' +{}, 'no CONNECT within the deadline' +{}, 'protocol violation' +{}; {}",
            fleet.log_count("bad CONNECT") - bad_connect_logs,
            fleet.log_count("no CONNECT within the deadline") - deadline_logs,
            fleet.log_count("protocol violation") - violation_logs,
            report.summary()
        ),
        figure: format!(
            "RSS before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB; quiet: {}",
            rss_before / 1024.0,
            rss_peak / 1024.0,
            rss_after / 1024.0,
            quiet.summary()
        ),
        pass: report.failures() == 0,
    });
    let _ = secs;
    Ok(rows)
}
