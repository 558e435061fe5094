//! `adit-netbench`: Adit on an emulated WAN path in network namespaces. This kernel has no
//! `sch_netem`, so the path is a user-space forwarder between two TUN devices (the testkit's
//! `EmulatedLink`): the device proxy and the target server run in a namespace of their own,
//! the hub and the service proxy in this one, and every packet between them is delayed,
//! dropped at random, or blackholed.
//!
//! - `wan`: single-stream throughput and 64-byte round trips, Adit against direct TCP over
//!   the same path (50 ms RTT with and without 1 % loss), medians and ratios.
//! - `faults`: loss, delay and a blackholed device path over each device transport: connect,
//!   a 64 KiB echo, detection by hub, service and device, and reconnection after restore.
//!
//! Needs root and `/dev/net/tun`. `bench/wan` and `bench/faults-net` build and run it.

mod faults;
mod probes;
mod spawned;
mod target;
mod wan;
mod wan_env;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Adit on an emulated WAN path (network namespaces, user-space delay and loss)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Throughput and round trips, Adit against direct TCP.
    Wan(wan::WanArgs),
    /// Loss, delay and a blackholed device path over each device transport.
    Faults(faults::FaultArgs),
    /// The target server (run by the benchmark inside the device namespace).
    #[command(hide = true)]
    Target {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::Target { listen } = cli.command {
        return target::serve(listen).await;
    }
    adit_testkit::netns_support()?;
    let bin = adit_bench::adit_beside_me()?;
    let work = async {
        match cli.command {
            Cmd::Wan(args) => wan::run(&bin, args).await,
            Cmd::Faults(args) => faults::run(&bin, args).await,
            Cmd::Target { .. } => Ok(()),
        }
    };
    // On Ctrl-C or SIGTERM the work is dropped, so its processes are killed and its
    // namespace deleted, as on any error.
    tokio::select! {
        r = work => r,
        () = interrupted() => anyhow::bail!("interrupted; processes stopped, namespace deleted"),
    }
}

/// SIGINT or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
