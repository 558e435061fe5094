//! `adit-clusterbench`: Adit on one node against three, in one run, real processes only.
//! Every node is `adit hub` with the same PostgreSQL registry (a throwaway database per
//! cluster on the machine's server) and NATS server; the three-node cluster sits behind HAProxy
//! in TCP mode, and its nodes share one dev CA.
//!
//! 1. Idle devices: `--idle-devices` raw MQTT/TLS devices connect to three nodes through
//!    HAProxy (and, for reference, to one PostgreSQL+NATS node and to one SQLite hub): time to
//!    connect all, devices each node holds, each node's RSS growth per device it holds.
//! 2. Streams, interleaved round by round (medians of `--rounds`): setup latency (p50, p99:
//!    TCP connect to the service proxy to the first echoed byte, a whole stream handshake)
//!    and the setup rate from `--rate-clients` concurrent clients, with `adit service-proxy`
//!    and `adit device-proxy` on: one SQLite hub; one PostgreSQL+NATS node; three nodes with
//!    devices and services through HAProxy; three nodes with the service calling the device's
//!    own node; three nodes with the service calling another node (every request forwarded
//!    over NATS).
//!
//! Speed is reported, never asserted. Run it with `bench/cluster`; `--smoke` is a quick
//! check. Files: `cluster.rs` the nodes, `haproxy.rs` the balancer, `identities.rs` the
//! registry, `proxies.rs` the device and service proxies, `cases.rs` where they run,
//! `idle_fleet.rs` the idle devices, `report.rs` tables and CSV.

mod cases;
mod cluster;
mod haproxy;
mod identities;
mod idle_fleet;
mod proxies;
mod report;

use std::path::PathBuf;

use adit_bench::probes;
use adit_testkit::TestDatabase;
use clap::Parser;

use crate::cluster::{Cluster, Registry};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Stream setup and idle devices on one adit hub node against three")]
struct Args {
    /// Rounds of the interleaved stream comparison.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Streams per setup-latency measurement.
    #[arg(long, default_value_t = 200)]
    connects: usize,
    /// Seconds per setup-rate measurement (0 skips it).
    #[arg(long, default_value_t = 3.0)]
    rate_seconds: f64,
    /// Concurrent clients in the setup-rate measurement.
    #[arg(long, default_value_t = 16)]
    rate_clients: usize,
    /// Idle devices connected to the three nodes, and to one (0 skips it).
    #[arg(long, default_value_t = 3000)]
    idle_devices: usize,
    /// Idle devices' handshakes in flight at once.
    #[arg(long, default_value_t = 100)]
    idle_concurrency: usize,
    /// The NATS server every node uses.
    #[arg(
        long,
        env = "ADIT_TEST_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,
    /// A quick run that checks the harness works, not how fast.
    #[arg(long)]
    smoke: bool,
    /// Where to write the CSV.
    #[arg(long, default_value = "target/bench/cluster.csv")]
    csv: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.rounds = 1;
        args.connects = 10;
        args.rate_seconds = args.rate_seconds.min(0.5);
        args.idle_devices = args.idle_devices.min(60);
    }
    let bin = adit_bench::adit_beside_me()?;
    // One database per cluster (PostgreSQL at ADIT_TEST_POSTGRES_URL, default the local
    // server's `test`), dropped at the end whatever happens in between.
    let mut databases = Vec::new();
    for _ in 0..4 {
        databases.push(TestDatabase::create().await);
    }
    let urls: Vec<String> = databases.iter().map(|d| d.url.clone()).collect();
    let outcome = tokio::spawn(run(args, bin, urls)).await;
    for db in databases {
        db.drop_database().await;
    }
    outcome.map_err(|e| anyhow::anyhow!("the bench failed: {e}"))?
}

/// Unique per run: node ids and device ids on the shared NATS server carry it.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("cb{:x}", nanos & 0xffff_ffff_ffff)
}

async fn run(args: Args, bin: PathBuf, urls: Vec<String>) -> anyhow::Result<()> {
    let tag = run_tag();
    let shared = |i: usize| Registry::Shared {
        database_url: &urls[i],
        nats_url: &args.nats_url,
    };
    let mut idle = Vec::new();
    if args.idle_devices > 0 {
        for (label, registry, nodes) in [
            ("3 nodes, HAProxy", shared(0), 3),
            ("1 node, PG+NATS", shared(1), 1),
            ("1 node, SQLite", Registry::Sqlite, 1),
        ] {
            eprintln!("idle: {} devices on {label}", args.idle_devices);
            let run = format!("{tag}i{}", idle.len());
            let c = Cluster::start(&bin, registry, &run, nodes, nodes > 1)?;
            let o = idle_fleet::run(&c, &run, args.idle_devices, args.idle_concurrency).await?;
            idle.push((label, o));
        }
    }

    let target = probes::Target::start().await?;
    let sqlite = Cluster::start(&bin, Registry::Sqlite, &format!("{tag}s0"), 1, false)?;
    let one = Cluster::start(&bin, shared(2), &format!("{tag}s1"), 1, false)?;
    let three = Cluster::start(&bin, shared(3), &format!("{tag}s3"), 3, true)?;
    let cases = cases::start(&bin, target.port, &tag, &sqlite, &one, &three).await?;
    let mut samples = report::Samples::default();
    let rate_metric = format!("setups/s, {} clients", args.rate_clients);
    for round in 0..args.rounds {
        eprintln!("round {}/{}", round + 1, args.rounds);
        for case in &cases.list {
            let (p50, p99) = probes::setup(&case.ports, args.connects).await?;
            samples.record("setup p50 ms", case.name, p50);
            samples.record("setup p99 ms", case.name, p99);
            if args.rate_seconds > 0.0 {
                let rate =
                    probes::initiation_rate(&case.ports, args.rate_clients, args.rate_seconds)
                        .await?;
                samples.record(&rate_metric, case.name, rate);
            }
        }
    }
    let names: Vec<&str> = cases.list.iter().map(|c| c.name).collect();
    let spread: Vec<String> = cases
        .balanced_spread
        .iter()
        .map(|d| format!("{d:.0}"))
        .collect();
    drop(cases);

    println!("{}", samples.table(&names));
    println!(
        "3 nodes, HAProxy: its stream devices per node: {}\n",
        spread.join(" / ")
    );
    if !idle.is_empty() {
        println!("{}", report::idle_table(&idle));
    }
    let csv = format!(
        "metric,case,median,samples\n{}{}",
        samples.csv(),
        report::idle_csv(&idle)
    );
    if let Some(dir) = args.csv.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.csv, csv)?;
    eprintln!("CSV written to {}", args.csv.display());
    Ok(())
}
