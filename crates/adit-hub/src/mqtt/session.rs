//! One device connection, from CONNECT to close, over any byte stream.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use adit_proto::remote_text;
use adit_proto::topic::{STREAMS_POST_FILTER, STREAMS_RES_FILTER, StreamResponse};
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode, UnsubAck,
};
use rumqttc::mqttbytes::{Error as CodecError, QoS};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::MqttContext;
use super::{connect, expiry};
use crate::presence::{
    DeviceCommand, KickReason, OutgoingPublish, SessionCredential, SessionHandle,
};
use adit_transport::{ConnectionError, MqttConnection as Connection};

/// Why a session ended.
#[derive(Debug)]
enum End {
    ClientDisconnect,
    ClientClosed,
    KeepAliveExpired,
    TakenOver,
    Revoked,
    CredentialsChanged,
    TokenExpired,
    HubShutdown,
    Protocol(String),
    Io(String),
    WriteTimeout,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientDisconnect => f.write_str("client sent DISCONNECT"),
            Self::ClientClosed => f.write_str("client closed the connection"),
            Self::KeepAliveExpired => f.write_str("keep-alive expired"),
            Self::TakenOver => f.write_str("another connection with the same client id took over"),
            Self::Revoked => f.write_str("device disabled or deleted"),
            Self::CredentialsChanged => {
                f.write_str("the key that signed the session's SAS token was replaced")
            }
            Self::TokenExpired => f.write_str("the session's SAS token expired"),
            Self::HubShutdown => f.write_str("hub shutting down"),
            Self::Protocol(e) => write!(f, "protocol violation: {e}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::WriteTimeout => f.write_str("device stopped reading"),
        }
    }
}

impl From<ConnectionError> for End {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Protocol(p) => Self::Protocol(p.to_string()),
            ConnectionError::Truncated => Self::ClientClosed,
            ConnectionError::NotConnect => Self::Protocol("packet before CONNECT".into()),
            // rustls' "peer closed connection without sending TLS close_notify" (with a link to
            // its manual) means the device vanished without a DISCONNECT; say so plainly.
            ConnectionError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Self::Io("connection cut without a DISCONNECT (device or network gone)".to_string())
            }
            ConnectionError::Io(e) => Self::Io(e.to_string()),
        }
    }
}

/// Runs a session until the device leaves, misbehaves, is replaced, or the hub stops; the
/// CONNECT is due within the connect timeout from now.
/// `ctx` is shared rather than cloned: every idle connection would otherwise carry a copy.
pub async fn run<T>(io: T, peer: SocketAddr, transport: &'static str, ctx: Arc<MqttContext>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let connect_by = Instant::now() + ctx.config.connect_timeout;
    run_until(io, peer, transport, ctx, connect_by).await;
}

/// Like [`run`], with the CONNECT due by `connect_by` (for MQTT over TLS, the connect timeout
/// from TCP accept, so a slow TLS handshake does not buy a second timeout).
pub async fn run_until<T>(
    io: T,
    peer: SocketAddr,
    transport: &'static str,
    ctx: Arc<MqttContext>,
    connect_by: Instant,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut conn = Connection::new(io, ctx.config.max_packet_size);
    let first = tokio::select! {
        r = tokio::time::timeout_at(connect_by, conn.read_connect()) => r,
        () = ctx.shutdown.cancelled() => return,
    };
    let connect = match first {
        Ok(Ok(Some(Packet::Connect(c)))) => c,
        Err(_) => {
            tracing::info!(%peer, transport, "no CONNECT within the deadline; closing");
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Ok(Some(_))) => {
            tracing::info!(%peer, transport, "first packet is not CONNECT; closing");
            return;
        }
        Ok(Err(ConnectionError::Protocol(
            CodecError::InvalidProtocol | CodecError::InvalidProtocolLevel(_),
        ))) => {
            tracing::info!(%peer, transport, "unsupported MQTT protocol version; refusing");
            let _ = write_connack(&mut conn, &ctx, ConnectReturnCode::RefusedProtocolVersion).await;
            conn.shutdown().await;
            return;
        }
        Ok(Err(e)) => {
            tracing::info!(%peer, transport, error = %e, "bad CONNECT; closing");
            return;
        }
    };

    let changes = ctx.presence.credential_changes();
    let identity = match connect::authenticate(&ctx, &connect, peer.ip()).await {
        Ok(identity) => identity,
        Err(refusal) => {
            if refusal.report {
                tracing::warn!(%peer, transport, client_id = %remote_text(&connect.client_id), code = ?refusal.code, reason = %refusal.reason, "CONNECT refused");
            }
            let _ = write_connack(&mut conn, &ctx, refusal.code).await;
            conn.shutdown().await;
            return;
        }
    };
    let client_id = identity.client.to_string();
    let is_device = identity.client.module.is_none();
    let keep_alive = match connect.keep_alive {
        0 => ctx.config.max_keep_alive,
        s => Duration::from_secs(u64::from(s)).min(ctx.config.max_keep_alive),
    };

    let (tx, rx) = mpsc::channel(ctx.config.command_queue);
    // A child of the hub's token: hub shutdown, takeover and revocation all end up here.
    let kick = ctx.shutdown.child_token();
    // The token's lifetime is measured from here, on the monotonic clock.
    let expires = expiry::deadline(identity.expires_at, SystemTime::now(), Instant::now());
    let handle = SessionHandle::new(ctx.presence.next_session_id(), tx, kick.clone())
        .with_credential(SessionCredential {
            policy: identity.policy.clone(),
            key: identity.signed_with.clone(),
        });
    ctx.presence.register(&client_id, handle.clone());
    // A registry change (new keys, disable, delete) that landed while this CONNECT was being
    // authenticated may have looked for sessions to close before this one was registered:
    // then judge it again, by the state that change wrote.
    if ctx.presence.credential_changes() != changes
        && !connect::still_valid(&ctx, &connect, &identity).await
    {
        ctx.presence.unregister(&client_id, handle.session_id);
        tracing::warn!(%peer, transport, device = %client_id, "CONNECT refused: the credentials changed while it was being authenticated");
        let _ = write_connack(&mut conn, &ctx, ConnectReturnCode::NotAuthorized).await;
        conn.shutdown().await;
        return;
    }
    if is_device
        && let Err(e) = ctx
            .registry
            .record_connected(identity.client.device.as_str(), &ctx.node_id)
            .await
    {
        tracing::error!(device = %client_id, error = %crate::report::Report(&e), "cannot record connection state");
    }
    tracing::info!(%peer, transport, device = %client_id, policy = identity.policy.as_deref(), keep_alive_s = keep_alive.as_secs(), "device connected");
    ctx.metrics.device_connected(transport);
    let module = identity.client.module.as_ref().map(|m| m.as_str());
    let device = identity.client.device.as_str();
    ctx.diagnostics
        .connection(device, module, transport, peer.ip(), true, "connected");

    // Other nodes reach this session through NATS while it lasts, and a connection of the
    // same client id on another node closes it.
    let _cluster_guard = match &ctx.cluster {
        Some(cluster) => Some(
            cluster
                .hold_session(
                    &client_id,
                    handle.session_id,
                    ctx.streams.clone(),
                    ctx.presence.clone(),
                    &ctx.tracker,
                )
                .await,
        ),
        None => None,
    };
    let end = match write_connack(&mut conn, &ctx, ConnectReturnCode::Success).await {
        Ok(()) => {
            let limits = Limits {
                keep_alive,
                expires,
            };
            serve(&mut conn, &ctx, &handle, &client_id, rx, &kick, limits).await
        }
        Err(e) => e,
    };

    // Other nodes stop reaching this session before it stops being the current one.
    drop(_cluster_guard);
    if ctx.presence.unregister(&client_id, handle.session_id)
        && is_device
        && let Err(e) = ctx
            .registry
            .record_disconnected(identity.client.device.as_str(), &ctx.node_id)
            .await
    {
        tracing::error!(device = %client_id, error = %crate::report::Report(&e), "cannot record connection state");
    }
    tracing::info!(%peer, transport, device = %client_id, reason = %end, "device disconnected");
    ctx.diagnostics.connection(
        device,
        module,
        transport,
        peer.ip(),
        false,
        &end.to_string(),
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.shutdown()).await;
}

async fn write_connack<T: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<T>,
    ctx: &MqttContext,
    code: ConnectReturnCode,
) -> Result<(), End> {
    write(conn, ctx, &Packet::ConnAck(ConnAck::new(code, false))).await
}

async fn write<T: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<T>,
    ctx: &MqttContext,
    packet: &Packet,
) -> Result<(), End> {
    match tokio::time::timeout(ctx.config.write_timeout, conn.write_packet(packet)).await {
        Ok(r) => r.map_err(End::from),
        Err(_) => Err(End::WriteTimeout),
    }
}

async fn serve<T: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<T>,
    ctx: &MqttContext,
    handle: &SessionHandle,
    client_id: &str,
    mut commands: mpsc::Receiver<DeviceCommand>,
    kick: &CancellationToken,
    limits: Limits,
) -> End {
    // MQTT 3.1.1: the server may close after one and a half keep-alive periods of silence.
    let grace = limits.keep_alive + limits.keep_alive / 2;
    let mut last_heard = Instant::now();
    loop {
        let step = tokio::select! {
            () = kick.cancelled() => {
                return match handle.kick_reason() {
                    Some(KickReason::TakenOver) => End::TakenOver,
                    Some(KickReason::Revoked) => End::Revoked,
                    Some(KickReason::CredentialsChanged) => End::CredentialsChanged,
                    None => End::HubShutdown,
                };
            }
            () = tokio::time::sleep_until(last_heard + grace) => return End::KeepAliveExpired,
            () = tokio::time::sleep_until(limits.expires) => return End::TokenExpired,
            // Never None: the presence entry holds a sender while the session is current,
            // and a replaced session is kicked before its entry goes.
            Some(command) = commands.recv() => Step::Command(command),
            packet = conn.read_packet() => Step::Packet(packet),
        };
        let result = match step {
            Step::Command(DeviceCommand::Publish(publish)) => {
                let OutgoingPublish { topic, payload } = *publish;
                write(
                    conn,
                    ctx,
                    &Packet::Publish(Publish::from_bytes(topic, QoS::AtMostOnce, payload)),
                )
                .await
            }
            Step::Packet(Ok(None)) => return End::ClientClosed,
            Step::Packet(Err(e)) => return e.into(),
            Step::Packet(Ok(Some(packet))) => {
                last_heard = Instant::now();
                handle_packet(conn, ctx, handle, client_id, packet).await
            }
        };
        if let Err(end) = result {
            return end;
        }
    }
}

/// The timers that bound a session.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Negotiated keep-alive; silence for 1.5 times this ends the session.
    keep_alive: Duration,
    /// When the SAS token expires.
    expires: Instant,
}

enum Step {
    Command(DeviceCommand),
    Packet(Result<Option<Packet>, ConnectionError>),
}

async fn handle_packet<T: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<T>,
    ctx: &MqttContext,
    handle: &SessionHandle,
    client_id: &str,
    packet: Packet,
) -> Result<(), End> {
    match packet {
        Packet::PingReq => write(conn, ctx, &Packet::PingResp).await,
        Packet::Disconnect => Err(End::ClientDisconnect),
        Packet::Subscribe(sub) => {
            let codes = sub
                .filters
                .iter()
                .map(|f| {
                    let path = f.path.as_str();
                    if path.eq_ignore_ascii_case(STREAMS_POST_FILTER) {
                        handle
                            .streams_subscribed
                            .store(true, std::sync::atomic::Ordering::Release);
                        ctx.presence.notify(client_id);
                        SubscribeReasonCode::Success(QoS::AtMostOnce)
                    } else if path.eq_ignore_ascii_case(STREAMS_RES_FILTER) {
                        SubscribeReasonCode::Success(QoS::AtMostOnce)
                    } else {
                        tracing::info!(device = %client_id, filter = %remote_text(path), "subscription refused");
                        SubscribeReasonCode::Failure
                    }
                })
                .collect();
            write(conn, ctx, &Packet::SubAck(SubAck::new(sub.pkid, codes))).await
        }
        Packet::Unsubscribe(unsub) => {
            if unsub
                .topics
                .iter()
                .any(|t| t.eq_ignore_ascii_case(STREAMS_POST_FILTER))
            {
                handle
                    .streams_subscribed
                    .store(false, std::sync::atomic::Ordering::Release);
            }
            write(conn, ctx, &Packet::UnsubAck(UnsubAck::new(unsub.pkid))).await
        }
        Packet::Publish(publish) => {
            match publish.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => {
                    write(conn, ctx, &Packet::PubAck(PubAck::new(publish.pkid))).await?
                }
                // Azure IoT Hub does not support QoS 2 and closes the connection.
                QoS::ExactlyOnce => return Err(End::Protocol("QoS 2 is not supported".into())),
            }
            on_publish(ctx, client_id, &publish.topic);
            Ok(())
        }
        Packet::PubAck(_) => Ok(()),
        Packet::Connect(_) => Err(End::Protocol("second CONNECT".into())),
        other => Err(End::Protocol(format!("unexpected {other:?}"))),
    }
}

fn on_publish(ctx: &MqttContext, client_id: &str, topic: &str) {
    if !StreamResponse::is_response_topic(topic) {
        tracing::debug!(device = %client_id, topic = %remote_text(topic), "ignoring PUBLISH on a topic Adit does not serve");
        return;
    }
    match StreamResponse::parse(topic) {
        Ok(response) => {
            if ctx.streams.answer(client_id, &response) {
                tracing::debug!(device = %client_id, rid = %remote_text(&response.rid), accepted = response.accepted, "stream response");
            } else {
                tracing::info!(device = %client_id, rid = %remote_text(&response.rid), accepted = response.accepted, "stream response for no pending request");
            }
        }
        Err(e) => {
            tracing::info!(device = %client_id, topic = %remote_text(topic), error = %e, "malformed stream response")
        }
    }
}
