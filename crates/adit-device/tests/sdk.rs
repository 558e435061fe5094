//! The device and service SDKs together against a real hub.

use std::time::Duration;

use adit_device::{ConnectionState, DeviceClient, DeviceOptions, Transport};
use adit_service::{Error as ServiceError, ServiceClient, StreamOptions, TlsOptions};
use adit_testkit::TestHub;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn device_cs(hub: &TestHub, id: &str, key: &adit_proto::Key) -> String {
    adit_proto::ConnectionString::for_device(
        &hub.owner.host,
        hub.owner.port,
        adit_proto::DeviceId::new(id).expect("valid"),
        key.clone(),
    )
    .to_string()
}

fn options(hub: &TestHub, transport: Transport) -> DeviceOptions {
    let mut o = DeviceOptions::default();
    o.tls = TlsOptions::with_ca_file(&hub.ca_path);
    o.transport = transport;
    o.mqtt_port = hub.mqtt_addr.port();
    o.min_backoff = Duration::from_millis(100);
    o.max_backoff = Duration::from_millis(500);
    o
}

fn service(hub: &TestHub) -> ServiceClient {
    ServiceClient::from_connection_string(
        &hub.owner.to_string(),
        &TlsOptions::with_ca_file(&hub.ca_path),
    )
    .expect("client")
}

/// Serves requests: "echo" is accepted and echoed until EOF, then answered "bye" and
/// half-closed; anything else is rejected.
fn spawn_device(mut client: DeviceClient) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(request) = client.next_request().await {
            if request.name() != "echo" {
                request.reject().await.expect("reject sent");
                continue;
            }
            let mut stream = request.accept().await.expect("accepted");
            tokio::spawn(async move {
                let mut got = Vec::new();
                stream
                    .read_to_end(&mut got)
                    .await
                    .expect("read to the service's EOF");
                stream.write_all(&got).await.expect("echo");
                stream.write_all(b"bye").await.expect("bye");
                stream.shutdown().await.expect("half-close");
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
            });
        }
    })
}

async fn round_trip(service: &ServiceClient, device: &str, payload: &[u8]) -> Vec<u8> {
    let mut stream = service
        .open_stream(device, "echo", &StreamOptions::default())
        .await
        .expect("stream opens");
    stream.write_all(payload).await.expect("write");
    // Half-close: the device sees EOF, yet its answer still reaches us.
    stream.shutdown().await.expect("half-close");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.expect("reply");
    let _ = stream.close().await;
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_round_trip_over_both_transports() {
    let hub = TestHub::start().await;
    for (id, transport) in [
        ("ws-dev", Transport::WebSocket),
        ("tls-dev", Transport::Tls),
    ] {
        let key = hub.create_device(id).await;
        let mut client = DeviceClient::new(&device_cs(&hub, id, &key), options(&hub, transport))
            .expect("client");
        client.connected().await;
        assert_eq!(client.state(), ConnectionState::Connected);
        let device = spawn_device(client);
        let reply = round_trip(&service(&hub), id, b"ping over the tunnel").await;
        assert_eq!(reply, b"ping over the tunnelbye");
        device.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_and_lookup_errors_are_typed() {
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    hub.create_device("offline").await;
    let mut client = DeviceClient::new(
        &device_cs(&hub, "d1", &key),
        options(&hub, Transport::WebSocket),
    )
    .expect("client");
    client.connected().await;
    let _device = spawn_device(client);
    let svc = service(&hub);
    let o = StreamOptions::default();
    assert!(
        matches!(svc.open_stream("d1", "forbidden", &o).await, Err(ServiceError::Rejected(d)) if d == "d1")
    );
    assert!(matches!(
        svc.open_stream("ghost", "echo", &o).await,
        Err(ServiceError::DeviceNotFound(_))
    ));
    assert!(matches!(
        svc.open_stream("offline", "echo", &o).await,
        Err(ServiceError::DeviceOffline(_))
    ));
    let reader = adit_proto::ConnectionString::for_policy(
        &hub.owner.host,
        hub.owner.port,
        "registryRead",
        hub.policy_key("registryRead").await,
    );
    let reader = ServiceClient::from_connection_string(
        &reader.to_string(),
        &TlsOptions::with_ca_file(&hub.ca_path),
    )
    .expect("client");
    assert!(matches!(
        reader.open_stream("d1", "echo", &o).await,
        Err(ServiceError::Unauthorized(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_reconnects_after_the_hub_restarts() {
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    let mut client = DeviceClient::new(
        &device_cs(&hub, "d1", &key),
        options(&hub, Transport::WebSocket),
    )
    .expect("client");
    client.connected().await;
    // Watch the state from outside while the request loop owns the client.
    let device = spawn_device(client);
    assert_eq!(
        round_trip(&service(&hub), "d1", b"before").await,
        b"beforebye"
    );

    let hub = hub.restart_on_same_ports().await;
    // The device comes back by itself (backoff 100-500 ms); a new stream then works.
    let svc = service(&hub);
    let mut attempt = 0;
    let reply = loop {
        let mut o = StreamOptions::default();
        o.connect_timeout = Duration::from_secs(10);
        match svc.open_stream("d1", "echo", &o).await {
            Ok(mut stream) => {
                stream.write_all(b"after").await.expect("write");
                stream.shutdown().await.expect("half-close");
                let mut reply = Vec::new();
                stream.read_to_end(&mut reply).await.expect("reply");
                break reply;
            }
            Err(e) if attempt < 3 => {
                attempt += 1;
                eprintln!("retrying after {e}");
            }
            Err(e) => panic!("device did not come back: {e}"),
        }
    };
    assert_eq!(reply, b"afterbye");
    device.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_device_ends_the_service_stream_with_an_error() {
    let hub = TestHub::start().await;
    let key = hub.create_device("d1").await;
    let mut client = DeviceClient::new(&device_cs(&hub, "d1", &key), options(&hub, Transport::Tls))
        .expect("client");
    client.connected().await;
    let held = tokio::spawn(async move {
        let request = client.next_request().await.expect("request");
        let stream = request.accept().await.expect("accepted");
        // Hold the stream briefly, then vanish without a close (as a killed process would).
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(stream);
        drop(client);
    });
    let mut stream = service(&hub)
        .open_stream("d1", "any", &StreamOptions::default())
        .await
        .expect("opens");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("ends promptly, no hang");
    assert!(
        read.is_err(),
        "an aborted stream is an error, not EOF: {read:?}"
    );
    held.await.expect("device task");
}
