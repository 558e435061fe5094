//! `adit-storm`: connection storms against one real `adit hub` process. Creates a fleet of
//! device identities through the REST registry, connects every device at once with the real
//! device SDK (`adit_device`, its own reconnect and jittered backoff), keeps them quiet for a
//! baseline, kills the hub with SIGKILL and starts it again on the same ports, and measures how
//! fast the fleet is back, while a steady stream of service API reads times the hub's
//! responsiveness. Once per device transport (MQTT over WebSocket, MQTT over TLS).
//!
//! Run it with `bench/storm` (release build, raised file limit); `--smoke` is a quick check.
//!
//! Files: `rig.rs` the hub process on fixed ports, `registry_fill.rs` the identities,
//! `fleet.rs` the SDK clients and when each connected, `failures.rs` failed attempts by the
//! SDK's own reasons, `api_probe.rs` the API sampler, `phase.rs` one transport's run,
//! `stats.rs` percentiles, `report.rs` table and CSV.

mod api_probe;
mod failures;
mod fleet;
mod phase;
mod registry_fill;
mod report;
mod rig;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use adit_device::{TlsOptions, Transport};
use adit_service::RegistryClient;
use clap::Parser;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Connection storms against one adit hub: connect, kill -9, reconnect")]
struct Args {
    /// Devices in the fleet.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Device transports, each a run of its own (ws, tls).
    #[arg(long, value_delimiter = ',', default_value = "ws,tls")]
    transports: Vec<String>,
    /// Create the device clients evenly over this many seconds (0: all at once).
    #[arg(long, default_value_t = 0.0)]
    spread_secs: f64,
    /// The goal for the whole fleet to be connected, in seconds (reported, met or not).
    #[arg(long, default_value_t = 10.0)]
    target_secs: f64,
    /// Seconds to wait for every device before calling the rest failed.
    #[arg(long, default_value_t = 120.0)]
    give_up_secs: f64,
    /// Seconds of quiet (every device connected) measured before the kill.
    #[arg(long, default_value_t = 10.0)]
    baseline_secs: f64,
    /// Service API requests per second, throughout.
    #[arg(long, default_value_t = 20.0)]
    api_rate: f64,
    /// Device creations in flight at once.
    #[arg(long, default_value_t = 32)]
    create_concurrency: usize,
    /// An extra flag for `adit hub` (repeat for several; e.g. --hub-arg=--max-connections
    /// --hub-arg=30000).
    #[arg(long = "hub-arg", allow_hyphen_values = true)]
    hub_args: Vec<String>,
    /// The `adit` binary (default: next to this one).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// A quick run that checks the harness works: 200 devices, 2 s of quiet.
    #[arg(long)]
    smoke: bool,
    /// Where to write the CSV.
    #[arg(long, default_value = "target/bench/storm.csv")]
    csv: PathBuf,
}

fn adit_bin(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(b) = given {
        // The hub runs in a directory of its own: a relative path would not reach it.
        return std::fs::canonicalize(&b).map_err(|e| anyhow::anyhow!("{}: {e}", b.display()));
    }
    let me = std::env::current_exe()?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no directory for {}", me.display()))?;
    Ok(dir.join("adit"))
}

fn transport(name: &str) -> anyhow::Result<Transport> {
    match name {
        "ws" | "websocket" => Ok(Transport::WebSocket),
        "tls" | "mqtt" => Ok(Transport::Tls),
        other => anyhow::bail!("unknown transport {other:?} (ws or tls)"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.devices = args.devices.min(200);
        args.baseline_secs = args.baseline_secs.min(2.0);
        args.give_up_secs = args.give_up_secs.min(20.0);
    }
    let transports = args
        .transports
        .iter()
        .map(|t| transport(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let failures = failures::FailureLog::default();
    tracing_subscriber::registry().with(failures.clone()).init();

    let bin = adit_bin(args.bin.clone())?;
    let mut rig = rig::Rig::start(&bin, &args.hub_args)?;
    failures.set_addresses(vec![rig.https.to_string(), rig.mqtt.to_string()]);
    let registry =
        RegistryClient::from_connection_string(&rig.owner, &TlsOptions::with_ca_file(&rig.ca))?;

    eprintln!("creating {} devices", args.devices);
    let (strings, took) =
        registry_fill::create(&registry, args.devices, args.create_concurrency).await?;
    let create_rate = args.devices as f64 / took.as_secs_f64().max(1e-9);
    eprintln!(
        "created {} devices in {:.1} s ({create_rate:.0}/s)",
        args.devices,
        took.as_secs_f64()
    );

    // A client of its own: the probe's connections live on the probe's runtime.
    let probe_client =
        RegistryClient::from_connection_string(&rig.owner, &TlsOptions::with_ca_file(&rig.ca))?;
    let probe = api_probe::ApiProbe::start(probe_client, args.api_rate, args.devices)?;
    let plan = phase::Plan {
        strings,
        spread: Duration::from_secs_f64(args.spread_secs),
        give_up: Duration::from_secs_f64(args.give_up_secs),
        baseline: Duration::from_secs_f64(args.baseline_secs),
    };
    let mut outcomes = Vec::new();
    for t in transports {
        let outcome = phase::run(&mut rig, &plan, t, &probe, &failures).await;
        match outcome {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                eprintln!("{} run failed: {e:#}", phase::label(t));
                break;
            }
        }
    }
    drop(probe);
    let hub_log = rig.log();
    rig.stop().await;

    println!(
        "devices created: {} in {:.1} s ({create_rate:.0}/s, {} PUTs in flight)\n",
        args.devices,
        took.as_secs_f64(),
        args.create_concurrency
    );
    println!("{}", report::markdown(&outcomes));
    println!("{}", report::failures(&outcomes));
    println!("{}", report::hub_warnings(&hub_log));
    if let Some(dir) = args.csv.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.csv, report::csv(&outcomes))?;

    let target = Duration::from_secs_f64(args.target_secs);
    let mut ok = !outcomes.is_empty();
    for o in &outcomes {
        let in_time = o.connect.all_after.is_some_and(|d| d <= target);
        println!(
            "{}: all {} connected within {:.0} s: {}; all back after kill -9: {}",
            o.transport,
            o.devices,
            args.target_secs,
            if in_time { "yes" } else { "NO" },
            if o.reconnect.all_after.is_some() {
                "yes"
            } else {
                "NO"
            },
        );
        ok &= o.connect.all_after.is_some() && o.reconnect.all_after.is_some();
    }
    anyhow::ensure!(ok, "not every device connected (see above)");
    Ok(())
}
