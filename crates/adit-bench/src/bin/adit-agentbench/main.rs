//! `bench/device-agent`: the device agent beside what it replaces and its peer, in one run.
//!
//! Three device-side programs:
//! - `agent`: `adit` built without its `full` feature, with ring, profile `device` (what the
//!   adit-device package ships);
//! - `full`: `adit device-proxy` from the full release build (the device side until now);
//! - `rathole`: rathole's client (plain TCP, and Noise when built with it), with its server.
//!
//! For each: the binary's size as built and stripped (`strip` from binutils), and the resident
//! memory (VmRSS) while idle with one connection to its server, the median over interleaved
//! rounds. For the two Adit programs also the CPU seconds they spend per GiB relayed, a bulk
//! transfer from `adit service-proxy` through the hub to them and on to a local target.
//! Reported, never asserted: this machine is shared and noisy.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use adit_bench::rathole::{RatholeTransport, find_rathole, start_rathole};
use adit_bench::rss::rss_kib;
use adit_bench::{BENCH_HUB_FLAGS, adit_beside_me, cpu, probes, wait_listening};
use adit_testkit::{HubProcess, free_port};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// Interleaved rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// MiB relayed per round to measure CPU per GiB.
    #[arg(long, default_value_t = 512)]
    mib: usize,
    /// Seconds a program sits idle before its memory is read.
    #[arg(long, default_value_t = 3.0)]
    idle: f64,
    /// The device agent [default: target/device/adit beside this build].
    #[arg(long)]
    agent: Option<PathBuf>,
    /// Where the table goes as CSV.
    #[arg(long, default_value = "target/bench/device-agent.csv")]
    csv: PathBuf,
}

const DEVICE: &str = "agent-bench";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Size in bytes of `bin`, and of a stripped copy (`None` without `strip`).
fn sizes(bin: &Path) -> anyhow::Result<(u64, Option<u64>)> {
    let size = std::fs::metadata(bin)?.len();
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join("stripped");
    std::fs::copy(bin, &copy)?;
    let stripped = Command::new("strip")
        .arg(&copy)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    Ok((size, stripped))
}

/// Kills and reaps on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bin device-proxy` for the bench device, mapping `echo` to `target`; returns once the hub
/// shows it connected.
fn start_device_proxy(
    bin: &Path,
    hub: &HubProcess,
    device_cs: &str,
    target: u16,
) -> anyhow::Result<Running> {
    let child = Command::new(bin)
        .args(["device-proxy", "--map", &format!("echo=127.0.0.1:{target}")])
        .env("ADIT_DEVICE_CONNECTION_STRING", device_cs)
        .env("ADIT_CA_FILE", hub.ca_path())
        .env("ADIT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let proxy = Running(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = hub.cli(&["device", "show", DEVICE], &[]);
        let device: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if device["connectionState"] == "Connected" {
            return Ok(proxy);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{} device-proxy did not connect",
            bin.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What one Adit device-side program measured in one round.
struct Round {
    rss_kib: f64,
    cpu_per_gib: f64,
    mb_per_s: f64,
}

#[allow(clippy::too_many_arguments)]
async fn measure_adit(
    bin: &Path,
    full: &Path,
    hub: &HubProcess,
    device_cs: &str,
    target: u16,
    idle: Duration,
    mib: usize,
) -> anyhow::Result<Round> {
    let proxy = start_device_proxy(bin, hub, device_cs, target)?;
    tokio::time::sleep(idle).await;
    let rss = rss_kib(proxy.0.id())?;
    // The service side is always the full adit; only the device side changes.
    let port = free_port();
    let service = Running(
        Command::new(full)
            .args([
                "service-proxy",
                "--device",
                DEVICE,
                "--stream-name",
                "echo",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--connect-timeout",
                "30",
            ])
            .env("ADIT_CONNECTION_STRING", hub.owner_connection_string())
            .env("ADIT_CA_FILE", hub.ca_path())
            .env("ADIT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_listening(port)?;
    // A first small transfer opens the session; its cost is not counted.
    probes::throughput(port, 1).await?;
    let before = cpu::seconds(proxy.0.id());
    let mb_per_s = probes::throughput(port, mib).await?;
    let spent = cpu::seconds(proxy.0.id()) - before;
    drop(service);
    drop(proxy);
    Ok(Round {
        rss_kib: rss,
        cpu_per_gib: spent / (mib as f64 / 1024.0),
        mb_per_s,
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / (1024.0 * 1024.0))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let full = adit_beside_me()?;
    let agent = match args.agent.clone() {
        Some(a) => a,
        None => full
            .parent()
            .and_then(Path::parent)
            .map(|t| t.join("device/adit"))
            .ok_or_else(|| anyhow::anyhow!("cannot locate target/device/adit"))?,
    };
    anyhow::ensure!(
        agent.exists(),
        "build the agent first: cargo build --profile device -p adit --no-default-features --features ring ({} missing)",
        agent.display()
    );
    let rathole = find_rathole();
    let idle = Duration::from_secs_f64(args.idle);

    let target = probes::Target::start().await?;
    let hub = HubProcess::start_on_free_ports(&full, &BENCH_HUB_FLAGS);
    let out = hub.cli(&["device", "create", DEVICE], &[]);
    anyhow::ensure!(
        out.status.success(),
        "device create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let device_cs = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let mut agent_rounds = Vec::new();
    let mut full_rounds = Vec::new();
    let mut rathole_rss: Vec<(&str, Vec<f64>)> =
        vec![("rathole", vec![]), ("rathole-noise", vec![])];
    for round in 1..=args.rounds {
        eprintln!("round {round} of {}", args.rounds);
        agent_rounds.push(
            measure_adit(&agent, &full, &hub, &device_cs, target.port, idle, args.mib).await?,
        );
        full_rounds
            .push(measure_adit(&full, &full, &hub, &device_cs, target.port, idle, args.mib).await?);
        for (name, transport) in [
            ("rathole", RatholeTransport::Tcp),
            ("rathole-noise", RatholeTransport::Noise),
        ] {
            if let Some(r) = start_rathole(target.port, None, transport)? {
                tokio::time::sleep(idle).await;
                if let Some(client) = r.children.get(1) {
                    let rss = rss_kib(client.id())?;
                    if let Some((_, v)) = rathole_rss.iter_mut().find(|(n, _)| *n == name) {
                        v.push(rss);
                    }
                }
                for mut c in r.children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
    }

    let mut rows: Vec<Vec<String>> = Vec::new();
    let header = [
        "program",
        "binary MiB",
        "stripped MiB",
        "idle RSS MiB",
        "CPU s per GiB",
        "MB/s",
    ];
    for (name, bin, rounds) in [
        ("adit device agent", &agent, &agent_rounds),
        ("adit device-proxy (full)", &full, &full_rounds),
    ] {
        let (size, stripped) = sizes(bin)?;
        rows.push(vec![
            name.to_string(),
            mib(size),
            stripped.map_or("n/a".into(), mib),
            format!(
                "{:.2}",
                median(rounds.iter().map(|r| r.rss_kib).collect()) / 1024.0
            ),
            format!(
                "{:.2}",
                median(rounds.iter().map(|r| r.cpu_per_gib).collect())
            ),
            format!("{:.0}", median(rounds.iter().map(|r| r.mb_per_s).collect())),
        ]);
    }
    if let Some(bin) = &rathole {
        let (size, stripped) = sizes(bin)?;
        for (name, rss) in rathole_rss.into_iter().filter(|(_, v)| !v.is_empty()) {
            rows.push(vec![
                format!("{name} client"),
                mib(size),
                stripped.map_or("n/a".into(), mib),
                format!("{:.2}", median(rss) / 1024.0),
                "-".into(),
                "-".into(),
            ]);
        }
    } else {
        eprintln!("rathole not found (bench/run installs it): its rows are left out");
    }

    println!(
        "device-side programs, one connection to their server, idle {:.0} s; {} rounds, {} MiB per round",
        args.idle, args.rounds, args.mib
    );
    println!("{}", header.join(" | "));
    for r in &rows {
        println!("{}", r.join(" | "));
    }
    if let Some(dir) = args.csv.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut csv = header.join(",") + "\n";
    for r in &rows {
        csv.push_str(&r.join(","));
        csv.push('\n');
    }
    std::fs::write(&args.csv, csv)?;
    eprintln!("written: {}", args.csv.display());
    drop(hub);
    Ok(())
}
