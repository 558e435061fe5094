//! `adit service-proxy --device ID --listen ADDR`: every accepted TCP connection reaches the
//! device. With a device that speaks the Adit stream protocol (`adit device-proxy`), all of
//! them travel in one multiplexed, resumable session ([`session_pool`]); with any other
//! device (Azure's SDKs), or with `--raw`, each becomes a stream of its own.

mod session_pool;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::offline_hint::offline_hint;
use super::pipe::{Until, pipe};
use crate::cli::ServiceProxyArgs;
use session_pool::{Connection, SessionPool};

pub async fn run(args: ServiceProxyArgs) -> anyhow::Result<()> {
    let service = args.stream.access.service()?;
    // Only for explaining DeviceNotOnline; a policy without registry rights still proxies.
    let registry = args.stream.access.registry().ok();
    let options = super::pipe::stream_options(&args.stream)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    println!(
        "Forwarding {local} to device {} (stream {})",
        args.device, args.stream.stream_name
    );
    let shutdown = crate::signal::shutdown_token();
    let pool = (!args.raw).then(|| {
        SessionPool::new(
            service.clone(),
            args.device.clone(),
            args.stream.stream_name.clone(),
            options.clone(),
            shutdown.clone(),
        )
    });
    let tracker = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        // The local client may vanish without a FIN too (a laptop suspended mid-session).
        let _ = adit_transport::tcp::set_keepalive(&tcp);
        let (service, registry, device, name, shutdown, options, pool) = (
            service.clone(),
            registry.clone(),
            args.device.clone(),
            args.stream.stream_name.clone(),
            shutdown.clone(),
            options.clone(),
            pool.clone(),
        );
        tracker.spawn(async move {
            let opened = match &pool {
                Some(pool) => pool.connect().await,
                None => service
                    .open_stream(&device, &name, &options)
                    .await
                    .map(|s| Connection::Raw(Box::new(s))),
            };
            let connection = match opened {
                Ok(c) => c,
                Err(e) => {
                    let hint = offline_hint(&e, registry.as_ref(), &device).await;
                    match hint {
                        Some(hint) => tracing::warn!(%peer, "cannot open a stream ({hint}); closing the connection"),
                        None => tracing::warn!(%peer, error = %adit_hub::report::Report(&e), "cannot open a stream; closing the connection"),
                    }
                    return;
                }
            };
            serve(tcp, peer, connection, &shutdown).await;
        });
    }
    tracker.close();
    tracker.wait().await;
    if let Some(pool) = &pool {
        pool.close().await;
    }
    Ok(())
}

async fn serve(
    mut tcp: TcpStream,
    peer: std::net::SocketAddr,
    connection: Connection,
    shutdown: &CancellationToken,
) {
    match connection {
        Connection::Multiplexed(mut stream, _open) => {
            let conn = stream.id();
            tracing::info!(%peer, conn, "connection opened in the session");
            tokio::select! {
                copied = tokio::io::copy_bidirectional(&mut tcp, &mut stream) => match copied {
                    Ok((to_device, from_device)) => tracing::info!(%peer, conn, to_device, from_device, "connection closed"),
                    Err(e) => tracing::warn!(%peer, conn, error = %e, "connection ended with an error"),
                },
                () = shutdown.cancelled() => {}
            }
        }
        Connection::Raw(mut stream) => {
            tracing::info!(%peer, "stream opened");
            let (mut tcp_read, mut tcp_write) = tcp.split();
            tokio::select! {
                piped = pipe(&mut tcp_read, &mut tcp_write, &mut stream, Until::BothEnd) => match piped.error {
                    None => tracing::info!(%peer, to_device = piped.sent, from_device = piped.received, seconds = piped.seconds, "stream closed"),
                    Some(e) => tracing::warn!(%peer, to_device = piped.sent, from_device = piped.received, seconds = piped.seconds, error = %e, "stream ended with an error"),
                },
                () = shutdown.cancelled() => {}
            }
        }
    }
}
