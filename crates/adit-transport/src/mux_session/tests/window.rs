//! The adaptive receive window in a session: PINGs while DATA arrives, PONGs answered at once,
//! the window growing on a PONG (and every connection getting the difference), PINGs in
//! flight forgotten across a reattach, and a long path where the window grows and the
//! throughput with it.

use std::time::Duration;

use adit_stream_protocol::frame::{self, Frame};
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::*;
use super::wire::{self, Wire, encode, frames, hello, pattern};

const KIB: u32 = 1024;

/// A full DATA frame on connection 1.
fn data_frame() -> Bytes {
    encode(&Frame::Data {
        conn: 1,
        payload: Bytes::from(vec![b'x'; frame::MAX_DATA]),
    })
}

/// The service side's HELLO and OPEN of connection 1, as one message.
fn opening() -> Bytes {
    let mut m = encode(&hello(1 << 20)).to_vec();
    m.extend_from_slice(&encode(&Frame::Open {
        conn: 1,
        target: Bytes::new(),
    }));
    Bytes::from(m)
}

/// What a session sent on `wire`, message by message, until `until` picks one; returns what
/// it picked and the bytes of the data messages before it.
async fn until<T>(wire: &mut Wire, mut pick: impl FnMut(&Bytes) -> Option<T>) -> (T, u64) {
    let mut data = 0;
    loop {
        let m = wire.rx.recv().await.expect("a message");
        if let Some(t) = pick(&m) {
            return (t, data);
        }
        if !wire::is_link(&m) {
            data += m.len() as u64;
        }
    }
}

/// The WINDOW frames in a data message.
fn windows(m: &Bytes) -> Vec<(u32, u32)> {
    if wire::is_link(m) {
        return Vec::new();
    }
    frames(m)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Window { conn, increment } => Some((conn, increment)),
            _ => None,
        })
        .collect()
}

/// The round trip of the test's path.
const RTT: Duration = Duration::from_millis(50);

/// Answers the PING a session sends once both sides said HELLO (or after a resume), while the
/// link is idle, one [`RTT`] later: that is the path's round trip for the samples that follow.
/// Returns the bytes of the data messages before it.
async fn answer_idle_ping(wire: &mut Wire) -> u64 {
    let (opaque, data) = until(wire, |m| wire::ping(m)).await;
    tokio::time::sleep(RTT).await;
    wire.tx.send(encode(&Frame::Pong { opaque })).expect("send");
    data
}

#[tokio::test(start_paused = true)]
async fn data_brings_a_ping_and_its_pong_grows_every_connections_window() {
    let (link, mut wire) = wire::link();
    let mut device = MuxSession::start(link, Role::Device, Settings::default());
    assert_eq!(device.stats().window, 64 * KIB, "the HELLO's window");
    wire.tx.send(opening()).expect("send");
    // Accepted and never read: the only WINDOW it sends is the growth.
    let (_stream, _) = device.accept().await.expect("accepted");
    answer_idle_ping(&mut wire).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        device.stats().window,
        64 * KIB,
        "an idle PING grows nothing"
    );
    let start = Instant::now();
    // A full window, in four frames.
    for _ in 0..4 {
        wire.tx.send(data_frame()).expect("send");
    }
    let (opaque, _) = until(&mut wire, |m| wire::ping(m)).await;
    assert_eq!(start.elapsed(), Duration::ZERO, "at the first DATA");
    tokio::time::sleep(RTT / 2).await;
    // A PONG for another PING changes nothing.
    wire.tx
        .send(encode(&Frame::Pong {
            opaque: opaque.wrapping_add(1),
        }))
        .expect("send");
    tokio::time::sleep(RTT / 2).await;
    while let Ok(m) = wire.rx.try_recv() {
        assert!(
            windows(&m).is_empty(),
            "no WINDOW for a PONG that matches nothing"
        );
    }
    assert_eq!(device.stats().window, 64 * KIB);
    // Its own, one round trip after the PING: 64 KiB, the whole window: twice that.
    wire.tx.send(encode(&Frame::Pong { opaque })).expect("send");
    let (grant, _) = until(&mut wire, |m| windows(m).first().copied()).await;
    assert_eq!(grant, (1, 64 * KIB), "the difference, at once");
    assert_eq!(device.stats().window, 128 * KIB);
}

#[tokio::test(start_paused = true)]
async fn a_ping_is_answered_at_once_even_when_data_cannot_go() {
    let (link, mut wire) = wire::link();
    let service = MuxSession::start(link, Role::Service, Settings::default());
    wire.tx.send(encode(&hello(16 << 20))).expect("send");
    let mut s = service.open(Bytes::new()).await.expect("open");
    // Twice the replay capacity, never acknowledged: the session stops sending data.
    let writer = tokio::spawn(async move {
        let _ = s.write_all(&pattern(5, 2 << 20)).await;
        s
    });
    let before = wire::settle(&mut wire).await;
    let sent: u64 = before
        .iter()
        .filter(|m| !wire::is_link(m))
        .map(|m| m.len() as u64)
        .sum();
    assert!(sent < 2 << 20, "held at the replay capacity: {sent}");
    let start = Instant::now();
    wire.tx
        .send(encode(&Frame::Ping { opaque: 42 }))
        .expect("send");
    let m = wire.rx.recv().await.expect("a message");
    assert_eq!(wire::pong(&m), Some(42), "alone, echoing the opaque");
    assert_eq!(start.elapsed(), Duration::ZERO);
    // The PONG was not counted: acknowledging exactly the data sent is acknowledging all.
    wire.tx
        .send(encode(&Frame::Ack { position: sent }))
        .expect("send");
    let after = wire::settle(&mut wire).await;
    assert!(
        after.iter().any(|m| !wire::is_link(m)),
        "data flows again after the ACK"
    );
    writer.abort();
}

#[tokio::test(start_paused = true)]
async fn a_ping_in_flight_when_the_link_fails_is_forgotten() {
    let (first, mut wire) = wire::link();
    let (give, handed) = wire::handed(Duration::ZERO);
    let mut device = MuxSession::start_resumable(
        first,
        handed,
        Role::Device,
        Settings::default(),
        ResumeOptions::default(),
    );
    let opening = opening();
    let mut to_device = opening.len() as u64;
    wire.tx.send(opening).expect("send");
    let (_stream, _) = device.accept().await.expect("accepted");
    let mut from_device = answer_idle_ping(&mut wire).await;
    let full = data_frame();
    to_device += full.len() as u64;
    wire.tx.send(full).expect("send");
    let (old, data) = until(&mut wire, |m| wire::ping(m)).await;
    from_device += data;
    from_device += wire::settle(&mut wire)
        .await
        .iter()
        .filter(|m| !wire::is_link(m))
        .map(|m| m.len() as u64)
        .sum::<u64>();
    // The link fails with the PING in flight.
    drop(wire);
    let (second, mut wire) = wire::link();
    give.send(second).expect("hand over");
    let m = wire.rx.recv().await.expect("RESUME");
    assert_eq!(wire::resume(&m), Some((1, to_device)));
    wire.tx
        .send(encode(&Frame::Resumed {
            attach: 1,
            position: from_device,
        }))
        .expect("send");
    // The session measures the new link's round trip while it is idle...
    let (idle, _) = until(&mut wire, |m| wire::ping(m)).await;
    assert_ne!(idle, old);
    tokio::time::sleep(RTT).await;
    // ...and the old PING's PONG, late, on the new link, a sample spanning the outage, is
    // ignored.
    wire.tx
        .send(encode(&Frame::Pong { opaque: old }))
        .expect("send");
    wire.tx
        .send(encode(&Frame::Pong { opaque: idle }))
        .expect("send");
    assert!(
        wire::settle(&mut wire)
            .await
            .iter()
            .all(|m| windows(m).is_empty())
    );
    assert_eq!(device.stats().window, 64 * KIB);
    assert_eq!(device.stats().resumptions, 1);
    // Measuring goes on on the new link: a new PING, and its PONG grows the window. The
    // rest of the window (unread, the connection holds 16 KiB already) is 48 KiB: enough.
    for _ in 0..3 {
        wire.tx.send(data_frame()).expect("send");
    }
    let (new, _) = until(&mut wire, |m| wire::ping(m)).await;
    assert!(new != old && new != idle);
    tokio::time::sleep(RTT).await;
    wire.tx
        .send(encode(&Frame::Pong { opaque: new }))
        .expect("send");
    let (grant, _) = until(&mut wire, |m| windows(m).first().copied()).await;
    assert_eq!(
        grant,
        (1, 32 * KIB),
        "twice the 48 KiB sample, less the 64 KiB granted"
    );
    assert_eq!(device.stats().window, 96 * KIB);
}

#[tokio::test(start_paused = true)]
async fn a_ping_in_flight_when_the_peer_reattaches_is_forgotten() {
    let (link, mut wire) = wire::link();
    let mut device = MuxSession::start(link, Role::Device, Settings::default());
    wire.tx.send(opening()).expect("send");
    let (_stream, _) = device.accept().await.expect("accepted");
    let mut from_device = answer_idle_ping(&mut wire).await;
    for _ in 0..4 {
        wire.tx.send(data_frame()).expect("send");
    }
    let (old, data) = until(&mut wire, |m| wire::ping(m)).await;
    from_device += data;
    from_device += wire::settle(&mut wire)
        .await
        .iter()
        .filter(|m| !wire::is_link(m))
        .map(|m| m.len() as u64)
        .sum::<u64>();
    // The peer comes back: the hub may have dropped the PING while it was away.
    wire.tx
        .send(encode(&Frame::Resume {
            attach: 1,
            position: from_device,
        }))
        .expect("send");
    let answer = wire.rx.recv().await.expect("RESUMED");
    assert!(wire::resumed(&answer).is_some());
    tokio::time::sleep(RTT).await;
    wire.tx
        .send(encode(&Frame::Pong { opaque: old }))
        .expect("send");
    assert!(
        wire::settle(&mut wire)
            .await
            .iter()
            .all(|m| windows(m).is_empty())
    );
    assert_eq!(
        device.stats().window,
        64 * KIB,
        "no sample across the reattach"
    );
}

/// Relays `from`'s messages to `to` as a path of `one_way` delay behind a bottleneck of
/// `bytes_per_sec` would: each message leaves once the ones before it went through the
/// bottleneck, and arrives `one_way` later, in order.
fn relay(mut from: Wire, to: mpsc::UnboundedSender<Bytes>, one_way: Duration, bytes_per_sec: u64) {
    let (stamped, mut due) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    tokio::spawn(async move {
        let mut free = Instant::now();
        while let Some(m) = from.rx.recv().await {
            let on_wire = Duration::from_nanos(m.len() as u64 * 1_000_000_000 / bytes_per_sec);
            free = free.max(Instant::now()) + on_wire;
            if stamped.send((free + one_way, m)).is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some((at, m)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.send(m).is_err() {
                break;
            }
        }
    });
}

/// A service and a device side joined by a path of `one_way` delay each way and
/// `bytes_per_sec` in each direction.
fn over_a_path(
    one_way: Duration,
    bytes_per_sec: u64,
    settings: Settings,
) -> (MuxSession, MuxSession) {
    let (s_link, s_wire) = wire::link();
    let (d_link, d_wire) = wire::link();
    let (s_tx, d_tx) = (s_wire.tx.clone(), d_wire.tx.clone());
    relay(s_wire, d_tx, one_way, bytes_per_sec);
    relay(d_wire, s_tx, one_way, bytes_per_sec);
    (
        MuxSession::start(s_link, Role::Service, settings),
        MuxSession::start(d_link, Role::Device, settings),
    )
}

/// Sends `len` bytes from the service to the device over a 50 ms, 20 MB/s path; returns the
/// throughput in bytes per second and the device's window at the end.
async fn transfer(len: usize, settings: Settings) -> (f64, u32) {
    let (service, mut device) = over_a_path(Duration::from_millis(25), 20_000_000, settings);
    let mut s = service.open(Bytes::new()).await.expect("open");
    let (mut d, _) = device.accept().await.expect("accepted");
    let sent = pattern(9, len);
    let start = Instant::now();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        s.write_all(&to_send).await.expect("write");
        s.shutdown().await.expect("FIN");
        s
    });
    let mut got = Vec::with_capacity(len);
    d.read_to_end(&mut got).await.expect("read");
    let elapsed = start.elapsed();
    assert!(got == sent, "exact");
    drop(writer.await.expect("writer"));
    (len as f64 / elapsed.as_secs_f64(), device.stats().window)
}

#[tokio::test(start_paused = true)]
async fn on_a_long_path_the_window_grows_and_the_throughput_with_it() {
    // At 64 KiB per 50 ms round trip a fixed window carries 1.3 MB/s.
    let per_rtt = f64::from(64 * KIB) / 0.05;
    let len = 8 << 20;
    let (fixed, fixed_window) = transfer(len, Settings::fixed(64 * KIB)).await;
    assert_eq!(fixed_window, 64 * KIB);
    assert!(fixed <= per_rtt * 1.05, "{fixed} B/s");
    let (adaptive, window) = transfer(len, Settings::default()).await;
    assert!(window >= 1 << 20, "grew to cover the 1 MB BDP: {window}");
    assert!(window <= 16 << 20);
    assert!(
        adaptive >= 4.0 * per_rtt,
        "{adaptive} B/s with a {window}-byte window, {fixed} B/s fixed"
    );
}

#[tokio::test(start_paused = true)]
async fn on_a_short_path_the_window_stays_small() {
    // 0.5 ms each way at 20 MB/s: a BDP of 20 kB, under the initial window. The sender is
    // limited by the window, so every sample fills it; but the transfer starts at once, the
    // idle PING already finds a queue (2 ms, not 1) and the first sample may double the
    // window against it. Then the round trips grow with the queue, and the window stops.
    let (service, mut device) =
        over_a_path(Duration::from_micros(500), 20_000_000, Settings::default());
    let mut s = service.open(Bytes::new()).await.expect("open");
    let (mut d, _) = device.accept().await.expect("accepted");
    let writer = tokio::spawn(async move {
        s.write_all(&pattern(3, 16 << 20)).await.expect("write");
        s.shutdown().await.expect("FIN");
        s
    });
    let mut got = Vec::new();
    d.read_to_end(&mut got).await.expect("read");
    assert_eq!(got.len(), 16 << 20);
    drop(writer.await.expect("writer"));
    let window = device.stats().window;
    assert!(window <= 128 * KIB, "{window}");
}
