//! `adit device-proxy`: serve stream requests by connecting each to a configured local target.
//! It never connects anywhere that was not configured: with `--map`, unknown stream names are
//! rejected. The map is read again from the config file on SIGHUP (`routes`).

use std::time::Duration;

use adit_device::{ConnectionState, DeviceClient, DeviceOptions, IncomingStream, Transport};
use adit_stream_protocol::ResetCode;
use anyhow::Context as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod routes;

use super::pipe::{Until, pipe};
use crate::cli::DeviceProxyArgs;
use crate::hub_access::tls_options;
use routes::{Routes, StreamMap};

pub async fn run(args: DeviceProxyArgs) -> anyhow::Result<()> {
    let routes = StreamMap::new(Routes::from_args(&args)?);
    let mut options = DeviceOptions::default();
    options.tls = tls_options(args.ca_file.as_deref());
    options.transport = if args.transport == "mqtt" {
        Transport::Tls
    } else {
        Transport::WebSocket
    };
    options.mqtt_port = args.mqtt_port;
    options.ws_keepalive = args.keepalive.keepalive()?;
    options.token_ttl = Duration::from_secs(args.token_ttl);
    options.proxy = args.proxy.config()?;
    let mut client = DeviceClient::new(&args.connection_string, options)
        .context("cannot start the device client")?;
    let shutdown = crate::signal::shutdown_token();
    let tracker = TaskTracker::new();
    tracker.spawn(report_connection(client.watch_state(), shutdown.clone()));
    tracker.spawn(routes.clone().reload_on_sighup(shutdown.clone()));
    loop {
        let request = tokio::select! {
            r = client.next_request() => match r {
                Some(r) => r,
                None => break,
            },
            () = shutdown.cancelled() => break,
        };
        let Some(target) = routes.target(request.name()) else {
            tracing::warn!(
                stream = %adit_proto::remote_text(request.name()),
                "no target for this stream name; rejecting"
            );
            let _ = request.reject().await;
            continue;
        };
        let shutdown = shutdown.clone();
        if request.asks_stream_protocol() {
            let routes = routes.clone();
            tracker.spawn(async move { serve_session(request, routes, shutdown).await });
        } else {
            tracker.spawn(async move { serve(request, target, shutdown).await });
        }
    }
    tracker.close();
    tracker.wait().await;
    client.shutdown().await;
    Ok(())
}

/// Tells the user once the device is connected, so "waiting for stream requests" is never
/// printed by a proxy that cannot reach its hub (the SDK logs each failed attempt and why).
async fn report_connection(
    mut state: watch::Receiver<ConnectionState>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        connected = state.wait_for(|s| *s == ConnectionState::Connected) => {
            if connected.is_ok() {
                println!("Device proxy connected to the hub; waiting for stream requests");
            }
        }
        () = shutdown.cancelled() => {}
    }
}

/// Serves a multiplexed session (adit.stream.v1): each connection the service opens is
/// connected to the stream's target, or to the target its OPEN names when `--map` has that
/// name; any other name is refused.
async fn serve_session(request: IncomingStream, routes: StreamMap, shutdown: CancellationToken) {
    let name = adit_proto::remote_text(request.name()).to_string();
    let stream_name = request.name().to_string();
    let caller = adit_proto::remote_text(request.caller().unwrap_or("?")).to_string();
    let mut session = match request.accept_session().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(stream = %name, error = %adit_proto::report::Report(&e), "cannot join the stream");
            return;
        }
    };
    tracing::info!(stream = %name, %caller, "session opened (adit.stream.v1: connections multiplexed, resumable)");
    let connections = TaskTracker::new();
    loop {
        let (mut conn, wanted) = tokio::select! {
            accepted = session.accept() => match accepted {
                Some(a) => a,
                None => break,
            },
            () = shutdown.cancelled() => {
                session.close();
                break;
            }
        };
        let wanted = String::from_utf8_lossy(&wanted).into_owned();
        let route = if wanted.is_empty() {
            stream_name.as_str()
        } else {
            wanted.as_str()
        };
        let Some(target) = routes.target(route) else {
            tracing::warn!(stream = %name, target = %adit_proto::remote_text(route), "no target for this name; refusing the connection");
            conn.reset(ResetCode::Refused, "no target for this name on the device");
            continue;
        };
        let (name, shutdown) = (name.clone(), shutdown.clone());
        connections.spawn(async move {
            let id = conn.id();
            let connecting = adit_transport::tcp::connect(target.as_str());
            let mut tcp = match tokio::time::timeout(Duration::from_secs(10), connecting).await {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(e)) => {
                    tracing::warn!(stream = %name, conn = id, %target, error = %e, "cannot reach the local target; resetting the connection");
                    conn.reset(ResetCode::Failed, &format!("the device cannot reach {target}: {e}"));
                    return;
                }
                Err(_) => {
                    tracing::warn!(stream = %name, conn = id, %target, "local target did not answer; resetting the connection");
                    conn.reset(ResetCode::Failed, &format!("{target} did not answer the device within 10 s"));
                    return;
                }
            };
            tracing::info!(stream = %name, conn = id, %target, "connection opened");
            tokio::select! {
                copied = tokio::io::copy_bidirectional(&mut tcp, &mut conn) => match copied {
                    Ok((to_service, from_service)) => tracing::info!(stream = %name, conn = id, to_service, from_service, "connection closed"),
                    Err(e) => tracing::warn!(stream = %name, conn = id, error = %e, "connection ended with an error"),
                },
                () = shutdown.cancelled() => {}
            }
        });
    }
    match session.ended().await {
        Ok(()) => tracing::info!(stream = %name, "session closed"),
        Err(e) => tracing::warn!(stream = %name, error = %e, "session ended with an error"),
    }
    connections.close();
    connections.wait().await;
}

async fn serve(request: IncomingStream, target: String, shutdown: CancellationToken) {
    // Both come from the hub's stream request: remote text.
    let name = adit_proto::remote_text(request.name()).to_string();
    let caller = adit_proto::remote_text(request.caller().unwrap_or("?")).to_string();
    // Connect locally first: if the target is down, the service hears "rejected" at once.
    let connecting = adit_transport::tcp::connect(target.as_str());
    let mut tcp = match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            tracing::warn!(stream = %name, %target, error = %e, "cannot reach the local target; rejecting");
            let _ = request.reject().await;
            return;
        }
        Err(_) => {
            tracing::warn!(stream = %name, %target, "local target did not answer; rejecting");
            let _ = request.reject().await;
            return;
        }
    };
    let mut stream = match request.accept().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(stream = %name, error = %adit_proto::report::Report(&e), "cannot join the stream");
            return;
        }
    };
    tracing::info!(stream = %name, %target, %caller, "stream opened");
    let (mut tcp_read, mut tcp_write) = tcp.split();
    tokio::select! {
        piped = pipe(&mut tcp_read, &mut tcp_write, &mut stream, Until::BothEnd) => match piped.error {
            None => tracing::info!(stream = %name, %target, to_service = piped.sent, from_service = piped.received, seconds = piped.seconds, "stream closed"),
            Some(e) => tracing::warn!(stream = %name, %target, to_service = piped.sent, from_service = piped.received, seconds = piped.seconds, error = %e, "stream ended with an error"),
        },
        () = shutdown.cancelled() => {}
    }
}
