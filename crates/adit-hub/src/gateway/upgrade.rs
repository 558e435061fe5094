//! `GET /bridges/{streamId}/{role}`: authenticate a half and upgrade it to a WebSocket.
//!
//! Any subprotocol or none is accepted (C sends `MQTT`/`AMQP`, C# and Node none); the first
//! one offered is echoed, never one that was not offered, which .NET would reject. The one
//! exception is Adit's own `adit.stream.v1`: it is chosen only for a stream whose service
//! asked for it, and then the response also carries the half's resume token and the grace
//! ([`super::resume`]). A half that comes back with its resume token rejoins its relay.

use std::net::SocketAddr;

use adit_proto::{ErrorCode, remote_text};
use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use tokio_websockets::Limits;

use adit_stream_protocol::SUBPROTOCOL;
use axum::http::HeaderValue;

use super::resume::{RESUME_GRACE, RESUME_TOKEN, Reattached};
use super::{Gateway, Role, relay};
use crate::api::ApiError;
use crate::server::ConnectionSlot;
use crate::ws_upgrade;

/// The gateway's route, for merging into the HTTPS router.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/bridges/{stream}/{role}", get(upgrade))
        .with_state(gateway)
}

fn unauthorized(message: String) -> Response {
    ApiError::new(ErrorCode::IotHubUnauthorizedAccess, message).into_response()
}

async fn upgrade(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((stream_id, role)): Path<(String, String)>,
    request: Request,
) -> Response {
    let Some(role) = Role::parse(&role) else {
        return ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response();
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        tracing::info!(%peer, stream = %remote_text(&stream_id), %role, "gateway: no bearer token");
        gateway.metrics.gateway_refused("no_token");
        return unauthorized("Authorization: Bearer {token} is required".into());
    };
    let offered = ws_upgrade::offered_protocols(&request);
    let offers_adit = offered.iter().any(|p| p == SUBPROTOCOL);
    let admitted = match gateway.admit(&stream_id, role, token, offers_adit) {
        Ok(admitted) => admitted,
        Err(refused) => {
            gateway.metrics.gateway_refused(refused.label());
            tracing::info!(%peer, stream = %remote_text(&stream_id), %role, reason = %refused, "gateway: half refused");
            return unauthorized(format!("Unauthorized: {refused}"));
        }
    };
    // The connection's place under --max-connections goes with the WebSocket.
    let slot = request.extensions().get::<ConnectionSlot>().cloned();
    let protocol = if admitted.adit {
        Some(SUBPROTOCOL.to_string())
    } else {
        offered.into_iter().find(|p| p != SUBPROTOCOL)
    };
    let (mut response, on_upgrade) = match ws_upgrade::accept(request, protocol.as_deref()) {
        Ok(accepted) => accepted,
        Err(e) => {
            // The token was spent on a request that was not an upgrade; the stream can still
            // fail cleanly at its deadline.
            return e.into_response();
        }
    };
    if let Some(token) = admitted
        .resume_token
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        let grace = gateway.config.resume_grace.as_secs();
        let headers = response.headers_mut();
        headers.insert(RESUME_TOKEN, token);
        headers.insert(RESUME_GRACE, HeaderValue::from(grace));
    }
    tracing::debug!(%peer, stream = %stream_id, %role, resuming = admitted.returning.is_some(), "gateway: half admitted");
    gateway.metrics.gateway_admitted(role.as_str());
    let tracker = gateway.tracker.clone();
    tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "gateway upgrade failed");
                return;
            }
        };
        let limits = Limits::default().max_payload_len(Some(gateway.config.max_frame));
        let ws = tokio_websockets::ServerBuilder::new()
            .limits(limits)
            .serve(TokioIo::new(upgraded));
        match admitted.returning {
            Some(relay) => {
                if let Err(back) = relay.send(Reattached { role, ws, slot }).await {
                    relay::refuse(back.0.ws, "the stream has ended").await;
                }
            }
            None => gateway.join(stream_id, role, ws, slot).await,
        }
    });
    response
}
