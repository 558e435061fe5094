//! How streams end, against a real hub over real sockets: records written once when a stream
//! really ends, every Close passed on, cancelled handshakes, liveness pings and their deadline,
//! idle-timeout middleboxes, drain on shutdown, and connection accounting.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use adit_hub::gateway::{ClosedBy, EndReason, Keepalive};
use adit_hub::streams::{Outcome, StreamRecord};
use adit_testkit::stream_device::{
    StreamDevice, accepted_pair, answer_next, closed_within, exchange, next_data, record, stream_id,
};
use adit_testkit::{GatewayWs, TestHub, free_port, gateway_status};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_websockets::{CloseCode, Message};

/// Reads `ws` (so its WebSocket answers pings) for `how_long`; fails on anything but pings.
async fn idle_but_reading(ws: &mut GatewayWs, how_long: Duration) {
    let until = tokio::time::Instant::now() + how_long;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(m))) if m.is_ping() || m.is_pong() => {}
            Ok(other) => panic!("idle stream got {other:?}"),
        }
    }
}

/// The hub's records once `ready` holds for them (fails the test after 5 s).
async fn records_when(hub: &TestHub, ready: impl Fn(&[StreamRecord]) -> bool) -> Vec<StreamRecord> {
    for _ in 0..100 {
        let records = hub.streams().records();
        if ready(&records) {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("records never got there: {:?}", hub.streams().records());
}

/// The records that ended for `reason`, once there is one.
async fn ended_for(hub: &TestHub, reason: EndReason) -> Vec<StreamRecord> {
    let has = |r: &StreamRecord| r.end_reason == Some(reason);
    records_when(hub, |rs| rs.iter().any(has))
        .await
        .into_iter()
        .filter(has)
        .collect()
}

async fn records_of(hub: &TestHub, id: &str) -> usize {
    hub.streams()
        .records()
        .iter()
        .filter(|r| r.stream_id == id)
        .count()
}

/// A plain TCP relay that closes a connection after `idle_secs` without traffic either way,
/// as load balancers and reverse proxies do (socat's -T), in front of `to`.
struct IdleTimeoutRelay {
    child: Child,
}

impl IdleTimeoutRelay {
    fn start_on(idle_secs: u64, to: std::net::SocketAddr, port: u16) -> Self {
        let child = Command::new("socat")
            .args([
                "-T",
                &idle_secs.to_string(),
                &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
                &format!("TCP:{to}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat runs (Debian package socat)");
        let relay = Self { child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return relay;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("socat did not listen on {port}");
    }
}

impl Drop for IdleTimeoutRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_stream_outliving_its_handshake_deadline_stays_counted_limited_and_recorded_once() {
    // The general form of a stream open for longer than the handshake deadline (60 s by
    // default; an SSH session): here 1 s, held for 5.
    let hub = TestHub::start_with(|c| {
        c.streams.handshake_timeout = Duration::from_secs(1);
        c.streams.limits.max_streams_per_device = 1;
    })
    .await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (mut d, mut s) = accepted_pair(&hub, &mut device, false).await;
    let id = {
        let r = hub.streams().records();
        assert!(r.is_empty(), "no record while the stream is open: {r:?}");
        // The service half's URL is not at hand here; the stream is the only one.
        exchange(&mut s, &mut d, b"before").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(hub.streams().active(), 1, "still counted past the deadline");
        assert!(
            hub.streams().records().is_empty(),
            "no record written early"
        );
        let second = hub.initiate("d1", "x", None, Some(2.0)).await;
        assert_eq!(second.status, 429, "the per-device limit still holds");
        exchange(&mut s, &mut d, b"after").await;
        exchange(&mut d, &mut s, b"reply").await;
        s.send(Message::close(Some(CloseCode::NORMAL_CLOSURE), "done"))
            .await
            .expect("close");
        assert_eq!(
            closed_within(&mut d, Duration::from_secs(5)).await,
            Some(1000)
        );
        records_when(&hub, |rs| !rs.is_empty()).await[0]
            .stream_id
            .clone()
    };
    let r = record(&hub, &id).await;
    assert_eq!(r.outcome, Outcome::Closed);
    assert_eq!(r.closed_by, Some(ClosedBy::Service));
    assert_eq!(r.end_reason, Some(EndReason::CloseFrame));
    assert_eq!(r.close_code, Some(1000));
    assert_eq!(r.bytes_service_to_device, 11, "before + after");
    assert_eq!(r.bytes_device_to_service, 5);
    assert!(r.duration >= Duration::from_secs(5), "{:?}", r.duration);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(records_of(&hub, &id).await, 1, "exactly one record");
    assert_eq!(hub.streams().active(), 0);
    // Its place is free again.
    let d2 = answer_next(device, true);
    let third = hub.initiate("d1", "x", None, Some(5.0)).await;
    assert_eq!(third.status, 200, "{}", third.body);
    d2.await.expect("device");
}

#[tokio::test]
async fn an_empty_close_from_either_half_is_passed_on_as_an_empty_close() {
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    for device_closes in [true, false] {
        let (mut d, mut s) = accepted_pair(&hub, &mut device, device_closes).await;
        exchange(&mut s, &mut d, b"x").await;
        let (closer, other) = if device_closes {
            (&mut d, &mut s)
        } else {
            (&mut s, &mut d)
        };
        // RFC 6455 5.5.1: a Close may have no body (Node's ws sends one for close()).
        closer.send(Message::close(None, "")).await.expect("close");
        assert_eq!(
            closed_within(other, Duration::from_secs(5)).await,
            Some(1005),
            "the other half gets a Close without a status code"
        );
    }
    // Nothing panicked: both records are right and the hub still relays.
    let closers: Vec<_> = records_when(&hub, |rs| rs.len() == 2)
        .await
        .iter()
        .map(|r| (r.closed_by, r.end_reason, r.close_code))
        .collect();
    let code = Some(1005);
    let reason = Some(EndReason::CloseFrame);
    assert!(
        closers.contains(&(Some(ClosedBy::Device), reason, code)),
        "{closers:?}"
    );
    assert!(
        closers.contains(&(Some(ClosedBy::Service), reason, code)),
        "{closers:?}"
    );
    let (mut d, mut s) = accepted_pair(&hub, &mut device, true).await;
    exchange(&mut s, &mut d, b"still relaying").await;
}

#[tokio::test]
async fn a_service_that_leaves_mid_handshake_leaves_a_cancelled_record() {
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    // The device gets the request and never answers; the service gives up after 1 s (as a
    // client timeout or a load balancer's idle timeout does), long before the 30 s response
    // timeout it asked for.
    let initiate = hub.initiate("d1", "x", None, Some(30.0));
    let gave_up = tokio::time::timeout(Duration::from_secs(1), initiate);
    let (req, gave_up) = tokio::join!(device.next_request(), gave_up);
    assert!(gave_up.is_err(), "the device never answered");
    let r = record(&hub, &stream_id(&req.url)).await;
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(hub.streams().active(), 0, "its place is released");
    // The rendezvous went with it: the device's token no longer opens anything, and a late
    // answer finds nobody waiting.
    let (status, _) = gateway_status(&req.url, Some(&req.auth), &hub.ca_path).await;
    assert_eq!(status, 401);
    device.answer(&req.rid, true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(records_of(&hub, &r.stream_id).await, 1);
}

#[tokio::test]
async fn a_leg_that_stops_answering_pings_is_closed_at_the_pong_deadline() {
    let keepalive = Keepalive::new(Duration::from_secs(1), Duration::from_secs(1)).expect("valid");
    let hub = TestHub::start_with(|c| c.gateway.keepalive = keepalive).await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;

    // Both halves idle but alive (their WebSockets answer pings): the stream lives on.
    let (mut d, mut s) = accepted_pair(&hub, &mut device, true).await;
    tokio::join!(
        idle_but_reading(&mut d, Duration::from_secs(5)),
        idle_but_reading(&mut s, Duration::from_secs(5))
    );
    exchange(&mut s, &mut d, b"alive after 5 s of silence").await;
    drop((d, s));

    // The device half goes silent (never read again, as a suspended process or a dead
    // network): the service half is closed after interval + pong timeout, with 1001.
    let (d, mut s) = accepted_pair(&hub, &mut device, false).await;
    let started = tokio::time::Instant::now();
    let mut close = None;
    while close.is_none() {
        match tokio::time::timeout(Duration::from_secs(10), s.next()).await {
            Ok(Some(Ok(m))) if m.is_close() => {
                close = m.as_close().map(|(c, r)| (u16::from(c), r.to_string()));
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a Close, got {other:?}"),
        }
    }
    let waited = started.elapsed();
    let (code, reason) = close.expect("close");
    assert_eq!(code, 1001);
    assert!(reason.contains("device stopped responding"), "{reason}");
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(6),
        "closed after {waited:?}"
    );
    let timed_out = ended_for(&hub, EndReason::PingTimeout).await;
    assert_eq!(timed_out.len(), 1, "{:?}", hub.streams().records());
    assert_eq!(timed_out[0].closed_by, Some(ClosedBy::Device));
    assert_eq!(timed_out[0].outcome, Outcome::Closed);
    drop(d);
}

/// One idle stream through `relay` (both legs), held idle for `idle`; true if it still echoes.
async fn survives_idle(hub: &TestHub, device: &mut StreamDevice, idle: Duration) -> bool {
    let (mut d, mut s) = accepted_pair(hub, device, false).await;
    exchange(&mut s, &mut d, b"start").await;
    let cut = tokio::join!(
        idle_but_reading_or_closed(&mut d, idle),
        idle_but_reading_or_closed(&mut s, idle)
    );
    if cut.0 || cut.1 {
        return false;
    }
    s.send(Message::binary(&b"after idle"[..])).await.is_ok()
        && matches!(
            tokio::time::timeout(Duration::from_secs(5), next_data(&mut d)).await,
            Ok(Some(Ok(m))) if m.as_payload()[..] == b"after idle"[..]
        )
}

/// Like [`idle_but_reading`], but reports whether the stream was cut instead of failing.
async fn idle_but_reading_or_closed(ws: &mut GatewayWs, how_long: Duration) -> bool {
    let until = tokio::time::Instant::now() + how_long;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return false,
            Ok(Some(Ok(m))) if m.is_ping() || m.is_pong() => {}
            Ok(_) => return true,
        }
    }
}

#[tokio::test]
async fn an_idle_stream_survives_a_middlebox_idle_timeout_thanks_to_pings() {
    // Both legs go through a relay that cuts connections idle for 3 s (a load balancer with
    // a short idle timeout). Pings every second keep the stream up for 8 s of silence; with
    // pings slower than the idle timeout the same relay cuts it, so the test can fail.
    let run = |interval: u64| async move {
        let port = free_port();
        let hub = TestHub::start_with(|c| {
            c.public_url = Some(format!("https://localhost:{port}"));
            c.gateway.keepalive =
                Keepalive::new(Duration::from_secs(interval), Duration::from_secs(5))
                    .expect("valid");
        })
        .await;
        let _relay = IdleTimeoutRelay::start_on(3, hub.addr, port);
        let key = hub.create_device("d1").await;
        let mut device = StreamDevice::connect(&hub, "d1", &key).await;
        survives_idle(&hub, &mut device, Duration::from_secs(8)).await
    };
    let (with_pings, without) = tokio::join!(run(1), run(60));
    assert!(with_pings, "a pinged idle stream survived the middlebox");
    assert!(
        !without,
        "the middlebox does cut a stream that is not pinged"
    );
}

#[tokio::test]
async fn an_idle_ssh_length_stream_survives_75_s_behind_a_60_s_middlebox_with_defaults() {
    // Field case 03 with the hub's defaults (pings every 20 s) and a 60-s idle timeout, the
    // nginx and cloud load-balancer default; and the stream, past the 60-s handshake
    // deadline, stays counted and limited and leaves one record.
    let port = free_port();
    let hub = TestHub::start_with(|c| {
        c.public_url = Some(format!("https://localhost:{port}"));
        c.streams.limits.max_streams_per_device = 1;
    })
    .await;
    let _relay = IdleTimeoutRelay::start_on(60, hub.addr, port);
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (mut d, mut s) = accepted_pair(&hub, &mut device, false).await;
    exchange(&mut s, &mut d, b"start").await;
    tokio::join!(
        idle_but_reading(&mut d, Duration::from_secs(75)),
        idle_but_reading(&mut s, Duration::from_secs(75))
    );
    assert_eq!(hub.streams().active(), 1);
    assert!(hub.streams().records().is_empty());
    assert_eq!(hub.initiate("d1", "x", None, Some(2.0)).await.status, 429);
    exchange(&mut s, &mut d, b"after 75 s").await;
    d.send(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))
        .await
        .expect("close");
    assert_eq!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        Some(1000)
    );
    let rs = records_when(&hub, |rs| !rs.is_empty()).await;
    assert_eq!(rs.len(), 1, "{rs:?}");
    assert_eq!(rs[0].outcome, Outcome::Closed);
    assert_eq!(rs[0].bytes_service_to_device, 15);
    assert!(rs[0].duration > Duration::from_secs(75));
}

#[tokio::test]
async fn shutdown_drains_open_streams_then_closes_them_with_1001() {
    let mut hub = TestHub::start_with(|c| {
        c.https_limits.shutdown_grace = Duration::from_secs(3);
    })
    .await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (mut d, mut s) = accepted_pair(&hub, &mut device, true).await;
    let streams = hub.streams().clone();
    let started = tokio::time::Instant::now();
    let stopping = async {
        hub.stop().await;
        started.elapsed()
    };
    let during = async {
        // The stream keeps working during the grace period.
        tokio::time::sleep(Duration::from_secs(1)).await;
        exchange(&mut s, &mut d, b"during the drain").await;
        let code = closed_within(&mut s, Duration::from_secs(10)).await;
        (code, started.elapsed())
    };
    let (stopped_after, (code, closed_after)) = tokio::join!(stopping, during);
    assert_eq!(code, Some(1001));
    assert!(
        closed_after >= Duration::from_secs(3) && closed_after < Duration::from_secs(6),
        "closed after {closed_after:?}"
    );
    assert!(stopped_after < Duration::from_secs(10), "{stopped_after:?}");
    let r = streams
        .records()
        .pop()
        .expect("the stream's record is written");
    assert_eq!(r.closed_by, Some(ClosedBy::Hub));
    assert_eq!(r.end_reason, Some(EndReason::HubShutdown));
    assert_eq!(r.bytes_service_to_device, 16);
    drop(d);
}

#[tokio::test]
async fn shutdown_ends_as_soon_as_the_last_stream_does() {
    let mut hub = TestHub::start_with(|c| {
        c.https_limits.shutdown_grace = Duration::from_secs(30);
    })
    .await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (mut d, mut s) = accepted_pair(&hub, &mut device, true).await;
    let started = tokio::time::Instant::now();
    let closer = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.send(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))
            .await
            .expect("close");
        closed_within(&mut d, Duration::from_secs(5)).await
    };
    let ((), code) = tokio::join!(hub.stop(), closer);
    assert_eq!(code, Some(1000));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn gateway_websockets_count_toward_max_connections() {
    let hub = TestHub::start_with(|c| c.https_limits.max_connections = 2).await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (mut d, mut s) = accepted_pair(&hub, &mut device, false).await;
    // Both places are held by the stream's two WebSockets: a third connection is refused.
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        adit_testkit::https_client(&hub.ca_path)
            .get(format!("{}/devices?api-version=2021-04-12", hub.base_url()))
            .send(),
    )
    .await
    .expect("answered or refused promptly");
    assert!(
        refused.is_err(),
        "a third connection was served: {refused:?}"
    );
    exchange(&mut s, &mut d, b"the stream is unaffected").await;
    s.send(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))
        .await
        .expect("close");
    closed_within(&mut d, Duration::from_secs(5)).await;
    drop((d, s));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d2 = answer_next(device, true);
    let reply = hub.initiate("d1", "x", None, Some(5.0)).await;
    assert_eq!(
        reply.status, 200,
        "places are free again once the stream ends"
    );
    d2.await.expect("device");
}

#[tokio::test]
async fn a_receiver_that_stops_reading_is_the_one_blamed_not_the_sender() {
    // The device sends in bulk; the service stops reading (its consumer stalled). The relay
    // is then blocked writing to the service and cannot read the device's pongs: the device
    // must not be judged for that. The stalled service is the leg that stops responding.
    let keepalive = Keepalive::new(Duration::from_secs(1), Duration::from_secs(1)).expect("valid");
    let hub = TestHub::start_with(|c| c.gateway.keepalive = keepalive).await;
    let key = hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (d, s) = accepted_pair(&hub, &mut device, false).await;
    let (mut tx, mut rx) = d.split();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; 64 * 1024];
        while tx.send(Message::binary(chunk.clone())).await.is_ok() {}
    });
    // The device keeps reading, so its WebSocket answers pings; it sees the Close.
    let close = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = rx.next().await {
            if m.is_close() {
                return m.as_close().map(|(c, r)| (u16::from(c), r.to_string()));
            }
        }
        None
    })
    .await
    .expect("the stream is closed once the service counts as gone");
    let (code, reason) = close.expect("a Close");
    assert_eq!(code, 1001);
    assert!(reason.contains("service stopped responding"), "{reason}");
    writer.abort();
    let timed_out = ended_for(&hub, EndReason::PingTimeout).await;
    assert_eq!(timed_out.len(), 1, "{:?}", hub.streams().records());
    assert_eq!(timed_out[0].closed_by, Some(ClosedBy::Service));
    assert!(timed_out[0].bytes_device_to_service > 0);
    drop(s);
}

#[tokio::test]
async fn disabling_or_deleting_a_device_closes_its_open_streams() {
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    let other_key = hub.create_device("d2").await;
    let mut device = StreamDevice::connect(&hub, "d1", &key).await;
    let (mut d, mut s) = accepted_pair(&hub, &mut device, true).await;
    exchange(&mut s, &mut d, b"before").await;
    // Another device's stream is not touched.
    let mut other = StreamDevice::connect(&hub, "d2", &other_key).await;
    let (req, reply) = tokio::join!(
        answer_next_for(&mut other),
        hub.initiate("d2", "x", None, Some(5.0))
    );
    let mut od = adit_testkit::gateway_connect(&req.url, &req.auth, &hub.ca_path, None)
        .await
        .expect("d2 joins");
    let mut os = adit_testkit::gateway_connect(
        &reply.url.expect("url"),
        &reply.token.expect("token"),
        &hub.ca_path,
        None,
    )
    .await
    .expect("service joins d2");

    hub.set_device_status("d1", "disabled").await;
    assert_eq!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        Some(1008)
    );
    assert_eq!(
        closed_within(&mut d, Duration::from_secs(5)).await,
        Some(1008)
    );
    let revoked = ended_for(&hub, EndReason::Revoked).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].device_id, "d1");
    assert_eq!(revoked[0].closed_by, Some(ClosedBy::Hub));
    exchange(&mut os, &mut od, b"d2 still relays").await;

    hub.delete_device("d2").await;
    assert_eq!(
        closed_within(&mut os, Duration::from_secs(5)).await,
        Some(1008)
    );
}

/// Answers the next request of `device` with accept; yields the request.
async fn answer_next_for(device: &mut StreamDevice) -> adit_testkit::stream_device::StreamRequest {
    let req = device.next_request().await;
    device.answer(&req.rid, true).await;
    req
}
