//! `GatewayHostName` in the device SDK, against a hub named `hub.invalid` (a name that does
//! not resolve) with no `--public-url`, so the stream URLs it hands out name `hub.invalid`
//! too: the device connects at `GatewayHostName`, and joins those stream URLs there.

use std::time::Duration;

use adit_device::{DeviceClient, DeviceOptions, TlsOptions, Transport};
use adit_proto::{ConnectionString, DeviceId};
use adit_testkit::{TestHub, gateway_connect};
use adit_transport::WsIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_urls_naming_host_name_are_joined_at_gateway_host_name() {
    let hub = TestHub::start_with(|c| c.hostname = "hub.invalid".to_string()).await;
    let port = hub.addr.port();
    assert_eq!(hub.host_name(), format!("hub.invalid:{port}"));
    let key = hub.create_device("gw").await;
    let device = DeviceId::new("gw").expect("valid id");
    let cs = ConnectionString::for_device(&hub.owner.host, hub.owner.port, device, key);
    let cs = format!("{cs};GatewayHostName=127.0.0.1:{port}");

    let mut options = DeviceOptions::default();
    options.tls = TlsOptions::with_ca_file(&hub.ca_path);
    options.transport = Transport::WebSocket;
    let mut client = DeviceClient::new(&cs, options).expect("client starts");
    tokio::time::timeout(Duration::from_secs(20), client.connected())
        .await
        .expect("connects through GatewayHostName");

    let device_side = async {
        let request = client.next_request().await.expect("a request");
        let joined = request.url().to_string();
        (joined, request.accept().await.expect("joins the gateway"))
    };
    let (reply, (joined, mut device_stream)) =
        tokio::join!(hub.initiate("gw", "echo", Some(10.0), None), device_side);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let offered = reply.url.expect("stream URL");
    let path = offered
        .strip_prefix(&format!("wss://hub.invalid:{port}"))
        .unwrap_or_else(|| panic!("the hub's URL names its HostName: {offered}"));
    assert!(path.starts_with("/bridges/"), "{offered}");
    assert!(
        joined.starts_with(&format!("wss://127.0.0.1:{port}/bridges/")),
        "the device joins at GatewayHostName: {joined}"
    );

    // The service half (which can resolve the hub) joins and the bytes flow both ways.
    let service_url = offered.replace("hub.invalid", "localhost");
    let ws = gateway_connect(
        &service_url,
        &reply.token.expect("token"),
        &hub.ca_path,
        None,
    )
    .await
    .expect("service joins");
    let mut service_stream = WsIo::new(ws);
    service_stream.write_all(b"ping").await.expect("write");
    service_stream.flush().await.expect("flush");
    let mut got = [0u8; 4];
    device_stream.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"ping");
    device_stream.write_all(b"pong").await.expect("write");
    device_stream.flush().await.expect("flush");
    service_stream.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"pong");
    client.shutdown().await;
}
