//! Sessions that lose their link and resume: bulk transfers across cuts through the test
//! gateway, a partial frame at a cut, and the ends of a resume grace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use adit_stream_protocol::frame::Frame;
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use super::super::*;
use super::gateway::{Gateway, Side};
use super::wire::{self, MsgLink, encode, hello, pattern};

/// Sends `out` on `stream` while reading it to its end; returns what was read.
async fn exchange(stream: MuxStream, out: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        w.write_all(&out).await.expect("write");
        w.shutdown().await.expect("FIN");
        w
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.expect("read to FIN");
    // Both halves go together, after both directions finished: no reset.
    let w = writer.await.expect("writer");
    drop(r.unsplit(w));
    got
}

/// A small xorshift, so cut points are spread but the same on every run.
fn spread(seed: &mut u64, below: u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed % below
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_transfers_on_several_connections_survive_cuts_exactly() {
    const CONNS: u64 = 3;
    let (up, down) = (1_500_000, 1_000_000);
    // Cuts at scattered points of the ~7.5 MB crossing, on either side, far enough apart
    // that each resume is done before the next cut.
    let mut seed = 0x5EED_u64;
    let plan: Vec<(u64, Side)> = (0..6)
        .map(|i| {
            let at = 300_000 + i * 1_000_000 + spread(&mut seed, 600_000);
            let side = if spread(&mut seed, 2) == 0 {
                Side::Service
            } else {
                Side::Device
            };
            (at, side)
        })
        .collect();
    let cuts_per_side = |side| plan.iter().filter(|(_, s)| *s == side).count() as u64;
    let (service_cuts, device_cuts) = (cuts_per_side(Side::Service), cuts_per_side(Side::Device));
    let (gateway, s_link, d_link) = Gateway::start(plan.clone());
    let offline = Duration::from_millis(20);
    let settings = Settings::default();
    let service = MuxSession::start_resumable(
        s_link,
        gateway.reattach(Side::Service, offline),
        Role::Service,
        settings,
        ResumeOptions::default(),
    );
    let mut device = MuxSession::start_resumable(
        d_link,
        gateway.reattach(Side::Device, offline),
        Role::Device,
        settings,
        ResumeOptions::default(),
    );
    let mut tasks = Vec::new();
    for i in 0..CONNS {
        let s = service.open(Bytes::new()).await.expect("open");
        let (d, _) = device.accept().await.expect("accept");
        tasks.push(tokio::spawn(async move {
            let got = exchange(s, pattern(i, up)).await;
            assert!(got == pattern(100 + i, down), "service side of {i} exact");
        }));
        tasks.push(tokio::spawn(async move {
            let got = exchange(d, pattern(100 + i, down)).await;
            assert!(got == pattern(i, up), "device side of {i} exact");
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("transfers finish")
            .expect("transfer task");
    }
    assert_eq!(
        gateway.planned_cuts(),
        plan.len() as u64,
        "every cut happened"
    );
    let (s, d) = (service.stats(), device.stats());
    // Each cut resumes both sides: the one that reattached and the one that answered.
    assert_eq!(s.resumptions, plan.len() as u64, "{s:?}");
    assert_eq!(d.resumptions, plan.len() as u64, "{d:?}");
    assert!(s.detached >= offline * service_cuts as u32, "{s:?}");
    assert!(d.detached >= offline * device_cuts as u32, "{d:?}");
    if service_cuts == 0 {
        assert_eq!(s.detached, Duration::ZERO);
    }
    service.close();
    assert_eq!(
        device.ended().await,
        Ok(()),
        "the peer's end is a clean end"
    );
}

#[tokio::test(start_paused = true)]
async fn a_partial_frame_at_a_cut_is_not_counted_and_stale_frames_before_resume_are_dropped() {
    let (first, mut wire) = wire::link();
    let offline = Duration::from_millis(100);
    let (give, handed) = wire::handed(offline);
    let mut device = MuxSession::start_resumable(
        first,
        handed,
        Role::Device,
        Settings::default(),
        ResumeOptions::default(),
    );
    // The service side's HELLO and OPEN, then half of a DATA frame; then the link is cut.
    let mut opening = encode(&hello(1 << 20)).to_vec();
    opening.extend_from_slice(&encode(&Frame::Open {
        conn: 1,
        target: Bytes::new(),
    }));
    let whole_frames = opening.len() as u64;
    wire.tx.send(Bytes::from(opening)).expect("send");
    let data = encode(&Frame::Data {
        conn: 1,
        payload: Bytes::from_static(b"lost in the cut"),
    });
    wire.tx.send(data.slice(..12)).expect("send");
    let from_device: usize = wire::settle(&mut wire)
        .await
        .iter()
        .filter(|m| !wire::is_link(m))
        .map(Bytes::len)
        .sum();
    let (mut stream, _) = device.accept().await.expect("accepted");
    drop(wire);

    let (second, mut wire) = wire::link();
    give.send(second).expect("hand over");
    let first_message = wire.rx.recv().await.expect("RESUME");
    assert_eq!(
        wire::resume(&first_message),
        Some((1, whole_frames)),
        "the half frame is not counted"
    );
    // Something the service side wrote before it saw that RESUME: dropped.
    let stale = encode(&Frame::Data {
        conn: 1,
        payload: Bytes::from_static(b"stale"),
    });
    wire.tx.send(stale).expect("send");
    wire.tx
        .send(encode(&Frame::Resumed {
            attach: 1,
            position: from_device as u64,
        }))
        .expect("send");
    wire.tx
        .send(encode(&Frame::Data {
            conn: 1,
            payload: Bytes::from_static(b"fresh"),
        }))
        .expect("send");
    let mut got = [0u8; 5];
    stream.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"fresh");
    let stats = device.stats();
    assert_eq!(stats.resumptions, 1);
    assert_eq!(
        stats.detached, offline,
        "from the cut to the peer's RESUMED"
    );
    assert!(
        wire::settle(&mut wire)
            .await
            .iter()
            .all(|m| wire::is_link(m)),
        "nothing to replay: the device sent nothing the peer lacked (ACK and PING only)"
    );
}

/// Always fails, as a network that stays down does; records when it was tried.
#[derive(Debug)]
struct Down {
    tried: Arc<Mutex<Vec<Instant>>>,
}

impl Reattach for Down {
    type Link = MsgLink;

    async fn reattach(&mut self) -> Result<MsgLink, ReattachError> {
        self.tried
            .lock()
            .expect("not poisoned")
            .push(Instant::now());
        Err(ReattachError::Retry("network down".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn an_outage_longer_than_the_grace_ends_the_session_at_the_grace() {
    let grace = Duration::from_secs(10);
    let (gateway, s_link, d_link) = Gateway::start(Vec::new());
    let service = MuxSession::start(s_link, Role::Service, Settings::default());
    let tried = Arc::new(Mutex::new(Vec::new()));
    let mut device = MuxSession::start_resumable(
        d_link,
        Down {
            tried: tried.clone(),
        },
        Role::Device,
        Settings::default(),
        ResumeOptions {
            grace,
            ..ResumeOptions::default()
        },
    );
    let s = service.open(Bytes::new()).await.expect("open");
    let (_d, _) = device.accept().await.expect("accepted");
    let cut = Instant::now();
    gateway.cut(Side::Device);
    let ended = device.ended();
    tokio::pin!(ended);
    assert!(
        tokio::time::timeout(grace - Duration::from_millis(1), &mut ended)
            .await
            .is_err(),
        "still trying 1 ms before the grace ends"
    );
    let result = ended.await;
    assert_eq!(cut.elapsed(), grace, "ended at the grace exactly");
    let Err(e @ SessionError::GraceExpired { .. }) = result else {
        panic!("{result:?}");
    };
    let text = e.to_string();
    assert!(
        text.contains("10 s resume grace") && text.contains("network down"),
        "{text}"
    );
    let offsets: Vec<u64> = tried
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|t| (*t - cut).as_millis() as u64)
        .collect();
    assert_eq!(
        offsets,
        [0, 250, 750, 1750, 3750, 5750, 7750, 9750],
        "at once, then 250 ms doubling to 2 s"
    );
    drop(s);
}

/// Never answers, as a gateway that accepts TCP and then says nothing.
#[derive(Debug)]
struct Hangs;

impl Reattach for Hangs {
    type Link = MsgLink;

    async fn reattach(&mut self) -> Result<MsgLink, ReattachError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn an_attempt_still_running_at_the_grace_is_given_up() {
    let grace = Duration::from_secs(3);
    let (gateway, s_link, d_link) = Gateway::start(Vec::new());
    let _service = MuxSession::start(s_link, Role::Service, Settings::default());
    let mut device = MuxSession::start_resumable(
        d_link,
        Hangs,
        Role::Device,
        Settings::default(),
        ResumeOptions {
            grace,
            ..ResumeOptions::default()
        },
    );
    let cut = Instant::now();
    gateway.cut(Side::Device);
    let result = device.ended().await;
    assert_eq!(cut.elapsed(), grace);
    assert!(
        matches!(result, Err(SessionError::GraceExpired { .. })),
        "{result:?}"
    );
}

/// The hub no longer knows the stream.
#[derive(Debug)]
struct Gone;

impl Reattach for Gone {
    type Link = MsgLink;

    async fn reattach(&mut self) -> Result<MsgLink, ReattachError> {
        Err(ReattachError::Gone(
            "401: the resume token was refused".into(),
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_the_hub_calls_gone_ends_at_once() {
    let (gateway, s_link, d_link) = Gateway::start(Vec::new());
    let _service = MuxSession::start(s_link, Role::Service, Settings::default());
    let mut device = MuxSession::start_resumable(
        d_link,
        Gone,
        Role::Device,
        Settings::default(),
        ResumeOptions::default(),
    );
    let cut = Instant::now();
    gateway.cut(Side::Device);
    let result = device.ended().await;
    assert_eq!(cut.elapsed(), Duration::ZERO, "no retries");
    assert_eq!(
        result,
        Err(SessionError::Gone(
            "401: the resume token was refused".into()
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_reattach_a_failed_link_ends_the_session() {
    let (gateway, s_link, d_link) = Gateway::start(Vec::new());
    let _service = MuxSession::start(s_link, Role::Service, Settings::default());
    let mut device = MuxSession::start(d_link, Role::Device, Settings::default());
    gateway.cut(Side::Device);
    let result = device.ended().await;
    assert!(
        matches!(&result, Err(SessionError::Link(why)) if why.contains("link cut")),
        "{result:?}"
    );
}
