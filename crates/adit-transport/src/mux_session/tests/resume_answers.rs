//! Which RESUME and RESUMED count: an answer is matched to the RESUME it answers by the
//! attach number, so an answer to an attempt whose link failed since cannot start the replay
//! at the wrong place; a RESUME is answered once; an answer is never answered; and a side
//! waiting for its answer that reads the peer's RESUME instead takes it as one.

use std::time::Duration;

use adit_stream_protocol::frame::Frame;
use bytes::Bytes;
use tokio::io::AsyncReadExt as _;

use super::super::*;
use super::wire::{self, Wire, encode, hello};

/// A device session whose first link carried the service side's HELLO and OPEN; returns the
/// session, its accepted stream, where the test gives it links, the first link's far end and
/// the bytes of each direction so far (to the device, from the device).
async fn device_after_opening(
    offline: Duration,
) -> (
    MuxSession,
    MuxStream,
    tokio::sync::mpsc::UnboundedSender<wire::MsgLink>,
    Wire,
    (u64, u64),
) {
    let (first, mut wire) = wire::link();
    let (give, handed) = wire::handed(offline);
    let mut device = MuxSession::start_resumable(
        first,
        handed,
        Role::Device,
        Settings::default(),
        ResumeOptions::default(),
    );
    let mut opening = encode(&hello(1 << 20)).to_vec();
    opening.extend_from_slice(&encode(&Frame::Open {
        conn: 1,
        target: Bytes::new(),
    }));
    let to_device = opening.len() as u64;
    wire.tx.send(Bytes::from(opening)).expect("send");
    let (stream, _) = device.accept().await.expect("accepted");
    let from_device = data_len(&wire::settle(&mut wire).await);
    (device, stream, give, wire, (to_device, from_device))
}

/// Bytes of the data messages among `messages`.
fn data_len(messages: &[Bytes]) -> u64 {
    messages
        .iter()
        .filter(|m| !wire::is_link(m))
        .map(|m| m.len() as u64)
        .sum()
}

fn data(payload: &'static [u8]) -> Bytes {
    encode(&Frame::Data {
        conn: 1,
        payload: Bytes::from_static(payload),
    })
}

#[tokio::test(start_paused = true)]
async fn an_answer_to_an_attempt_whose_link_failed_is_dropped_with_what_follows_it() {
    let offline = Duration::from_millis(100);
    let (device, mut stream, give, wire, (to_device, from_device)) =
        device_after_opening(offline).await;
    drop(wire);
    // The first attempt's link fails before the answer comes; the second's RESUME says 2.
    let (second, mut wire) = wire::link();
    give.send(second).expect("hand over");
    let m = wire.rx.recv().await.expect("RESUME");
    assert_eq!(wire::resume(&m), Some((1, to_device)));
    drop(wire);
    let (third, mut wire) = wire::link();
    give.send(third).expect("hand over");
    let m = wire.rx.recv().await.expect("RESUME");
    assert_eq!(
        wire::resume(&m),
        Some((2, to_device)),
        "the next attach number"
    );
    // The peer's answer to the first attempt, late (it went out before the peer saw the
    // second), and the replay that followed it: a position of 0 would replay everything.
    wire.tx
        .send(encode(&Frame::Resumed {
            attach: 1,
            position: 0,
        }))
        .expect("send");
    wire.tx.send(data(b"stale")).expect("send");
    wire.tx
        .send(encode(&Frame::Resumed {
            attach: 2,
            position: from_device,
        }))
        .expect("send");
    wire.tx.send(data(b"fresh")).expect("send");
    let mut got = [0u8; 5];
    stream.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"fresh", "nothing of what followed the stale answer");
    assert_eq!(
        data_len(&wire::settle(&mut wire).await),
        0,
        "no replay: the right answer says the peer has everything"
    );
    let stats = device.stats();
    assert_eq!(stats.resumptions, 1, "one outage, one resumption");
    assert_eq!(
        stats.detached,
        2 * offline,
        "from the first cut to the right answer"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resume_is_answered_once_and_an_answer_is_never_answered() {
    let (link, mut wire) = wire::link();
    let device = MuxSession::start(link, Role::Device, Settings::default());
    let hello_len = data_len(&wire::settle(&mut wire).await);
    assert!(hello_len > 0, "its HELLO went");
    let resume = |attach| {
        encode(&Frame::Resume {
            attach,
            position: 0,
        })
    };
    wire.tx.send(resume(1)).expect("send");
    let after = wire::settle(&mut wire).await;
    assert_eq!(wire::resumed(&after[0]), Some((1, 0)));
    assert_eq!(data_len(&after), hello_len, "the HELLO again");
    // The same RESUME again, and an answer nobody asked for: neither is answered or
    // replayed for (two sides answering each other's answers would never stop).
    wire.tx.send(resume(1)).expect("send");
    wire.tx
        .send(encode(&Frame::Resumed {
            attach: 1,
            position: 0,
        }))
        .expect("send");
    let quiet = wire::settle(&mut wire).await;
    assert!(
        quiet.iter().all(|m| wire::resumed(m).is_none()) && data_len(&quiet) == 0,
        "{quiet:?}"
    );
    // The peer's next reattach is answered.
    wire.tx.send(resume(2)).expect("send");
    let after = wire::settle(&mut wire).await;
    assert_eq!(wire::resumed(&after[0]), Some((2, 0)));
    assert_eq!(data_len(&after), hello_len);
    assert_eq!(device.stats().resumptions, 2);
}

#[tokio::test(start_paused = true)]
async fn a_side_awaiting_its_answer_takes_the_peers_resume_as_one() {
    let offline = Duration::from_millis(100);
    let (device, mut stream, give, wire, (to_device, from_device)) =
        device_after_opening(offline).await;
    drop(wire);
    let (second, mut wire) = wire::link();
    give.send(second).expect("hand over");
    let m = wire.rx.recv().await.expect("RESUME");
    assert_eq!(wire::resume(&m), Some((1, to_device)));
    // The peer's link failed too, and it came back first: its RESUME, not an answer.
    wire.tx
        .send(encode(&Frame::Resume {
            attach: 1,
            position: from_device,
        }))
        .expect("send");
    let m = wire.rx.recv().await.expect("RESUMED");
    assert_eq!(wire::resumed(&m), Some((1, to_device)));
    // The peer replays from there, and the device takes it.
    wire.tx.send(data(b"fresh")).expect("send");
    let mut got = [0u8; 5];
    stream.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"fresh");
    let stats = device.stats();
    assert_eq!(stats.resumptions, 1);
    assert_eq!(stats.detached, offline);
}
