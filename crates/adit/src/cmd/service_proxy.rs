//! `adit service-proxy --device ID --listen ADDR`: each accepted TCP connection becomes its own
//! stream to the device.

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use super::offline_hint::offline_hint;
use super::pipe::{Until, pipe};
use crate::cli::ServiceProxyArgs;

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
    let tracker = TaskTracker::new();
    loop {
        let (mut tcp, peer) = tokio::select! {
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
        let (service, registry, device, name, shutdown, options) = (
            service.clone(),
            registry.clone(),
            args.device.clone(),
            args.stream.stream_name.clone(),
            shutdown.clone(),
            options.clone(),
        );
        tracker.spawn(async move {
            let mut stream = match service.open_stream(&device, &name, &options).await {
                Ok(s) => s,
                Err(e) => {
                    let hint = offline_hint(&e, registry.as_ref(), &device).await;
                    match hint {
                        Some(hint) => tracing::warn!(%peer, "cannot open a stream ({hint}); closing the connection"),
                        None => tracing::warn!(%peer, error = %adit_hub::report::Report(&e), "cannot open a stream; closing the connection"),
                    }
                    return;
                }
            };
            tracing::info!(%peer, device = %device, "stream opened");
            let (mut tcp_read, mut tcp_write) = tcp.split();
            tokio::select! {
                piped = pipe(&mut tcp_read, &mut tcp_write, &mut stream, Until::BothEnd) => match piped.error {
                    None => tracing::info!(%peer, to_device = piped.sent, from_device = piped.received, seconds = piped.seconds, "stream closed"),
                    Some(e) => tracing::warn!(%peer, to_device = piped.sent, from_device = piped.received, seconds = piped.seconds, error = %e, "stream ended with an error"),
                },
                () = shutdown.cancelled() => {}
            }
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}
