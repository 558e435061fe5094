//! `adit-netbench wan`: Adit against direct TCP over the same emulated long path, round by
//! round (direct, Adit, direct, Adit, ...), medians and the ratio Adit/direct.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use adit_testkit::LinkProfile;

use crate::probes;
use crate::wan_env::{DeviceTransport, WanEnv};

/// Options of the WAN benchmark.
#[derive(Debug, clap::Args)]
pub struct WanArgs {
    /// Rounds per condition.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// MiB per throughput measurement.
    #[arg(long, default_value_t = 64)]
    mib: usize,
    /// 64-byte round trips per latency measurement.
    #[arg(long, default_value_t = 200)]
    round_trips: usize,
    /// Round-trip time the link adds, ms.
    #[arg(long, default_value_t = 50)]
    rtt_ms: u64,
    /// Loss of the lossy condition, percent of packets each way.
    #[arg(long, default_value_t = 1.0)]
    loss_percent: f64,
    /// How the device proxy reaches the hub (websocket or mqtt; stream bytes always take a
    /// gateway WebSocket).
    #[arg(long, default_value = "websocket", value_parser = ["websocket", "mqtt"])]
    transport: String,
}

/// Medians per (condition, metric, path).
type Samples = BTreeMap<(usize, &'static str), BTreeMap<&'static str, Vec<f64>>>;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// Runs the comparison and prints the table (markdown) on stdout.
pub async fn run(bin: &Path, args: WanArgs) -> anyhow::Result<()> {
    let rtt = Duration::from_millis(args.rtt_ms);
    let conditions = [
        (
            format!("{} ms RTT, {} % loss", args.rtt_ms, args.loss_percent),
            LinkProfile::new(rtt, args.loss_percent / 100.0),
        ),
        (
            format!("{} ms RTT, no loss", args.rtt_ms),
            LinkProfile::new(rtt, 0.0),
        ),
    ];
    let transport = if args.transport == "mqtt" {
        DeviceTransport::Mqtt
    } else {
        DeviceTransport::WebSocket
    };
    let mut env = WanEnv::start(bin, LinkProfile::new(rtt, 0.0), 20)?;
    env.start_device(transport)?;
    if env
        .wait_devices(1.0, Duration::from_secs(60))
        .await
        .is_none()
    {
        let tail = env.device().map(|d| d.tail(20)).unwrap_or_default();
        anyhow::bail!(
            "the device proxy did not connect ({}):\n{tail}",
            env.describe()
        );
    }
    let paths = [("direct", env.direct_addr()), ("adit", env.adit_addr())];
    let mut samples = Samples::new();
    for (c, (label, profile)) in conditions.iter().enumerate() {
        env.link.set_profile(*profile);
        for round in 0..args.rounds {
            eprintln!("{label}: round {}/{}", round + 1, args.rounds);
            for (name, addr) in paths {
                let mbps = probes::throughput(addr, args.mib).await?;
                let (p50, p99) = probes::round_trips(addr, args.round_trips).await?;
                eprintln!("  {name}: {mbps:.1} MB/s, RTT p50 {p50:.1} ms, p99 {p99:.1} ms");
                for (metric, v) in [
                    ("throughput MB/s", mbps),
                    ("RTT p50 ms", p50),
                    ("RTT p99 ms", p99),
                ] {
                    samples
                        .entry((c, metric))
                        .or_default()
                        .entry(name)
                        .or_default()
                        .push(v);
                }
            }
        }
    }
    let stats = env.link.stats();
    let mut table = String::from(
        "| path condition | metric (median) | direct | adit | adit/direct |\n|---|---|---|---|---|\n",
    );
    for ((c, metric), mut by_path) in samples {
        let mut m = |p: &str| by_path.get_mut(p).map(|v| median(v)).unwrap_or(f64::NAN);
        let (direct, adit) = (m("direct"), m("adit"));
        table.push_str(&format!(
            "| {} | {metric} | {direct:.1} | {adit:.1} | {:.2} |\n",
            conditions[c].0,
            adit / direct
        ));
    }
    println!("{table}");
    println!(
        "device transport {}, {} rounds, {} MiB per transfer, {} round trips per latency figure; link forwarded {} packets, dropped {}",
        transport.label(),
        args.rounds,
        args.mib,
        args.round_trips,
        stats.forwarded,
        stats.dropped
    );
    Ok(())
}
