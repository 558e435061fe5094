//! `adit device-proxy`: serve stream requests by connecting each to a configured local target.
//! It never connects anywhere that was not configured: with `--map`, unknown stream names are
//! rejected.

use std::collections::HashMap;
use std::time::Duration;

use adit_device::{DeviceClient, DeviceOptions, IncomingStream, Transport};
use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::pipe::{Until, pipe};
use crate::cli::DeviceProxyArgs;
use crate::hub_access::tls_options;

/// Where streams go.
enum Routes {
    All(String),
    ByName(HashMap<String, String>),
}

impl Routes {
    fn target(&self, name: &str) -> Option<&str> {
        match self {
            Self::All(t) => Some(t),
            Self::ByName(m) => m.get(name).map(String::as_str),
        }
    }
}

fn routes(args: &DeviceProxyArgs) -> anyhow::Result<Routes> {
    if let Some(t) = &args.target {
        return Ok(Routes::All(t.clone()));
    }
    let mut map = HashMap::new();
    for m in &args.map {
        let Some((name, target)) = m.split_once('=') else {
            bail!("--map {m:?} is not NAME=HOST:PORT");
        };
        if name.is_empty() || !target.contains(':') {
            bail!("--map {m:?} is not NAME=HOST:PORT");
        }
        map.insert(name.to_string(), target.to_string());
    }
    Ok(Routes::ByName(map))
}

pub async fn run(args: DeviceProxyArgs) -> anyhow::Result<()> {
    let routes = routes(&args)?;
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
    println!("Device proxy running; waiting for stream requests");
    let shutdown = crate::signal::shutdown_token();
    let tracker = TaskTracker::new();
    loop {
        let request = tokio::select! {
            r = client.next_request() => match r {
                Some(r) => r,
                None => break,
            },
            () = shutdown.cancelled() => break,
        };
        let Some(target) = routes.target(request.name()).map(str::to_string) else {
            tracing::warn!(
                stream = request.name(),
                "no target for this stream name; rejecting"
            );
            let _ = request.reject().await;
            continue;
        };
        let shutdown = shutdown.clone();
        tracker.spawn(async move { serve(request, target, shutdown).await });
    }
    tracker.close();
    tracker.wait().await;
    client.shutdown().await;
    Ok(())
}

async fn serve(request: IncomingStream, target: String, shutdown: CancellationToken) {
    let name = request.name().to_string();
    let caller = request.caller().unwrap_or("?").to_string();
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
            tracing::warn!(stream = %name, error = %adit_hub::report::Report(&e), "cannot join the stream");
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
