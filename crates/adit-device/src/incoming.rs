//! One stream request, and the stream it becomes.

use std::sync::Arc;

use adit_proto::topic::{StreamRequest, StreamResponse};
use adit_stream_protocol::{Role, SUBPROTOCOL};
use adit_transport::gateway_client::join_resumable;
use adit_transport::mux_session::MuxSession;
use adit_transport::{GatewayStream, Keepalive, ProxyConfig, connect_gateway};
use rustls::ClientConfig;
use tokio::sync::mpsc;

use crate::Error;

/// An accepted stream: bytes to and from the service, as `AsyncRead + AsyncWrite`.
/// `shutdown()` ends this direction only (the other keeps flowing); `close()` ends both.
pub type DeviceStream = GatewayStream;

/// A service asking for a stream. Accept it or reject it; dropping it leaves the hub to time
/// the request out.
#[derive(Debug)]
pub struct IncomingStream {
    request: StreamRequest,
    responses: mpsc::Sender<StreamResponse>,
    tls: Arc<ClientConfig>,
    keepalive: Option<Keepalive>,
    proxy: ProxyConfig,
}

impl IncomingStream {
    pub(crate) fn new(
        request: StreamRequest,
        responses: mpsc::Sender<StreamResponse>,
        tls: Arc<ClientConfig>,
        keepalive: Option<Keepalive>,
        proxy: ProxyConfig,
    ) -> Self {
        Self {
            request,
            responses,
            tls,
            keepalive,
            proxy,
        }
    }

    /// The stream name the service chose.
    pub fn name(&self) -> &str {
        &self.request.name
    }

    /// The hub's request id.
    pub fn request_id(&self) -> &str {
        &self.request.rid
    }

    /// The gateway URL this device half joins.
    pub fn url(&self) -> &str {
        &self.request.url
    }

    /// The service caller's address, as the hub reported it.
    pub fn caller(&self) -> Option<&str> {
        self.request.ip.as_deref()
    }

    /// The protocol the service asked the stream to carry, if any (`adit.stream.v1`: see
    /// [`IncomingStream::accept_session`]).
    pub fn protocol(&self) -> Option<&str> {
        self.request.protocol.as_deref()
    }

    /// Whether the service asked for the Adit stream protocol, so
    /// [`IncomingStream::accept_session`] may be used.
    pub fn asks_stream_protocol(&self) -> bool {
        self.protocol() == Some(SUBPROTOCOL)
    }

    async fn answer(&self, accepted: bool, protocol: Option<&str>) -> Result<(), Error> {
        let response = StreamResponse {
            accepted,
            rid: self.request.rid.clone(),
            protocol: protocol.map(str::to_string),
        };
        self.responses
            .send(response)
            .await
            .map_err(|_| Error::Closed)
    }

    /// Joins the gateway, then tells the hub the stream is accepted (the order of Azure's C
    /// sample). If joining fails, the request is rejected and the error returned. The stream
    /// pings as [`crate::DeviceOptions::ws_keepalive`] says, and goes through
    /// [`crate::DeviceOptions::proxy`].
    pub async fn accept(self) -> Result<DeviceStream, Error> {
        let joined = connect_gateway(
            &self.request.url,
            &self.request.auth,
            self.tls.clone(),
            self.keepalive,
            &self.proxy,
        )
        .await;
        self.answer_joined(joined, None).await
    }

    /// Accepts (naming `protocol`) once the gateway was joined, or rejects and returns why
    /// it could not be.
    async fn answer_joined<T>(
        &self,
        joined: Result<T, adit_transport::GatewayError>,
        protocol: Option<&str>,
    ) -> Result<T, Error> {
        match joined {
            Ok(joined) => {
                self.answer(true, protocol).await?;
                Ok(joined)
            }
            Err(e) => {
                let _ = self.answer(false, None).await;
                Err(e.into())
            }
        }
    }

    /// Accepts a stream the service asked to carry the Adit stream protocol
    /// ([`IncomingStream::asks_stream_protocol`]): a session of many connections, each with
    /// its own flow control, that survives a dropped network on either side for the hub's
    /// resume grace (`docs/stream-protocol.md`). Take the service's connections with
    /// [`MuxSession::accept`]. Joins the gateway first, as [`IncomingStream::accept`] does.
    ///
    /// # Errors
    /// [`Error::Config`] when the service did not ask for the protocol (use
    /// [`IncomingStream::accept`]); joining errors as for `accept` (the request is then
    /// rejected).
    pub async fn accept_session(self) -> Result<MuxSession, Error> {
        if !self.asks_stream_protocol() {
            return Err(Error::Config(
                "the service did not ask for adit.stream.v1; accept a raw stream instead".into(),
            ));
        }
        let joined = join_resumable(
            &self.request.url,
            &self.request.auth,
            self.tls.clone(),
            self.keepalive,
            &self.proxy,
        )
        .await;
        let joined = self.answer_joined(joined, Some(SUBPROTOCOL)).await?;
        Ok(joined.start(Role::Device))
    }

    /// Tells the hub the stream is rejected.
    pub async fn reject(self) -> Result<(), Error> {
        self.answer(false, None).await
    }
}
