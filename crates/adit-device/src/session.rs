//! The background task that keeps the device connected: transport, CONNECT, SUBSCRIBE, then
//! requests in and answers out, with keep-alive pings; on any failure, back off and start over.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use adit_proto::remote_text;
use adit_proto::resource::{encode_component, identity_uri};
use adit_proto::topic::{
    ClientId, STREAMS_POST_FILTER, STREAMS_RES_FILTER, StreamRequest, StreamResponse,
    format_username, redact_auth,
};
use adit_proto::{DeviceId, Key, ModuleId, SasToken};
use adit_transport::{ConnectionError, MqttConnection, WsIo};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    Connect, ConnectReturnCode, Login, Packet, Publish, Subscribe, SubscribeFilter,
    SubscribeReasonCode,
};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::client::ConnectionState;
use crate::endpoint::Endpoint;
use crate::incoming::IncomingStream;
use crate::renewal;
use crate::{DeviceOptions, Transport};

const MAX_PACKET: usize = 256 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const API_VERSION: &str = "2021-04-12";

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Everything needed to (re)connect.
pub struct Settings {
    pub endpoint: Endpoint,
    pub device: DeviceId,
    pub module: Option<ModuleId>,
    pub key: Key,
    pub options: DeviceOptions,
    pub tls: Arc<ClientConfig>,
}

pub struct Session {
    pub settings: Settings,
    pub requests: mpsc::Sender<IncomingStream>,
    pub state: watch::Sender<ConnectionState>,
    pub cancel: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A configuration fault, not an outage: retried, but logged as a warning with the fix.
    #[error("the hub's TLS certificate was refused: {0}")]
    Certificate(String),
    #[error("hub refused the connection: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("hub refused the stream subscription")]
    SubscriptionRefused,
    #[error("connection lost: {0}")]
    Lost(String),
    #[error("no traffic from the hub within the keep-alive")]
    KeepAlive,
    /// Not a failure: the token is due for renewal, so reconnect at once with a fresh one.
    #[error("SAS token due for renewal")]
    Renew,
}

impl From<ConnectionError> for SessionError {
    /// With the whole chain: `ConnectionError::Io` alone reads "I/O error", which hides why
    /// (a reset, a WebSocket pong that never came).
    fn from(e: ConnectionError) -> Self {
        Self::Lost(Chain(&e).to_string())
    }
}

impl Session {
    fn client(&self) -> ClientId {
        ClientId {
            device: self.settings.device.clone(),
            module: self.settings.module.clone(),
        }
    }

    fn client_id(&self) -> String {
        self.client().to_string()
    }

    /// Connects, serves, reconnects, until cancelled.
    pub async fn run(self) {
        let (responses_tx, mut responses_rx) = mpsc::channel(64);
        let s = &self.settings.options;
        let mut backoff = Backoff::new(s.min_backoff, s.max_backoff);
        loop {
            let result = tokio::select! {
                r = self.serve(&responses_tx, &mut responses_rx, &mut backoff) => r,
                () = self.cancel.cancelled() => Ok(()),
            };
            match result {
                Ok(()) => {
                    let _ = self.state.send(ConnectionState::Disconnected);
                    return;
                }
                Err(SessionError::Renew) => {
                    // A planned reconnect, not an outage: no backoff, no state change.
                    tracing::debug!(device = %self.client_id(), "renewing the SAS token");
                    continue;
                }
                Err(SessionError::Refused(code)) => {
                    tracing::warn!(device = %self.client_id(), ?code, hint = refusal_hint(code), "hub refused the connection; will retry");
                    let _ = self
                        .state
                        .send(ConnectionState::Refused(format!("{code:?}")));
                }
                Err(e @ SessionError::Certificate(_)) => {
                    tracing::warn!(device = %self.client_id(), error = %e, "cannot connect to the hub; will retry");
                    let _ = self.state.send(ConnectionState::Disconnected);
                }
                Err(e) => {
                    tracing::info!(device = %self.client_id(), error = %e, "disconnected from the hub; will reconnect");
                    let _ = self.state.send(ConnectionState::Disconnected);
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.cancel.cancelled() => return,
            }
        }
    }

    async fn open(&self) -> Result<Box<dyn Io>, SessionError> {
        let s = &self.settings;
        let (transport, mqtt_port) = (s.options.transport, s.options.mqtt_port);
        let host = s.endpoint.dial_host();
        let port = s.endpoint.port(transport, mqtt_port);
        let address = s.endpoint.address(transport, mqtt_port);
        let err = |e: &dyn std::fmt::Display| SessionError::Connect(format!("{address}: {e}"));
        // Through the proxy when one is configured for the host (it resolves the name).
        let tcp = adit_transport::proxy::connect(&s.options.proxy, host, port)
            .await
            .map_err(|e| err(&Chain(&e)))?;
        // A bare IPv6 (or IPv4) address becomes ServerName::IpAddress: no SNI, verified
        // against the certificate's IP SANs.
        let name = ServerName::try_from(host.to_string()).map_err(|e| err(&e))?;
        let tls = TlsConnector::from(s.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| match adit_transport::certificate_hint(&e) {
                Some(hint) => SessionError::Certificate(format!("{address}: {e}; {hint}")),
                None => err(&e),
            })?;
        match s.options.transport {
            Transport::Tls => Ok(Box::new(tls)),
            Transport::WebSocket => {
                let uri: http::Uri = s.endpoint.websocket_url().parse().map_err(|e| err(&e))?;
                let (ws, _) = tokio_websockets::ClientBuilder::from_uri(uri)
                    .add_header(
                        http::header::SEC_WEBSOCKET_PROTOCOL,
                        http::HeaderValue::from_static("mqtt"),
                    )
                    .map_err(|e| err(&e))?
                    .connect_on(tls)
                    .await
                    .map_err(|e| err(&e))?;
                let io = match s.options.ws_keepalive {
                    Some(k) => WsIo::with_keepalive(ws, k),
                    None => WsIo::new(ws),
                };
                Ok(Box::new(io))
            }
        }
    }

    /// CONNECT and SUBSCRIBE. Returns how long the signed token lasts from now.
    async fn handshake(
        &self,
        conn: &mut MqttConnection<Box<dyn Io>>,
    ) -> Result<Duration, SessionError> {
        let s = &self.settings;
        let client_id = self.client_id();
        let module = s.module.as_ref().map(|m| m.as_str());
        let ttl = s.options.token_ttl.max(Duration::from_secs(1));
        let (expiry, lifetime) = renewal::expiry(SystemTime::now(), ttl);
        // HostName, not the dialled GatewayHostName: the hub's identity.
        let host_name = s.endpoint.identity();
        let token = SasToken::sign(
            &identity_uri(&host_name, s.device.as_str(), module),
            &s.key,
            None,
            expiry,
        );
        let product = encode_component(concat!("adit-device/", env!("CARGO_PKG_VERSION")));
        let username = format_username(
            &host_name,
            &self.client(),
            &format!("api-version={API_VERSION}&DeviceClientType={product}"),
        );
        let mut connect = Connect::new(client_id);
        connect.keep_alive = u16::try_from(s.options.keep_alive.as_secs()).unwrap_or(u16::MAX);
        connect.clean_session = true;
        connect.login = Some(Login::new(username, token));
        conn.write_packet(&Packet::Connect(connect)).await?;
        match conn.read_packet().await? {
            Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => {}
            Some(Packet::ConnAck(ack)) => return Err(SessionError::Refused(ack.code)),
            other => {
                return Err(SessionError::Lost(format!(
                    "expected CONNACK, got {other:?}"
                )));
            }
        }
        let mut subscribe = Subscribe::new_many([
            SubscribeFilter::new(STREAMS_POST_FILTER.to_string(), QoS::AtMostOnce),
            SubscribeFilter::new(STREAMS_RES_FILTER.to_string(), QoS::AtMostOnce),
        ]);
        subscribe.pkid = 1;
        conn.write_packet(&Packet::Subscribe(subscribe)).await?;
        match conn.read_packet().await? {
            Some(Packet::SubAck(ack))
                if matches!(
                    ack.return_codes.first(),
                    Some(SubscribeReasonCode::Success(_))
                ) =>
            {
                Ok(lifetime)
            }
            Some(Packet::SubAck(_)) => Err(SessionError::SubscriptionRefused),
            other => Err(SessionError::Lost(format!(
                "expected SUBACK, got {other:?}"
            ))),
        }
    }

    async fn serve(
        &self,
        responses_tx: &mpsc::Sender<StreamResponse>,
        responses: &mut mpsc::Receiver<StreamResponse>,
        backoff: &mut Backoff,
    ) -> Result<(), SessionError> {
        let io = tokio::time::timeout(CONNECT_TIMEOUT, self.open())
            .await
            .map_err(|_| SessionError::Connect("timed out".into()))??;
        let mut conn = MqttConnection::new(io, MAX_PACKET);
        // The token's lifetime counts from signing, just before CONNECT.
        let signed = Instant::now();
        let lifetime = tokio::time::timeout(CONNECT_TIMEOUT, self.handshake(&mut conn))
            .await
            .map_err(|_| SessionError::Connect("CONNECT timed out".into()))??;
        let renew = renewal::renew_at(signed, lifetime);
        backoff.reset();
        let _ = self.state.send(ConnectionState::Connected);
        tracing::info!(device = %self.client_id(), "connected to the hub");

        let keep_alive = self.settings.options.keep_alive;
        let (mut last_sent, mut last_heard) = (Instant::now(), Instant::now());
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn.write_packet(&Packet::Disconnect)).await;
                    conn.shutdown().await;
                    return Ok(());
                }
                Some(response) = responses.recv() => {
                    let publish = Publish::new(response.to_topic(), QoS::AtMostOnce, Vec::new());
                    conn.write_packet(&Packet::Publish(publish)).await?;
                    last_sent = Instant::now();
                }
                () = tokio::time::sleep_until(last_sent + keep_alive) => {
                    conn.write_packet(&Packet::PingReq).await?;
                    last_sent = Instant::now();
                }
                () = tokio::time::sleep_until(last_heard + keep_alive + keep_alive / 2) => {
                    return Err(SessionError::KeepAlive);
                }
                () = tokio::time::sleep_until(renew) => {
                    // Leave cleanly before the hub would close the session at expiry.
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn.write_packet(&Packet::Disconnect)).await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn.shutdown()).await;
                    return Err(SessionError::Renew);
                }
                packet = conn.read_packet() => {
                    last_heard = Instant::now();
                    match packet? {
                        None => return Err(SessionError::Lost("hub closed the connection".into())),
                        Some(Packet::Publish(p)) => self.on_publish(&p.topic, responses_tx),
                        Some(_) => {}
                    }
                }
            }
        }
    }

    fn on_publish(&self, topic: &str, responses: &mpsc::Sender<StreamResponse>) {
        let mut request = match StreamRequest::parse(topic) {
            Ok(r) => r,
            Err(e) => {
                // A request topic carries the stream's bearer token ($auth): never printed.
                let topic = redact_auth(topic);
                tracing::debug!(topic = %remote_text(&topic), error = %e, "ignoring a PUBLISH that is not a stream request");
                return;
            }
        };
        if let Cow::Owned(url) = self.settings.endpoint.stream_url(&request.url) {
            tracing::debug!(offered = %request.url, dialled = %url, "stream URL names HostName: joining at GatewayHostName");
            request.url = url;
        }
        let rid = request.rid.clone();
        let incoming = IncomingStream::new(
            request,
            responses.clone(),
            self.settings.tls.clone(),
            self.settings.options.ws_keepalive,
            self.settings.options.proxy.clone(),
        );
        if let Err(
            mpsc::error::TrySendError::Full(incoming) | mpsc::error::TrySendError::Closed(incoming),
        ) = self.requests.try_send(incoming)
        {
            // Nobody is taking requests fast enough: say no now rather than let it time out.
            // try_send: this runs on the task that drains `responses`, so it must not wait.
            tracing::warn!(
                stream = %remote_text(incoming.name()),
                "stream request queue full or closed; rejecting"
            );
            let _ = responses.try_send(StreamResponse {
                accepted: false,
                rid,
                protocol: None,
            });
        }
    }
}

/// What the user can do about a CONNACK refusal.
fn refusal_hint(code: ConnectReturnCode) -> &'static str {
    match code {
        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => {
            "the hub does not accept this device's credentials: check that the device exists and \
             is enabled, and that the connection string is current (keys may have been renewed; \
             `adit device connection-string ID` prints the current one)"
        }
        ConnectReturnCode::ServiceUnavailable => "the hub is busy or throttling; retrying",
        ConnectReturnCode::BadClientId => "the hub refused the device or module id",
        _ => "the hub does not accept this client's MQTT settings",
    }
}

/// An error and its causes on one line (`a: b: c`): the session's errors are logged as text.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_logged_with_its_cause() {
        // What WsIo returns when the hub stops answering pings (a blackholed path).
        let io = std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no pong from the peer within 5 s of a ping: connection lost",
        );
        let e = SessionError::from(ConnectionError::from(io));
        assert_eq!(
            e.to_string(),
            "connection lost: I/O error: no pong from the peer within 5 s of a ping: connection lost"
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = SessionError::from(ConnectionError::from(reset));
        assert!(e.to_string().ends_with("connection reset"), "{e}");
    }
}
