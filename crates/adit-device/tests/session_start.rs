//! The start of a multiplexed session through a real hub (issue 15): the service opens a
//! connection and drops it at once (a readiness probe), then one whose device end speaks first
//! (as sshd does), forty sessions in a row. Each must carry the device's first bytes. The
//! hub once started reading the second half before the first half's writer existed, and
//! dropped what came in between: a lost HELLO or OPEN stalled the session (about one in
//! forty) or ended it at once.

use std::time::Duration;

use adit_device::{DeviceClient, DeviceOptions, Transport};
use adit_service::{ServiceClient, Session, StreamOptions, TlsOptions};
use adit_testkit::TestHub;
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_sessions_in_a_row_each_carry_the_devices_first_bytes() {
    let hub = TestHub::start().await;
    let key = hub.create_device("probe").await;
    let cs = adit_proto::ConnectionString::for_device(
        &hub.owner.host,
        hub.owner.port,
        adit_proto::DeviceId::new("probe").expect("valid"),
        key,
    )
    .to_string();
    let mut o = DeviceOptions::default();
    o.tls = TlsOptions::with_ca_file(&hub.ca_path);
    o.transport = Transport::WebSocket;
    o.mqtt_port = hub.mqtt_addr.port();
    let mut device = DeviceClient::new(&cs, o).expect("device");
    tokio::spawn(async move {
        while let Some(request) = device.next_request().await {
            tokio::spawn(async move {
                let mut session = request.accept_session().await.expect("session");
                while let Some((mut conn, _)) = session.accept().await {
                    tokio::spawn(async move {
                        let _ = conn.write_all(b"SSH-2.0-server\r\n").await;
                        let mut buf = [0u8; 1024];
                        while let Ok(n) = conn.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                        }
                    });
                }
                let _ = session.ended().await;
            });
        }
    });
    let service = ServiceClient::from_connection_string(
        &hub.owner.to_string(),
        &TlsOptions::with_ca_file(&hub.ca_path),
    )
    .expect("client");
    let mut opts = StreamOptions::default();
    opts.connect_timeout = Duration::from_secs(10);
    for i in 0..40 {
        let Ok(Session::Multiplexed(mut session)) =
            service.open_session("probe", "ssh", &opts).await
        else {
            panic!("session {i}");
        };
        let probe = session.open(Bytes::new()).await.expect("open");
        drop(probe);
        let mut conn = session.open(Bytes::new()).await.expect("open");
        conn.write_all(b"SSH-2.0-client\r\n").await.expect("write");
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            other => {
                let ended = tokio::time::timeout(Duration::from_secs(2), session.ended()).await;
                panic!(
                    "session {i}: {other:?}; ended {ended:?}; {:?}",
                    session.stats()
                );
            }
        }
        session.close();
    }
}
