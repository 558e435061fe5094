//! MQTT over WebSocket at `/$iothub/websocket` on the HTTPS port (Azure's port 443), with the
//! `mqtt` subprotocol matched case-insensitively and echoed as the client spelled it.

use std::net::SocketAddr;
use std::sync::Arc;

use adit_proto::{ErrorCode, remote_text};
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use tokio_websockets::Limits;

use super::{MqttContext, session};
use crate::api::ApiError;
use crate::ws_upgrade;

/// The route, for merging into the HTTPS router.
pub fn router(ctx: Arc<MqttContext>) -> Router {
    Router::new()
        .route("/$iothub/websocket", get(upgrade))
        .with_state(ctx)
}

async fn upgrade(
    State(ctx): State<Arc<MqttContext>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let offered = ws_upgrade::offered_protocols(&request);
    let Some(protocol) = offered
        .iter()
        .find(|p| p.eq_ignore_ascii_case("mqtt"))
        .cloned()
    else {
        let offered: Vec<_> = offered.iter().map(|p| remote_text(p)).collect();
        tracing::info!(%peer, ?offered, "MQTT WebSocket without the mqtt subprotocol; refused");
        return ApiError::invalid("MQTT over WebSocket needs the mqtt subprotocol").into_response();
    };
    let Ok(permit) = ctx.slots.clone().try_acquire_owned() else {
        tracing::warn!(%peer, "device connection limit reached; refusing MQTT WebSocket");
        return ApiError::new(ErrorCode::ServiceUnavailable, "too many device connections")
            .into_response();
    };
    // The device holds a place under --max-devices from here on, as over MQTT/TLS; its
    // place under --max-connections is given back once the upgrade is done (hyper drops
    // the connection's own clone), so a WebSocket fleet as large as that limit cannot lock
    // the service API and the streams' gateway legs out.
    let (response, on_upgrade) = match ws_upgrade::accept(request, Some(&protocol)) {
        Ok(accepted) => accepted,
        Err(e) => return e.into_response(),
    };
    let tracker = ctx.tracker.clone();
    tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        // A WebSocket message carries at most one MQTT packet's worth of bytes plus slack.
        let limits = Limits::default().max_payload_len(Some(ctx.config.max_packet_size + 1024));
        let ws = tokio_websockets::ServerBuilder::new()
            .limits(limits)
            .serve(TokioIo::new(upgraded));
        // Boxed for the same reason as the TLS stream (see `server::accept_tls`): an idle
        // session's task is sized by what it holds inline.
        // Pinged like the stream legs: keeps the device's connection open through idle
        // timeouts, and finds one that went silent before MQTT's keep-alive (1.5x) would.
        let mut io = Box::new(adit_transport::WsIo::with_keepalive(
            ws,
            ctx.config.ws_keepalive,
        ));
        session::run(&mut io, peer, "mqtt-ws", ctx).await;
        // A device refused with 1009 mid-message is still sending: let the Close reach it.
        io.linger_if_refused().await;
        drop(permit);
    });
    response
}
