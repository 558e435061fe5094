//! `adit hub`: run a hub until SIGINT or SIGTERM.

use std::time::Duration;

use adit_hub::gateway::Keepalive;
use adit_hub::tls::TlsSource;
use adit_hub::{Hub, HubConfig};
use anyhow::Context as _;

use crate::cli::HubArgs;

pub async fn run(args: HubArgs) -> anyhow::Result<()> {
    let mut config = HubConfig::new(&args.data_dir);
    config.database_url = args.database_url;
    config.hostname = args.hostname;
    config.listen_addr = args.listen_addr;
    config.https_port = args.https_port;
    config.https_limits.max_connections = args.max_connections;
    config.https_limits.shutdown_grace = Duration::from_secs(args.shutdown_grace);
    let keepalive = Keepalive::new(
        Duration::from_secs(args.ping_interval),
        Duration::from_secs(args.pong_timeout),
    )?;
    config.gateway.keepalive = keepalive;
    config.gateway.resume_grace = Duration::from_secs(args.resume_grace);
    config.mqtt.ws_keepalive = keepalive;
    config.streams.limits = adit_hub::streams::StreamLimits {
        max_streams: args.max_streams,
        max_streams_per_device: args.max_streams_per_device,
        initiations_per_second: args.max_stream_rate,
    };
    // The in-memory ring of ended streams serves only embedders (`Streams::records`); this
    // binary has no reader for it, and every record is in the diagnostics log already.
    config.streams.records_kept = 0;
    config.mqtt.port = args.mqtt_port;
    config.mqtt.max_connections = args.max_devices;
    config.admin_addr = args.admin_addr;
    config.public_url = args.public_url;
    config.log.stdout = args.log_stdout;
    config.log.max_file_bytes = args.log_max_mib.max(1) * 1024 * 1024;
    config.nats_url = args.nats_url;
    if let Some(node_id) = args.node_id {
        config.node_id = node_id;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = TlsSource::Files { cert, key };
    }

    let hub = Hub::bind(config).await.context("cannot start the hub")?;
    let boot = hub.bootstrap();
    if boot.first_start {
        // Absolute, so a hub started from an unexpected directory says where its keys went.
        let dir = std::fs::canonicalize(&args.data_dir).unwrap_or(args.data_dir.clone());
        println!("New hub created in {}.", dir.display());
        println!(
            "Owner connection string (keep it secret; also saved to {}):",
            boot.connection_string_file.display()
        );
        println!("  {}", boot.owner_connection_string);
        if let Some(ca) = &boot.ca_path {
            println!("Dev CA certificate for clients to trust: {}", ca.display());
        }
    } else {
        println!(
            "Owner connection string: {}",
            boot.connection_string_file.display()
        );
        if let Some(ca) = &boot.ca_path {
            println!("Dev CA certificate: {}", ca.display());
        }
    }
    // Scripts and tests read the bound port from this line (it matters with --https-port 0).
    println!("HTTPS listening on {}", hub.https_addr());
    println!("MQTT listening on {}", hub.mqtt_addr());
    println!("Admin listening on http://{}", hub.admin_addr());

    hub.run(crate::signal::shutdown_token()).await;
    Ok(())
}
