//! Every timer of a stream's handshake at and past its boundary, under paused time (from
//! just after the registry is opened): the
//! connect timeout (an offline device), the response timeout (a silent device), the handshake
//! deadline (an accepted stream nobody joins), and a service that leaves mid-handshake. The
//! orchestrator runs on real parts (SQLite registry, presence, gateway); the device is a
//! session handle whose command queue the test reads, as the MQTT session would.

use std::sync::atomic::Ordering;
use std::time::Duration;

use adit_hub::gateway::Gateway;
use adit_hub::metrics::Metrics;
use adit_hub::presence::{DeviceCommand, Presence, SessionHandle};
use adit_hub::registry::{NewDevice, Registry};
use adit_hub::streams::{
    Initiate, InitiateError, Initiated, Outcome, RecordLog, StreamConfig, Streams,
};
use adit_proto::DeviceId;
use adit_proto::topic::{StreamRequest, StreamResponse};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const MS: Duration = Duration::from_millis(1);

struct Rig {
    streams: Streams,
    presence: Presence,
    _dir: tempfile::TempDir,
}

async fn rig(config: StreamConfig) -> Rig {
    let dir = tempfile::tempdir().expect("dir");
    let registry = Registry::open_in_dir(dir.path()).await.expect("registry");
    registry
        .create_device(&NewDevice::enabled_sas(
            DeviceId::new("dev").expect("valid"),
        ))
        .await
        .expect("device");
    let (tracker, metrics, presence) =
        (TaskTracker::new(), Metrics::default(), Presence::default());
    let gateway = Gateway::new(
        Default::default(),
        tracker.clone(),
        CancellationToken::new(),
        metrics.clone(),
    );
    let streams = Streams::new(
        config,
        registry,
        presence.clone(),
        gateway,
        "wss://localhost:1".into(),
        tracker,
        RecordLog::new(100, metrics, None),
        "test-node",
    );
    // The registry is set up in real time (its pool has timeouts of its own); every timer
    // under test runs on paused time from here on.
    tokio::time::pause();
    Rig {
        streams,
        presence,
        _dir: dir,
    }
}

/// Connects "dev" (subscribed to stream requests); the receiver gets what the hub sends it.
fn connect(presence: &Presence) -> mpsc::Receiver<DeviceCommand> {
    let (tx, rx) = mpsc::channel(4);
    let handle = SessionHandle::new(presence.next_session_id(), tx, CancellationToken::new());
    handle.streams_subscribed.store(true, Ordering::Release);
    presence.register("dev", handle);
    rx
}

fn request(connect_timeout: Option<Duration>, response_timeout: Option<Duration>) -> Initiate {
    Initiate {
        device: DeviceId::new("dev").expect("valid"),
        module: None,
        name: "ssh".into(),
        connect_timeout,
        response_timeout,
        caller: None,
        api_version: None,
        protocol: None,
        policy: None,
    }
}

fn start(r: &Rig, req: Initiate) -> JoinHandle<Result<Initiated, InitiateError>> {
    let streams = r.streams.clone();
    tokio::spawn(async move { streams.initiate(req).await })
}

/// Spins (without letting paused time move) until `ready`: the registry's SQLite thread
/// answers in real time, and the clock must not jump while it does.
async fn until(mut ready: impl FnMut() -> bool) {
    while !ready() {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_micros(200));
    }
}

async fn delivered(rx: &mut mpsc::Receiver<DeviceCommand>) -> StreamRequest {
    let mut got = None;
    until(|| {
        got = rx.try_recv().ok();
        got.is_some()
    })
    .await;
    match got {
        Some(DeviceCommand::Publish(p)) => StreamRequest::parse(&p.topic).expect("request topic"),
        None => unreachable!("until returned"),
    }
}

/// Lets every ready task run, without moving the clock.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn connect_timeout_waits_for_the_device_exactly_that_long() {
    let r = rig(StreamConfig::default()).await;
    // A device that connects 1 ms before the connect timeout gets the request.
    let early = start(&r, request(Some(Duration::from_secs(5)), None));
    until(|| r.presence.watched() == 1).await;
    tokio::time::sleep(Duration::from_secs(5) - MS).await;
    settle().await;
    assert!(
        !early.is_finished(),
        "still waiting 1 ms before the timeout"
    );
    let mut rx = connect(&r.presence);
    let req = delivered(&mut rx).await;
    assert!(r.streams.answer(
        "dev",
        &StreamResponse {
            accepted: false,
            rid: req.rid,
            protocol: None,
        }
    ));
    assert!(matches!(
        early.await.expect("task"),
        Ok(Initiated::Rejected)
    ));

    // With nobody connecting, the answer is DeviceNotOnline at the timeout, not before.
    tokio::time::resume();
    let r = rig(StreamConfig::default()).await;
    let late = start(&r, request(Some(Duration::from_secs(5)), None));
    until(|| r.presence.watched() == 1).await;
    tokio::time::sleep(Duration::from_secs(5) - MS).await;
    settle().await;
    assert!(!late.is_finished());
    tokio::time::sleep(MS).await;
    settle().await;
    assert!(matches!(
        late.await.expect("task"),
        Err(InitiateError::DeviceNotOnline(_))
    ));
    assert_eq!(r.streams.records()[0].outcome, Outcome::DeviceOffline);
    assert_eq!(r.presence.watched(), 0, "the watch went with the request");
}

#[tokio::test]
async fn response_timeout_at_and_past_its_boundary() {
    let r = rig(StreamConfig::default()).await;
    let mut rx = connect(&r.presence);
    let task = start(&r, request(None, Some(Duration::from_secs(3))));
    let req = delivered(&mut rx).await;
    tokio::time::sleep(Duration::from_secs(3) - MS).await;
    settle().await;
    assert!(
        !task.is_finished(),
        "waiting 1 ms before the response timeout"
    );
    tokio::time::sleep(MS).await;
    settle().await;
    assert!(matches!(
        task.await.expect("task"),
        Err(InitiateError::Timeout)
    ));
    assert_eq!(r.streams.records()[0].outcome, Outcome::TimedOut);
    assert_eq!(r.streams.active(), 0);
    // A late answer finds nobody waiting.
    assert!(!r.streams.answer(
        "dev",
        &StreamResponse {
            accepted: true,
            rid: req.rid,
            protocol: None,
        }
    ));
}

#[tokio::test]
async fn an_accepted_stream_nobody_joins_ends_at_the_handshake_deadline() {
    let config = StreamConfig {
        handshake_timeout: Duration::from_secs(60),
        ..StreamConfig::default()
    };
    let r = rig(config).await;
    let mut rx = connect(&r.presence);
    let task = start(&r, request(None, None));
    let req = delivered(&mut rx).await;
    assert!(r.streams.answer(
        "dev",
        &StreamResponse {
            accepted: true,
            rid: req.rid,
            protocol: None,
        }
    ));
    assert!(matches!(
        task.await.expect("task"),
        Ok(Initiated::Accepted { .. })
    ));
    // The record waits for the gateway; a rendezvous nobody joined is dropped 2 s after the
    // deadline (a half that came alone reports at the deadline itself).
    tokio::time::sleep(Duration::from_secs(62) - MS).await;
    settle().await;
    assert!(
        r.streams.records().is_empty(),
        "no record before the deadline"
    );
    assert_eq!(r.streams.active(), 1, "counted until it ends");
    tokio::time::sleep(MS).await;
    settle().await;
    let records = r.streams.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::HandshakeExpired);
    assert_eq!(r.streams.active(), 0);
}

#[tokio::test]
async fn a_service_that_leaves_after_delivery_is_recorded_as_cancelled_at_once() {
    let r = rig(StreamConfig::default()).await;
    let mut rx = connect(&r.presence);
    let task = start(&r, request(None, Some(Duration::from_secs(60))));
    let req = delivered(&mut rx).await;
    // The HTTP request is dropped (client gone): the initiate future with it.
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    let records = r.streams.records();
    assert_eq!(records.len(), 1, "written when the future is dropped");
    assert_eq!(records[0].outcome, Outcome::Cancelled);
    assert_eq!(records[0].status_code, 499);
    assert_eq!(r.streams.active(), 0, "its place is released");
    assert!(
        !r.streams.answer(
            "dev",
            &StreamResponse {
                accepted: true,
                rid: req.rid,
                protocol: None,
            }
        ),
        "the answer waiter went with it"
    );
    // An hour later nothing else has been written for it.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    settle().await;
    assert_eq!(r.streams.records().len(), 1);
}

#[tokio::test]
async fn a_device_that_disconnects_before_answering_fails_the_request_at_once() {
    let r = rig(StreamConfig::default()).await;
    let mut rx = connect(&r.presence);
    let task = start(&r, request(None, Some(Duration::from_secs(60))));
    let req = delivered(&mut rx).await;
    settle().await;
    assert!(!task.is_finished(), "waiting for the device's answer");
    // The device's session ends (its process died): the session task drops its receiver.
    drop(rx);
    settle().await;
    assert!(
        task.is_finished(),
        "answered without the clock moving, not at the 60 s response timeout"
    );
    let result = task.await.expect("task");
    assert!(
        matches!(&result, Err(InitiateError::DeviceDisconnected(d)) if d == "dev"),
        "{result:?}"
    );
    assert_eq!(r.streams.records()[0].outcome, Outcome::DeviceOffline);
    assert_eq!(r.streams.active(), 0, "its place is released");
    assert!(
        !r.streams.answer(
            "dev",
            &StreamResponse {
                accepted: true,
                rid: req.rid,
                protocol: None,
            }
        ),
        "the answer waiter went with it"
    );
}
