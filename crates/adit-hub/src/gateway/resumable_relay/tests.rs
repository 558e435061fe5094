use super::*;

use tokio::io::DuplexStream;

type Client = WebSocketStream<DuplexStream>;

/// A leg for the relay and the client end of it, over an in-memory pipe (paused time drives
/// every timer).
fn leg() -> (Leg<DuplexStream>, Client) {
    let (hub, client) = tokio::io::duplex(1 << 16);
    let leg = Leg {
        ws: tokio_websockets::ServerBuilder::new().serve(hub),
        slot: None,
    };
    (
        leg,
        tokio_websockets::ClientBuilder::new().take_over(client),
    )
}

fn settings() -> ResumeSettings {
    ResumeSettings {
        keepalive: Keepalive::new(Duration::from_secs(20), Duration::from_secs(10)).expect("valid"),
        grace: Duration::from_secs(60),
    }
}

/// A RESUME: the returning side's first reattach.
fn resume(position: u64) -> Message {
    link_message(&Frame::Resume {
        attach: 1,
        position,
    })
}

/// The answer to [`resume`].
fn resumed(position: u64) -> Message {
    link_message(&Frame::Resumed {
        attach: 1,
        position,
    })
}

fn link_message(frame: &Frame) -> Message {
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    Message::binary(out.freeze())
}

fn data(bytes: &'static [u8]) -> Message {
    let mut out = BytesMut::new();
    Frame::Data {
        conn: 1,
        payload: bytes::Bytes::from_static(bytes),
    }
    .encode(&mut out);
    Message::binary(out.freeze())
}

/// The next data message a client reads (its WebSocket answers pings meanwhile).
async fn next_data(c: &mut Client) -> Message {
    loop {
        let m = c.next().await.expect("open").expect("message");
        if m.is_binary() || m.is_close() {
            return m;
        }
    }
}

fn bytes_of(m: Message) -> Vec<u8> {
    m.as_payload().to_vec()
}

/// Hands the relay a half that came back on `leg`.
async fn come_back(running: &Running, role: Role, leg: Leg<DuplexStream>) {
    running
        .back
        .send(Reattached {
            role,
            ws: leg.ws,
            slot: None,
        })
        .await
        .expect("relay running");
}

struct Running {
    relay: tokio::task::JoinHandle<RelayOutcome>,
    back: mpsc::Sender<Reattached<DuplexStream>>,
    _tokens: (CancellationToken, CancellationToken),
}

fn start(device: Leg<DuplexStream>, service: Leg<DuplexStream>) -> Running {
    let (back, returning) = mpsc::channel(2);
    let (shutdown, revoked) = (CancellationToken::new(), CancellationToken::new());
    let (s, r) = (shutdown.clone(), revoked.clone());
    let relay = tokio::spawn(async move {
        run(
            device,
            service,
            (Role::Device, VecDeque::new()),
            Instant::now(),
            returning,
            settings(),
            crate::gateway::Traffic::new(),
            &s,
            &r,
        )
        .await
    });
    Running {
        relay,
        back,
        _tokens: (shutdown, revoked),
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_half_comes_back_and_the_parked_half_never_noticed() {
    let (d_leg, mut device) = leg();
    let (s_leg, mut service) = leg();
    let running = start(d_leg, s_leg);

    service.send(data(b"before")).await.expect("send");
    assert_eq!(
        bytes_of(next_data(&mut device).await),
        bytes_of(data(b"before"))
    );

    // The device's network goes: its connection is cut without a Close.
    drop(device);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The service keeps sending while the device is away: dropped, not queued (its side
    // replays), and the service is still read, so it stays healthy.
    service.send(data(b"lost")).await.expect("send");
    // It reads meanwhile, as every client does, which answers the hub's pings.
    let quiet = tokio::time::timeout(Duration::from_secs(30), next_data(&mut service)).await;
    assert!(quiet.is_err(), "nothing reaches the parked service");

    // The device comes back 31 s later: nothing of the service's reaches it before the
    // service answers its RESUME.
    let (d_leg, mut device) = leg();
    come_back(&running, Role::Device, d_leg).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    service.send(data(b"stale")).await.expect("send");
    device.send(resume(6)).await.expect("send");
    assert_eq!(bytes_of(next_data(&mut service).await), bytes_of(resume(6)));
    service.send(resumed(0)).await.expect("send");
    service.send(data(b"replayed")).await.expect("send");
    assert_eq!(bytes_of(next_data(&mut device).await), bytes_of(resumed(0)));
    assert_eq!(
        bytes_of(next_data(&mut device).await),
        bytes_of(data(b"replayed"))
    );

    service
        .send(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))
        .await
        .expect("close");
    let closed = next_data(&mut device).await;
    assert_eq!(
        closed.as_close().map(|(c, _)| c),
        Some(CloseCode::NORMAL_CLOSURE)
    );
    let outcome = running.relay.await.expect("relay");
    assert_eq!(outcome.resumptions, 1);
    assert_eq!(outcome.reason, EndReason::CloseFrame);
    assert_eq!(outcome.closed_by, ClosedBy::Service);
    // From the cut being seen to the device's return.
    assert!(
        outcome.parked >= Duration::from_secs(31) && outcome.parked < Duration::from_secs(32),
        "{:?}",
        outcome.parked
    );
}

#[tokio::test(start_paused = true)]
async fn a_half_not_back_within_the_grace_ends_the_stream_with_a_reason() {
    let (d_leg, device) = leg();
    let (s_leg, mut service) = leg();
    let running = start(d_leg, s_leg);
    let dropped = Instant::now();
    drop(device);
    // The service reads throughout (answering pings); its Close comes at the grace.
    let close = tokio::time::timeout(
        settings().grace - Duration::from_millis(1),
        next_data(&mut service),
    )
    .await;
    assert!(close.is_err(), "still waiting just before the grace");
    let close = next_data(&mut service).await;
    let elapsed = dropped.elapsed();
    assert!(
        elapsed >= settings().grace && elapsed < settings().grace + Duration::from_millis(50),
        "{elapsed:?}"
    );
    let (code, reason) = close.as_close().expect("a Close");
    assert_eq!(code, CloseCode::GOING_AWAY);
    assert!(
        reason.contains("device side dropped and did not come back within 60 s"),
        "{reason}"
    );
    let outcome = running.relay.await.expect("relay");
    assert_eq!(outcome.closed_by, ClosedBy::Device);
    assert_eq!(outcome.reason, EndReason::Disconnected);
    assert_eq!(outcome.resumptions, 0);
}

#[tokio::test(start_paused = true)]
async fn a_half_that_ended_its_input_and_drops_ends_the_stream_at_once() {
    let (d_leg, mut device) = leg();
    let (s_leg, mut service) = leg();
    let running = start(d_leg, s_leg);
    device
        .send(Message::binary(bytes::Bytes::new()))
        .await
        .expect("end of input");
    assert!(next_data(&mut service).await.as_payload().is_empty());
    drop(device);
    let close = next_data(&mut service).await;
    assert!(close.is_close());
    let outcome = running.relay.await.expect("relay");
    assert_eq!(outcome.reason, EndReason::Finished);
    assert_eq!(outcome.closed_by, ClosedBy::Device);
}

#[tokio::test(start_paused = true)]
async fn a_silent_half_is_parked_after_the_pong_deadline_and_can_come_back() {
    let (d_leg, device) = leg();
    let (s_leg, mut service) = leg();
    let running = start(d_leg, s_leg);
    // The device's process is frozen: its socket stays open and never answers a ping. The
    // service reads on; the relay parks it after interval + timeout (30 s) and then waits
    // the grace, so the stream is still up at 89 s.
    let waited = tokio::time::timeout(Duration::from_secs(89), next_data(&mut service)).await;
    assert!(waited.is_err(), "no Close while the device may come back");
    let (d_leg, mut back) = leg();
    come_back(&running, Role::Device, d_leg).await;
    back.send(resume(0)).await.expect("send");
    assert_eq!(bytes_of(next_data(&mut service).await), bytes_of(resume(0)));
    drop(device);
    service
        .send(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))
        .await
        .expect("close");
    let outcome = running.relay.await.expect("relay");
    assert_eq!(outcome.resumptions, 1);
}

#[test]
fn only_a_lone_resume_or_resumed_frame_counts_as_a_resume() {
    assert!(is_resume(&resume(42)));
    assert!(is_resume(&resumed(42)));
    assert!(!is_resume(&data(b"12345678")));
    assert!(!is_resume(&link_message(&Frame::Ack { position: 42 })));
    let mut two = BytesMut::new();
    Frame::Resume {
        attach: 1,
        position: 1,
    }
    .encode(&mut two);
    Frame::Resumed {
        attach: 1,
        position: 2,
    }
    .encode(&mut two);
    assert!(!is_resume(&Message::binary(two.freeze())));
}

#[tokio::test(start_paused = true)]
async fn a_half_that_comes_back_while_the_other_is_away_ends_the_stream() {
    let (d_leg, device) = leg();
    let (s_leg, _service) = leg();
    let running = start(d_leg, s_leg);
    drop(device);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The service's own link failed too and it reattaches: its RESUME has nobody to answer it.
    let (s_leg, mut service) = leg();
    come_back(&running, Role::Service, s_leg).await;
    let close = tokio::time::timeout(Duration::from_secs(5), next_data(&mut service))
        .await
        .expect("ended at once, not at the grace");
    assert!(close.is_close());
    let outcome = running.relay.await.expect("relay");
    assert_eq!(outcome.closed_by, ClosedBy::Device);
}

#[tokio::test(start_paused = true)]
async fn what_the_first_half_sent_before_pairing_goes_first() {
    let (d_leg, mut device) = leg();
    let (s_leg, mut service) = leg();
    let (back, returning) = mpsc::channel(2);
    let (shutdown, revoked) = (CancellationToken::new(), CancellationToken::new());
    let held: VecDeque<Message> = [data(b"one"), data(b"two")].into_iter().collect();
    let relay = tokio::spawn(async move {
        run(
            d_leg,
            s_leg,
            (Role::Device, held),
            Instant::now(),
            returning,
            settings(),
            crate::gateway::Traffic::new(),
            &shutdown,
            &revoked,
        )
        .await
    });
    device.send(data(b"three")).await.expect("send");
    for want in [data(b"one"), data(b"two"), data(b"three")] {
        assert_eq!(bytes_of(next_data(&mut service).await), bytes_of(want));
    }
    drop(back);
    drop(device);
    drop(service);
    let _ = relay.await;
}

#[tokio::test(start_paused = true)]
async fn a_parked_half_that_comes_back_itself_gets_through_with_its_resume() {
    let (d_leg, device) = leg();
    let (s_leg, service) = leg();
    let running = start(d_leg, s_leg);
    // The device drops and comes back; its RESUME reaches the service...
    drop(device);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (d_leg, mut device) = leg();
    come_back(&running, Role::Device, d_leg).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    device.send(resume(6)).await.expect("send");
    // ...but the service's link fails before it answers, and the service comes back too. Its
    // RESUME answers the device's as well, so the gate lets it through.
    drop(service);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s_leg, mut service) = leg();
    come_back(&running, Role::Service, s_leg).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    service.send(resume(3)).await.expect("send");
    assert_eq!(bytes_of(next_data(&mut device).await), bytes_of(resume(3)));
    device.send(resumed(6)).await.expect("send");
    assert_eq!(
        bytes_of(next_data(&mut service).await),
        bytes_of(resumed(6))
    );
    service
        .send(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))
        .await
        .expect("close");
    let outcome = running.relay.await.expect("relay");
    assert_eq!(outcome.resumptions, 2);
}
