//! `GET /console/api/devices/{id}/terminal`: the WebSocket of a terminal (`docs/console.md`).
//! Checks the session and ServiceConnect before the upgrade, reads the page's credentials,
//! opens a stream to the device's `ssh` name and hands both to [`super::terminal::run`].
//!
//! The hub opens the stream as any service does: through its own REST API and gateway, with
//! a token signed by the key the browser signed in with, so the stream is admitted, logged,
//! limited and revoked exactly like one from `adit service-proxy`.

use std::time::Duration;

use adit_proto::{ConnectionString, DeviceId, Permissions};
use adit_service::{ServiceClient, ServiceCredentials, StreamOptions};
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_websockets::{CloseCode, Limits, Message, WebSocketStream};

use super::ConsoleState;
use super::signed_in::SignedIn;
use super::terminal::{self, Credentials, HostKeyPolicy, MAX_MESSAGE};
use crate::registry::{HostKeyCheck, Registry};

/// The stream name a terminal asks the device for.
pub const SSH_STREAM: &str = "ssh";
/// How long the page has to send its credentials.
const CREDENTIALS_WAIT: Duration = Duration::from_secs(30);

/// The route.
pub async fn open(
    State(state): State<ConsoleState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    user: SignedIn,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    if let Err(e) = user.require(Permissions::SERVICE_CONNECT) {
        return e.into_response();
    }
    let device = match DeviceId::new(&id) {
        Ok(d) => d,
        Err(e) => {
            return super::json_error::ConsoleError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("invalid device id: {e}"),
            )
            .into_response();
        }
    };
    let (response, on_upgrade) = match crate::ws_upgrade::accept(request, None) {
        Ok(accepted) => accepted,
        Err(e) => return super::json_error::ConsoleError::from(e).into_response(),
    };
    let tracker = state.tracker.clone();
    tracker.spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let limits = Limits::default().max_payload_len(Some(terminal::HARD_LIMIT));
        let mut ws = tokio_websockets::ServerBuilder::new()
            .limits(limits)
            .serve(TokioIo::new(upgraded));
        let shutdown = state.shutdown.clone();
        let why = tokio::select! {
            () = serve(&state, &user, &device, peer.ip(), &mut ws) => return,
            () = shutdown.cancelled() => "hub stopping",
            // Signed out, expired, or the policy lost the key or ServiceConnect.
            () = user.ended(&state, Permissions::SERVICE_CONNECT) => "console session ended",
        };
        tracing::info!(device = %device, policy = %user.policy, why, "console terminal ended");
        let close = Message::close(Some(CloseCode::GOING_AWAY), why);
        let _ = tokio::time::timeout(Duration::from_secs(5), ws.send(close)).await;
    });
    response
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    state: &ConsoleState,
    user: &SignedIn,
    device: &DeviceId,
    browser: std::net::IpAddr,
    ws: &mut WebSocketStream<S>,
) {
    let creds = match credentials(ws).await {
        Ok(c) => c,
        Err(why) => return refuse(ws, &why).await,
    };
    let stream = match open_stream(state, user, device).await {
        Ok(s) => s,
        Err(why) => return refuse(ws, &why).await,
    };
    // The stream's own record names the hub as its caller: this line says who it was for.
    tracing::info!(device = %device, policy = %user.policy, %browser, "console terminal opened");
    let keys = HostKeys {
        registry: state.app.registry.clone(),
        device: device.to_string(),
    };
    let outcome = terminal::run(stream, ws, creds, keys).await;
    tracing::info!(device = %device, policy = %user.policy, outcome = %outcome, "console terminal ended");
}

/// The page's first message: its credentials (never logged).
async fn credentials<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> Result<Credentials, String> {
    let first = tokio::time::timeout(CREDENTIALS_WAIT, ws.next())
        .await
        .map_err(|_| "no credentials within 30 s".to_string())?;
    match first {
        Some(Ok(m)) if m.is_text() && m.as_payload().len() <= MAX_MESSAGE => {
            serde_json::from_slice(m.as_payload())
                .map_err(|_| "the first message must be the credentials (docs/console.md)".into())
        }
        _ => Err("the first message must be the credentials (docs/console.md)".into()),
    }
}

/// A stream to the device's sshd, opened as the signed-in policy.
async fn open_stream(
    state: &ConsoleState,
    user: &SignedIn,
    device: &DeviceId,
) -> Result<adit_service::ServiceStream, String> {
    let endpoint = state.app.streaming_endpoint.trim_start_matches("https://");
    let hub = adit_proto::host::HostPort::parse(endpoint)
        .map_err(|_| format!("the hub's own address {endpoint:?} is not usable"))?;
    let cs = ConnectionString::for_policy(hub.host(), hub.port(), &user.policy, user.key.clone());
    let client = ServiceCredentials::from_connection_string(&cs.to_string())
        .map_err(|e| e.to_string())
        .and_then(|c| ServiceClient::new(c, &state.tls).map_err(|e| e.to_string()))?;
    client
        .open_stream(device.as_str(), SSH_STREAM, &StreamOptions::default())
        .await
        .map_err(|e| format!("cannot open a stream to {device}'s ssh: {e}"))
}

async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, why: &str) {
    let message = serde_json::json!({ "type": "error", "message": why }).to_string();
    let _ = ws.send(Message::text(message)).await;
    let _ = ws
        .send(Message::close(
            Some(CloseCode::POLICY_VIOLATION),
            "terminal refused",
        ))
        .await;
}

/// Trust on first use, kept in the registry: a device's first key is kept once the user
/// trusts it, and a different one later is refused.
struct HostKeys {
    registry: Registry,
    device: String,
}

impl HostKeys {
    fn changed(kept: &str, fingerprint: &str) -> String {
        format!(
            "the device's SSH host key changed: it was {kept}, now {fingerprint}; refused \
             (delete and recreate the device if it was reinstalled)"
        )
    }
}

impl HostKeyPolicy for HostKeys {
    async fn check(&mut self, fingerprint: &str) -> Result<bool, String> {
        match self
            .registry
            .check_host_key(&self.device, fingerprint)
            .await
        {
            Ok(HostKeyCheck::Known) => Ok(true),
            Ok(HostKeyCheck::Unknown) => Ok(false),
            Ok(HostKeyCheck::Changed(kept)) => Err(Self::changed(&kept, fingerprint)),
            Err(e) => {
                tracing::warn!(device = %self.device, error = %crate::report::Report(&e), "cannot check a device's host key");
                Err("cannot check the host key: the registry is unavailable".to_string())
            }
        }
    }

    async fn trust(&mut self, fingerprint: &str) -> Result<(), String> {
        match self
            .registry
            .trust_host_key(&self.device, fingerprint)
            .await
        {
            Ok(HostKeyCheck::Known) => Ok(()),
            Ok(HostKeyCheck::Changed(kept)) => Err(Self::changed(&kept, fingerprint)),
            Ok(HostKeyCheck::Unknown) => Err("the host key could not be kept".to_string()),
            Err(e) => {
                tracing::warn!(device = %self.device, error = %crate::report::Report(&e), "cannot keep a device's host key");
                Err(
                    "cannot keep the host key: the device was deleted meanwhile, or the registry \
                     is unavailable"
                        .to_string(),
                )
            }
        }
    }
}
