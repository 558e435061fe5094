//! `adit-bench`: measures Adit against direct TCP, a socat relay and rathole in one run,
//! interleaved (A B C D, A B C D, ...), and reports medians and ratios. Speed is shown here,
//! never asserted in tests: these machines are shared and noisy, so only side-by-side ratios
//! mean much.
//!
//! Paths, all on loopback, all ending at the same in-process target server (and at an
//! `iperf3 -s` when iperf3 is installed):
//! - `direct`: client -> target.
//! - `socat`: client -> socat (TCP relay) -> target.
//! - `rathole`: client -> rathole server -> rathole client (plain TCP transport) -> target,
//!   when rathole is installed (`bench/run` installs it from crates.io).
//! - `rathole-noise`: the same with rathole's encrypted Noise transport between server and
//!   client (ChaCha20-Poly1305), the like-for-like peer for Adit's TLS legs.
//! - `adit`: client -> `adit service-proxy` -> hub gateway (TLS) -> `adit device-proxy`
//!   (TLS) -> target, exactly as a user runs it.
//!
//! Measures, per round and path: one-way bulk throughput and the relay processes' CPU per GiB,
//! iperf3 with one and four streams in both directions, 64-byte request/response round trips
//! (p50, p99), connection setup to first echoed byte (p50, p99; for Adit a whole stream
//! handshake) and the sustained rate of such setups from 16 concurrent clients. Once, at the
//! end: the hub's resident memory per idle connected device and per open idle stream.

mod idle;
mod iperf;
mod open_streams;
mod paths;

use std::io::Write as _;
use std::path::PathBuf;

use adit_bench::{cpu, probes};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// Rounds of the interleaved comparison.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// MiB per throughput measurement.
    #[arg(long, default_value_t = 256)]
    mib: usize,
    /// Round trips per latency measurement.
    #[arg(long, default_value_t = 2000)]
    round_trips: usize,
    /// Connections per setup measurement.
    #[arg(long, default_value_t = 200)]
    connects: usize,
    /// Idle devices for the memory measurement (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    idle_devices: usize,
    /// Concurrently open idle streams for the memory measurement (0 skips it).
    #[arg(long, default_value_t = 1000)]
    open_streams: usize,
    /// Seconds per iperf3 test (0 skips iperf3).
    #[arg(long, default_value_t = 3)]
    iperf_seconds: u32,
    /// Seconds per stream-initiation-rate measurement (0 skips it).
    #[arg(long, default_value_t = 3.0)]
    rate_seconds: f64,
    /// Concurrent clients in the initiation-rate measurement.
    #[arg(long, default_value_t = 16)]
    rate_clients: usize,
    /// A quick run that checks the harness works (CI smoke mode), not how fast.
    #[arg(long)]
    smoke: bool,
    /// Only these paths (comma-separated names: direct, socat, rathole, adit); all by default.
    /// Handy under a profiler.
    #[arg(long, value_delimiter = ',')]
    paths: Vec<String>,
    /// Where to write the CSV.
    #[arg(long, default_value = "target/bench/results.csv")]
    csv: PathBuf,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.rounds = 1;
        args.mib = 8;
        args.round_trips = 50;
        args.connects = 10;
        args.idle_devices = args.idle_devices.min(20);
        args.open_streams = args.open_streams.min(20);
        args.iperf_seconds = args.iperf_seconds.min(1);
        args.rate_seconds = args.rate_seconds.min(0.5);
    }
    let bin = adit_bench::adit_beside_me()?;

    let target = probes::Target::start().await?;
    let iperf_server = if args.iperf_seconds > 0 {
        iperf::Server::start()?
    } else {
        None
    };
    let env = paths::Env::start(&bin, target.port, iperf_server.as_ref().map(|s| s.port)).await?;
    let paths: Vec<paths::Path> = env
        .paths()
        .into_iter()
        .filter(|p| args.paths.is_empty() || args.paths.contains(&p.name))
        .collect();
    // metric -> path -> samples
    let mut results: Vec<(String, String, Vec<f64>)> = Vec::new();
    let mut record = |metric: &str, path: &str, value: f64| match results
        .iter_mut()
        .find(|(m, p, _)| m == metric && p == path)
    {
        Some((_, _, v)) => v.push(value),
        None => results.push((metric.to_string(), path.to_string(), vec![value])),
    };
    // Memory first, while the hubs have relayed nothing: freed relay buffers would be reused
    // by new sessions and hide what those cost.
    let mut memory = Vec::new();
    if let Some(adit) = paths.iter().find(|p| p.name == "adit")
        && args.open_streams > 0
    {
        let kib =
            open_streams::hub_kib_per_stream(env.hub.pid(), adit.port, args.open_streams).await?;
        memory.push((
            format!("hub RSS KiB/open stream ({})", args.open_streams),
            kib,
        ));
    }
    if args.idle_devices > 0 {
        for transport in [idle::Transport::Tls, idle::Transport::WebSocket] {
            let kib = idle::hub_kib_per_device(&bin, args.idle_devices, transport).await?;
            memory.push((
                format!(
                    "hub RSS KiB/idle device, {} ({})",
                    transport.label(),
                    args.idle_devices
                ),
                kib,
            ));
        }
    }
    for round in 0..args.rounds {
        eprintln!("round {}/{}", round + 1, args.rounds);
        for path in &paths {
            let (name, port) = (&path.name, &path.port);
            let cpu_before = cpu::total(&path.relay_pids);
            let mbps = probes::throughput(*port, args.mib).await?;
            // Let the relay finish closing (socat's per-connection child exits and is reaped
            // into its parent's totals) before reading what it spent.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let cpu_spent = cpu::total(&path.relay_pids) - cpu_before;
            record("throughput MB/s", name, mbps);
            if !path.relay_pids.is_empty() {
                record(
                    "relay CPU ms/GiB",
                    name,
                    cpu_spent * 1e3 * 1024.0 / args.mib as f64,
                );
            }
            let (p50, p99) = probes::round_trips(*port, args.round_trips).await?;
            record("RTT p50 us", name, p50);
            record("RTT p99 us", name, p99);
            let (s50, s99) = probes::setup(&[*port], args.connects).await?;
            record("setup p50 ms", name, s50);
            record("setup p99 ms", name, s99);
            if args.rate_seconds > 0.0 {
                let rate =
                    probes::initiation_rate(&[*port], args.rate_clients, args.rate_seconds).await?;
                record(
                    &format!("setups/s, {} clients", args.rate_clients),
                    name,
                    rate,
                );
            }
            if let Some(iperf_port) = path.iperf_port {
                for test in iperf::Test::ALL {
                    let mbps = iperf::run(iperf_port, test, args.iperf_seconds).await?;
                    record(&test.label(), name, mbps);
                }
            }
        }
    }
    for (metric, kib) in &memory {
        record(metric, "adit", *kib);
    }

    let path_names: Vec<&str> = paths.iter().map(|p| p.name.as_str()).collect();
    let mut table = format!("{:<44}", "metric (median)");
    for p in &path_names {
        table.push_str(&format!("{p:>14}"));
    }
    let peers: Vec<&str> = path_names
        .iter()
        .copied()
        .filter(|p| *p != "adit")
        .collect();
    for p in &peers {
        table.push_str(&format!("{:>20}", format!("adit/{p}")));
    }
    table.push('\n');
    let mut csv = String::from("metric,path,median,samples\n");
    let mut metrics: Vec<String> = Vec::new();
    for (m, _, _) in &results {
        if !metrics.contains(m) {
            metrics.push(m.clone());
        }
    }
    for m in &metrics {
        let mut row = format!("{m:<44}");
        let mut med = std::collections::HashMap::new();
        for p in &path_names {
            match results.iter_mut().find(|(mm, pp, _)| mm == m && pp == p) {
                Some((_, _, v)) => {
                    let x = median(v);
                    med.insert(*p, x);
                    row.push_str(&format!("{x:>14.1}"));
                    csv.push_str(&format!("{m},{p},{x:.3},{}\n", v.len()));
                }
                None => row.push_str(&format!("{:>14}", "-")),
            }
        }
        let ratio = |other: &str| match (med.get("adit"), med.get(other)) {
            (Some(a), Some(o)) if *o != 0.0 => format!("{:>20.2}", a / o),
            _ => format!("{:>20}", "-"),
        };
        for p in &peers {
            row.push_str(&ratio(p));
        }
        table.push_str(&row);
        table.push('\n');
    }
    println!("{table}");
    if let Some(dir) = args.csv.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::create(&args.csv)?.write_all(csv.as_bytes())?;
    eprintln!("CSV written to {}", args.csv.display());
    drop(env);
    Ok(())
}
