//! A raw MQTT 3.1.1 client for tests: exact control of every packet and byte, over TLS or
//! over WebSocket, so tests can send what no well-behaved client would.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use adit_proto::{Key, SasToken};
use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Login, Packet};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How long a test waits for a packet before failing.
const WAIT: Duration = Duration::from_secs(20);

/// A device-side MQTT connection.
pub struct RawMqtt {
    io: Box<dyn Io>,
    buf: BytesMut,
}

impl std::fmt::Debug for RawMqtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMqtt").finish_non_exhaustive()
    }
}

/// A device SAS token for `host_name/devices/device`, valid for an hour.
pub fn device_token(host_name: &str, device: &str, key: &Key) -> String {
    let expiry = adit_hub::auth::unix_now() + 3600;
    SasToken::sign(
        &adit_proto::resource::identity_uri(host_name, device, None),
        key,
        None,
        expiry,
    )
}

fn connector(ca_path: &Path) -> TlsConnector {
    TlsConnector::from(Arc::new(crate::client_tls_config(ca_path)))
}

impl RawMqtt {
    /// MQTT over TLS to `addr`, verifying the hub as `localhost`.
    pub async fn tls(addr: SocketAddr, ca_path: &Path) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("TCP connect");
        Self::tls_over(tcp, ca_path).await
    }

    /// MQTT over TLS on a TCP connection already open (for tests that time the handshake).
    pub async fn tls_over(tcp: TcpStream, ca_path: &Path) -> Self {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("valid name");
        let tls = connector(ca_path)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        Self {
            io: Box::new(tls),
            buf: BytesMut::new(),
        }
    }

    /// MQTT over WebSocket to `https_addr` at `/$iothub/websocket`, offering `protocol`.
    pub async fn websocket(
        https_addr: SocketAddr,
        ca_path: &Path,
        protocol: Option<&str>,
    ) -> Result<Self, String> {
        let uri: http::Uri = format!("wss://localhost:{}/$iothub/websocket", https_addr.port())
            .parse()
            .expect("valid URI");
        let tcp = TcpStream::connect(https_addr).await.expect("TCP connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("valid name");
        let tls = connector(ca_path)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let mut builder = tokio_websockets::ClientBuilder::from_uri(uri);
        if let Some(p) = protocol {
            builder = builder
                .add_header(
                    http::header::SEC_WEBSOCKET_PROTOCOL,
                    http::HeaderValue::from_str(p).expect("valid header"),
                )
                .map_err(|e| e.to_string())?;
        }
        let (ws, response) = builder.connect_on(tls).await.map_err(|e| e.to_string())?;
        if let Some(p) = protocol {
            let echoed = response.headers().get(http::header::SEC_WEBSOCKET_PROTOCOL);
            assert_eq!(
                echoed.and_then(|v| v.to_str().ok()),
                Some(p),
                "subprotocol echoed as offered"
            );
        }
        Ok(Self {
            io: Box::new(adit_transport::WsIo::new(ws)),
            buf: BytesMut::new(),
        })
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.write(&mut out, 1 << 20).expect("encodes");
        self.send_raw(&out).await;
    }

    /// Sends raw bytes (ignoring errors: the hub may already have closed).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.io.write_all(bytes).await;
        let _ = self.io.flush().await;
    }

    /// The next packet, or `None` once the hub closed the connection. Fails after 20 s.
    pub async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(WAIT, self.recv_inner())
            .await
            .expect("hub answered or closed within 20 s")
    }

    async fn recv_inner(&mut self) -> Option<Packet> {
        loop {
            match Packet::read(&mut self.buf, 1 << 20) {
                Ok(p) => return Some(p),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => panic!("hub sent malformed MQTT: {e}"),
            }
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// True when the hub closes the connection within `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        matches!(
            tokio::time::timeout(within, self.recv_inner()).await,
            Ok(None)
        )
    }

    /// Sends CONNECT and returns the CONNACK code (`None` if the hub closed instead).
    pub async fn connect(
        &mut self,
        client_id: &str,
        username: &str,
        password: &str,
        keep_alive: u16,
    ) -> Option<ConnectReturnCode> {
        let mut connect = Connect::new(client_id);
        connect.keep_alive = keep_alive;
        connect.clean_session = false;
        connect.login = Some(Login::new(username, password));
        self.send(Packet::Connect(connect)).await;
        match self.recv().await {
            Some(Packet::ConnAck(ConnAck { code, .. })) => Some(code),
            Some(other) => panic!("expected CONNACK, got {other:?}"),
            None => None,
        }
    }

    /// PINGREQ, and true when PINGRESP comes back.
    pub async fn ping(&mut self) -> bool {
        self.send(Packet::PingReq).await;
        matches!(self.recv().await, Some(Packet::PingResp))
    }
}
