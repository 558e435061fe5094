//! Resumption across hub nodes (issue 15): the service calls node B for a device held by node
//! A; the session's legs meet on node A, whose `--public-url` points through a TCP forwarder
//! the test can cut. The service's leg is cut mid-transfer; the service SDK joins the stream's
//! URL again, reaches node A (the node that parked the device's half) and the transfer ends
//! byte-identical. Real PostgreSQL and NATS, as in every cluster test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adit_device::{DeviceClient, DeviceOptions, Transport};
use adit_service::{ServiceClient, Session, StreamOptions, TlsOptions};
use adit_testkit::{TestDatabase, TestHub, cluster_node};
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A TCP forwarder whose connections the test cuts, by the order they came in.
struct Forwarder {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Forwarder {
    async fn start(target: Arc<tokio::sync::OnceCell<SocketAddr>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let list = conns.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(to) = target.get().copied() else {
                    continue;
                };
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().expect("lock").push(task.abort_handle());
            }
        });
        Self { addr, conns }
    }

    /// Cuts the `n`th connection (from 0): both its sockets close.
    fn cut(&self, n: usize) {
        self.conns.lock().expect("lock")[n].abort();
    }

    fn count(&self) -> usize {
        self.conns.lock().expect("lock").len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_service_leg_resumes_on_the_node_that_holds_the_parked_half() {
    let db = TestDatabase::create().await;
    let target = Arc::new(tokio::sync::OnceCell::new());
    let forwarder = Forwarder::start(target.clone()).await;
    let public_url = format!("https://127.0.0.1:{}", forwarder.addr.port());
    let adjust_a = cluster_node(&db.url, "a");
    let a = TestHub::start_with(move |c| {
        adjust_a(c);
        c.public_url = Some(public_url);
    })
    .await;
    target.set(a.addr).expect("set once");
    let b = TestHub::start_with(cluster_node(&db.url, "b")).await;
    // Each in-process node made its own dev CA: the clients trust both.
    let both = tempfile::NamedTempFile::new().expect("temp file");
    let pems = [&a.ca_path, &b.ca_path].map(|p| std::fs::read_to_string(p).expect("CA"));
    std::fs::write(both.path(), pems.concat()).expect("write CAs");

    let id = format!("roamer-{}", uuid::Uuid::new_v4().simple());
    let key = b.create_device(&id).await;
    let cs = adit_proto::ConnectionString::for_device(
        &a.owner.host,
        a.owner.port,
        adit_proto::DeviceId::new(&id).expect("valid"),
        key,
    )
    .to_string();
    let mut options = DeviceOptions::default();
    options.tls = TlsOptions::with_ca_file(both.path());
    options.transport = Transport::Tls;
    options.mqtt_port = a.mqtt_addr.port();
    let mut device = DeviceClient::new(&cs, options).expect("device client");
    let device_task = tokio::spawn(async move {
        let request = device.next_request().await.expect("a request");
        assert!(request.asks_stream_protocol());
        let mut session = request.accept_session().await.expect("session");
        while let Some((mut conn, _)) = session.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = conn.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    conn.write_all(&buf[..n]).await.expect("echo");
                }
                conn.shutdown().await.expect("FIN");
            });
        }
        (device, session.ended().await)
    });

    let service = ServiceClient::from_connection_string(
        &b.owner.to_string(),
        &TlsOptions::with_ca_file(both.path()),
    )
    .expect("service client");
    let mut stream_options = StreamOptions::default();
    stream_options.connect_timeout = Duration::from_secs(10);
    let mut session = match service.open_session(&id, "echo", &stream_options).await {
        Ok(Session::Multiplexed(s)) => s,
        Ok(Session::Raw(_)) => panic!("an Adit device answers in adit.stream.v1"),
        Err(e) => panic!("open_session: {e}"),
    };
    // Both legs went through the forwarder to node A: the device's first, then ours.
    assert_eq!(forwarder.count(), 2, "both legs joined node A's public URL");
    let conn = session.open(Bytes::new()).await.expect("a connection");
    let (mut read, mut write) = tokio::io::split(conn);
    const TOTAL: usize = 8 * 1024 * 1024;
    let sent: Vec<u8> = (0..TOTAL).map(|i| (i * 7 % 251) as u8).collect();
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for chunk in sent.chunks(64 * 1024) {
                write.write_all(chunk).await.expect("write");
            }
            write.shutdown().await.expect("FIN");
            write
        })
    };
    let mut back = vec![0u8; TOTAL / 4];
    if let Err(e) = read.read_exact(&mut back).await {
        let ended = tokio::time::timeout(Duration::from_secs(5), session.ended()).await;
        let device_end = tokio::time::timeout(Duration::from_secs(5), device_task)
            .await
            .map(|r| r.map(|(_, ended)| ended));
        panic!(
            "the first quarter: {e}; the session: {ended:?}, {:?}; the device's session: \
             {device_end:?}",
            session.stats()
        );
    }
    forwarder.cut(1);
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), read.read_to_end(&mut rest))
        .await
        .expect("the transfer goes on after the cut")
        .expect("read");
    back.extend_from_slice(&rest);
    let _write = writer.await.expect("writer");
    assert!(back == sent, "8 MiB echoed byte-identical across the cut");
    assert_eq!(session.stats().resumptions, 1, "{:?}", session.stats());
    assert_eq!(
        forwarder.count(),
        3,
        "the service came back through node A's URL"
    );
    session.close();
    device_task.abort();
}
