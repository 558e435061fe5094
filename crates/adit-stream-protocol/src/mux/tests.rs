use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// Moves everything `from` has to send into `to`; returns `to`'s events.
fn pump(from: &mut Mux, to: &mut Mux) -> Vec<Event> {
    pump_counted(from, to).0
}

/// [`pump`], and how many bytes crossed.
fn pump_counted(from: &mut Mux, to: &mut Mux) -> (Vec<Event>, usize) {
    let mut wire = BytesMut::new();
    while from.poll_transmit(&mut wire) {}
    let n = wire.len();
    (to.receive(&mut wire).expect("valid frames"), n)
}

/// A service and a device side with fixed windows of `window` bytes that have exchanged
/// HELLO.
fn pair(window: u32) -> (Mux, Mux) {
    pair_with(Settings::fixed(window))
}

/// A service and a device side with `settings` that have exchanged HELLO.
fn pair_with(settings: Settings) -> (Mux, Mux) {
    let (mut s, mut d) = (
        Mux::new(Role::Service, settings),
        Mux::new(Role::Device, settings),
    );
    assert!(pump(&mut s, &mut d).is_empty());
    assert!(pump(&mut d, &mut s).is_empty());
    (s, d)
}

#[derive(Debug, Clone)]
enum Op {
    Send {
        conn: usize,
        len: usize,
    },
    Fin {
        conn: usize,
    },
    /// The device's reader for `conn` consumes what it has.
    Read {
        conn: usize,
    },
    /// Frames cross the link, this many each way.
    Pump,
    /// The device's window target becomes this many bytes (ignored when smaller).
    Grow(u32),
}

fn ops(conns: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            4 => (0..conns, 1usize..40_000).prop_map(|(conn, len)| Op::Send { conn, len }),
            1 => (0..conns).prop_map(|conn| Op::Fin { conn }),
            3 => (0..conns).prop_map(|conn| Op::Read { conn }),
            3 => Just(Op::Pump),
            1 => (1u32..200_000).prop_map(Op::Grow),
        ],
        1..120,
    )
}

proptest! {
    /// Whatever the interleaving of writes, reads and link turns, each connection delivers
    /// exactly its bytes, in order, then its FIN; a reader that never reads holds back only
    /// its own connection, by at most its window.
    #[test]
    fn every_connection_delivers_exactly_its_bytes(
        conns in 1usize..5,
        ops in ops(4),
        window in 1u32..100_000,
    ) {
        let (mut s, mut d) = pair_with(Settings {
            initial_window: window,
            max_window: 1 << 20,
            ..Settings::default()
        });
        let ids: Vec<u32> = (0..conns).map(|_| s.open(Bytes::new())).collect();
        let mut sent: HashMap<u32, Vec<u8>> = HashMap::new();
        let mut finned: HashMap<u32, bool> = HashMap::new();
        let mut got: HashMap<u32, Vec<u8>> = HashMap::new();
        let mut unread: HashMap<u32, usize> = HashMap::new();
        let mut got_fin: HashMap<u32, bool> = HashMap::new();
        // Connection 0's reader never reads: the slow one.
        let slow = ids[0];
        let mut counter = 0u8;
        let deliver = |events: Vec<Event>, d: &mut Mux, got: &mut HashMap<u32, Vec<u8>>, unread: &mut HashMap<u32, usize>, got_fin: &mut HashMap<u32, bool>| {
            for e in events {
                match e {
                    Event::Open { conn, .. } => d.accept(conn),
                    Event::Data(conn, bytes) => {
                        assert!(!got_fin.get(&conn).copied().unwrap_or(false), "DATA after FIN");
                        got.entry(conn).or_default().extend_from_slice(&bytes);
                        *unread.entry(conn).or_default() += bytes.len();
                    }
                    Event::Fin(conn) => { got_fin.insert(conn, true); }
                    other => panic!("unexpected {other:?}"),
                }
            }
        };
        for op in ops {
            match op {
                Op::Send { conn, len } => {
                    let Some(&id) = ids.get(conn) else { continue };
                    if finned.get(&id).copied().unwrap_or(false) { continue; }
                    let bytes: Vec<u8> = (0..len).map(|_| { counter = counter.wrapping_add(1); counter }).collect();
                    sent.entry(id).or_default().extend_from_slice(&bytes);
                    s.send(id, Bytes::from(bytes));
                }
                Op::Fin { conn } => {
                    let Some(&id) = ids.get(conn) else { continue };
                    finned.insert(id, true);
                    s.fin(id);
                }
                Op::Read { conn } => {
                    let Some(&id) = ids.get(conn) else { continue };
                    if id == slow { continue; }
                    let n = unread.insert(id, 0).unwrap_or(0);
                    d.consumed(id, n);
                }
                Op::Grow(to) => d.grow_window(to),
                Op::Pump => {
                    let events = pump(&mut s, &mut d);
                    deliver(events, &mut d, &mut got, &mut unread, &mut got_fin);
                    prop_assert!(pump(&mut d, &mut s).iter().all(|e| matches!(e, Event::Opened(_))));
                }
            }
        }
        // Drain: every reader but the slow one reads until nothing moves.
        for _ in 0..100_000 {
            let (events, forth) = pump_counted(&mut s, &mut d);
            deliver(events, &mut d, &mut got, &mut unread, &mut got_fin);
            for &id in &ids {
                if id != slow {
                    let n = unread.insert(id, 0).unwrap_or(0);
                    d.consumed(id, n);
                }
            }
            let (_, back) = pump_counted(&mut d, &mut s);
            if forth == 0 && back == 0 { break; }
        }
        for &id in &ids {
            let want = sent.get(&id).cloned().unwrap_or_default();
            let have = got.get(&id).cloned().unwrap_or_default();
            if id == slow {
                prop_assert!(have.len() as u64 <= u64::from(d.window()));
                prop_assert_eq!(&have[..], &want[..have.len()]);
            } else {
                prop_assert_eq!(have, want);
                prop_assert_eq!(got_fin.get(&id).copied().unwrap_or(false), finned.get(&id).copied().unwrap_or(false));
            }
        }
    }
}

#[test]
fn a_keystroke_waits_behind_at_most_one_bulk_frame() {
    let (mut s, mut d) = pair(16 << 20);
    let bulk = s.open(Bytes::new());
    let ssh = s.open(Bytes::new());
    pump(&mut s, &mut d);
    s.send(bulk, Bytes::from(vec![0u8; 8 << 20]));
    let mut wire = BytesMut::new();
    assert!(
        s.poll_transmit(&mut wire),
        "the bulk transfer is on the link"
    );
    s.send(ssh, Bytes::from_static(b"l"));
    let mut frames = 0;
    loop {
        let mut one = BytesMut::new();
        assert!(s.poll_transmit(&mut one));
        frames += 1;
        match frame::decode(&mut one, frame::MAX_DATA) {
            Ok(Some(Frame::Data { conn, .. })) if conn == ssh => break,
            Ok(Some(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        frames, 1,
        "the keystroke is the next frame after the one on the link"
    );
}

#[test]
fn a_stream_must_start_with_hello_of_this_version() {
    let mut d = Mux::new(Role::Device, Settings::default());
    let mut wire = BytesMut::new();
    Frame::Open {
        conn: 1,
        target: Bytes::new(),
    }
    .encode(&mut wire);
    assert_eq!(d.receive(&mut wire), Err(MuxError::NoHello));
    let mut d = Mux::new(Role::Device, Settings::default());
    let mut wire = BytesMut::new();
    Frame::Hello {
        version: 2,
        max_data: 1024,
        initial_window: 1024,
    }
    .encode(&mut wire);
    assert_eq!(d.receive(&mut wire), Err(MuxError::Version(2)));
}

#[test]
fn an_overrun_resets_only_its_connection() {
    let (mut s, mut d) = pair(1000);
    let a = s.open(Bytes::new());
    let b = s.open(Bytes::new());
    for e in pump(&mut s, &mut d) {
        if let Event::Open { conn, .. } = e {
            d.accept(conn);
        }
    }
    // A peer that ignores its credit: 1,001 bytes on a 1,000-byte window.
    let mut wire = BytesMut::new();
    Frame::Data {
        conn: a,
        payload: Bytes::from(vec![1u8; 1000]),
    }
    .encode(&mut wire);
    Frame::Data {
        conn: a,
        payload: Bytes::from_static(b"x"),
    }
    .encode(&mut wire);
    Frame::Data {
        conn: b,
        payload: Bytes::from_static(b"fine"),
    }
    .encode(&mut wire);
    let events = d.receive(&mut wire).expect("the stream goes on");
    assert!(matches!(events[0], Event::Data(c, _) if c == a));
    assert!(
        matches!(&events[1], Event::Reset { conn, code: ResetCode::Protocol, .. } if *conn == a)
    );
    assert_eq!(events[2], Event::Data(b, Bytes::from_static(b"fine")));
    let back = pump(&mut d, &mut s);
    assert!(
        back.iter()
            .any(|e| matches!(e, Event::Reset { conn, .. } if *conn == a)),
        "{back:?}"
    );
    assert_eq!(s.connections(), 1);
}

#[test]
fn only_the_service_side_opens_and_ids_only_grow() {
    let (mut s, mut d) = pair(1000);
    let mut wire = BytesMut::new();
    Frame::Open {
        conn: 2,
        target: Bytes::new(),
    }
    .encode(&mut wire);
    assert_eq!(d.receive(&mut wire), Err(MuxError::BadOpen(2)));
    let mut wire = BytesMut::new();
    Frame::Open {
        conn: 1,
        target: Bytes::new(),
    }
    .encode(&mut wire);
    assert_eq!(
        s.receive(&mut wire),
        Err(MuxError::BadOpen(1)),
        "a device may not open"
    );
}

/// The frames `m` has to send now.
fn transmitted(m: &mut Mux) -> Vec<Frame> {
    let mut wire = BytesMut::new();
    while m.poll_transmit(&mut wire) {}
    let mut frames = Vec::new();
    while let Some(f) = frame::decode(&mut wire, frame::MAX_DATA).expect("valid") {
        frames.push(f);
    }
    frames
}

/// Adaptive settings starting at `initial` bytes.
fn adaptive(initial: u32) -> Settings {
    Settings {
        initial_window: initial,
        max_window: 1 << 20,
        ..Settings::default()
    }
}

#[test]
fn the_defaults_start_small_and_adapt() {
    let settings = Settings::default();
    assert_eq!(settings.max_data, 16 * 1024);
    assert_eq!(settings.initial_window, 64 * 1024);
    assert_eq!(settings.max_window, 16 << 20);
    assert!(settings.adaptive());
    assert!(!Settings::fixed(256 * 1024).adaptive());
}

#[test]
fn a_grown_window_is_granted_at_once_and_the_sender_uses_it() {
    let (mut s, mut d) = pair_with(adaptive(1000));
    let a = s.open(Bytes::new());
    let b = s.open(Bytes::new());
    for e in pump(&mut s, &mut d) {
        if let Event::Open { conn, .. } = e {
            d.accept(conn);
        }
    }
    pump(&mut d, &mut s);
    s.send(a, Bytes::from(vec![1u8; 5000]));
    let delivered = |events: Vec<Event>| -> usize {
        events
            .iter()
            .map(|e| match e {
                Event::Data(_, p) => p.len(),
                _ => 0,
            })
            .sum()
    };
    assert_eq!(delivered(pump(&mut s, &mut d)), 1000, "the initial window");
    // Nothing read, yet the window grows: every connection gets the difference at once.
    d.grow_window(4000);
    assert_eq!(d.window(), 4000);
    assert_eq!(
        transmitted(&mut d),
        [
            Frame::Window {
                conn: a,
                increment: 3000
            },
            Frame::Window {
                conn: b,
                increment: 3000
            },
        ]
    );
    d.grow_window(4000);
    d.grow_window(2000);
    assert!(transmitted(&mut d).is_empty(), "never shrinks, no repeats");
    assert_eq!(d.window(), 4000);
    // Re-send the grant (`transmitted` consumed it) the way the sender would receive it.
    let mut wire = BytesMut::new();
    for conn in [a, b] {
        Frame::Window {
            conn,
            increment: 3000,
        }
        .encode(&mut wire);
    }
    assert!(s.receive(&mut wire).expect("valid").is_empty());
    assert_eq!(
        delivered(pump(&mut s, &mut d)),
        3000,
        "the sender used the extra credit"
    );
    assert_eq!(s.pending(a), 1000, "and holds the rest");
    // One byte past all the credit granted still resets the connection.
    let mut wire = BytesMut::new();
    Frame::Data {
        conn: a,
        payload: Bytes::from_static(b"x"),
    }
    .encode(&mut wire);
    let events = d.receive(&mut wire).expect("the stream goes on");
    assert!(
        matches!(&events[..], [Event::Reset { conn, code: ResetCode::Protocol, .. }] if *conn == a),
        "{events:?}"
    );
}

#[test]
fn a_connection_opened_after_growth_is_raised_right_after_its_open_or_opened() {
    let (mut s, mut d) = pair_with(adaptive(1000));
    s.grow_window(4000);
    d.grow_window(8000);
    assert!(transmitted(&mut s).is_empty(), "no connections yet");
    assert!(transmitted(&mut d).is_empty());
    let conn = s.open(Bytes::new());
    let opening = transmitted(&mut s);
    assert_eq!(
        opening,
        [
            Frame::Open {
                conn,
                target: Bytes::new()
            },
            Frame::Window {
                conn,
                increment: 3000
            },
        ],
        "OPEN at the HELLO's window, then raised"
    );
    let mut wire = BytesMut::new();
    for f in &opening {
        f.encode(&mut wire);
    }
    let events = d.receive(&mut wire).expect("valid");
    assert!(matches!(events[..], [Event::Open { .. }]), "{events:?}");
    d.accept(conn);
    assert_eq!(
        transmitted(&mut d),
        [
            Frame::Opened { conn },
            Frame::Window {
                conn,
                increment: 7000
            },
        ]
    );
}
