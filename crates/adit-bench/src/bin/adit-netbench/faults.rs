//! `adit-netbench faults`: network faults on the device's path, over each device transport:
//! loss, added delay, and a blackholed path (every packet silently dropped, then restored).
//! Per case: does the device connect and how long it takes, is 64 KiB echoed byte-identical
//! through a stream, and for the blackhole when the hub, the service and the device each
//! notice, and how long after the path is restored the device is back with a working stream.

use std::path::Path;
use std::time::{Duration, Instant};

use adit_testkit::LinkProfile;
use rand::RngCore as _;
use tokio::io::AsyncReadExt as _;

use crate::probes;
use crate::wan_env::{DeviceTransport, WanEnv};

/// Bytes echoed through each stream.
const PAYLOAD: usize = 64 * 1024;
/// The base path: 50 ms round trip, no loss.
const BASE_RTT: Duration = Duration::from_millis(50);
/// How long to wait for a connection or a detection before counting it as never.
const CONNECT_CAP: Duration = Duration::from_secs(120);
const DETECT_CAP: Duration = Duration::from_secs(150);

/// Options of the fault matrix.
#[derive(Debug, clap::Args)]
pub struct FaultArgs {
    /// Seconds of silence after which hub and proxies ping a WebSocket, and seconds they
    /// wait for the answer.
    #[arg(long, default_value_t = 5)]
    keepalive_secs: u64,
    /// Only these transports (websocket, mqtt); both by default.
    #[arg(long, value_delimiter = ',')]
    transports: Vec<String>,
}

/// One fault.
struct Fault {
    name: &'static str,
    profile: LinkProfile,
    blackhole: bool,
}

fn faults() -> [Fault; 4] {
    [
        Fault {
            name: "loss 5 %",
            profile: LinkProfile::new(BASE_RTT, 0.05),
            blackhole: false,
        },
        Fault {
            name: "loss 20 %",
            profile: LinkProfile::new(BASE_RTT, 0.20),
            blackhole: false,
        },
        Fault {
            name: "delay 500 ms RTT",
            profile: LinkProfile::new(Duration::from_millis(500), 0.0),
            blackhole: false,
        },
        Fault {
            name: "blackhole",
            profile: LinkProfile::new(BASE_RTT, 0.0),
            blackhole: true,
        },
    ]
}

/// What one case measured (seconds; `None`: did not happen within the cap).
#[derive(Debug, Default)]
struct Outcome {
    connect: Option<f64>,
    echo: Option<(bool, f64)>,
    hub_detects: Option<f64>,
    service_detects: Option<f64>,
    device_detects: Option<f64>,
    device_cause: Option<String>,
    reconnect: Option<f64>,
    echo_after: Option<(bool, f64)>,
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "never".into(), |s| format!("{s:.1}"))
}

fn echo_cell(v: Option<(bool, f64)>) -> String {
    match v {
        Some((true, s)) => format!("identical, {s:.1} s"),
        Some((false, _)) => "CORRUPTED".into(),
        None => "failed".into(),
    }
}

/// Opens a stream through the service proxy and echoes 64 KiB of random bytes on it.
async fn echo(env: &WanEnv) -> (Option<(bool, f64)>, Option<tokio::net::TcpStream>) {
    let mut payload = vec![0u8; PAYLOAD];
    rand::rng().fill_bytes(&mut payload);
    let t = Instant::now();
    let Ok(mut s) = probes::open_echo(env.adit_addr(), CONNECT_CAP).await else {
        return (None, None);
    };
    match tokio::time::timeout(CONNECT_CAP, probes::echo_identical(&mut s, &payload)).await {
        Ok(Ok(same)) => (Some((same, t.elapsed().as_secs_f64())), Some(s)),
        _ => (None, None),
    }
}

/// One case: a fresh device proxy on a path with the fault.
async fn case(
    env: &mut WanEnv,
    transport: DeviceTransport,
    fault: &Fault,
) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    env.link.set_blackhole(false);
    env.link.set_profile(fault.profile);
    let started = Instant::now();
    env.start_device(transport)?;
    out.connect = env
        .wait_devices(1.0, CONNECT_CAP)
        .await
        .map(|t| (t - started).as_secs_f64());
    if out.connect.is_none() {
        return Ok(out);
    }
    let (echoed, held) = echo(env).await;
    out.echo = echoed;
    if fault.blackhole
        && let Some(held) = held
    {
        blackhole(env, held, &mut out).await;
    }
    // Leave cleanly: restore the path so the hub sees the proxy go, then wait for it.
    env.link.set_blackhole(false);
    env.link.set_profile(LinkProfile::new(BASE_RTT, 0.0));
    env.stop_device();
    let _ = env.wait_devices(0.0, Duration::from_secs(30)).await;
    Ok(out)
}

/// Cuts the path under an open stream, times each side's detection, restores it and times
/// the device's return.
async fn blackhole(env: &mut WanEnv, mut held: tokio::net::TcpStream, out: &mut Outcome) {
    let cut = Instant::now();
    env.link.set_blackhole(true);
    // The service side: its client connection ends when the service proxy's stream does.
    let service = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            match held.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    });
    let deadline = cut + DETECT_CAP;
    let (mut hub, mut device) = (None, None);
    while Instant::now() < deadline && (hub.is_none() || device.is_none() || !service.is_finished())
    {
        if hub.is_none() && env.connected_devices() == Some(0.0) {
            hub = Some(Instant::now());
        }
        if device.is_none() {
            device = env
                .device()
                .and_then(|d| d.line_after(cut, "disconnected from the hub"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let since = |t: Instant| (t - cut).as_secs_f64();
    out.hub_detects = hub.map(since);
    out.device_detects = device.as_ref().map(|(t, _)| since(*t));
    out.device_cause = device.map(|(_, line)| line);
    if service.is_finished() {
        out.service_detects = service.await.ok().map(since);
    } else {
        service.abort();
    }
    let restored = Instant::now();
    env.link.set_blackhole(false);
    out.reconnect = env
        .wait_devices(1.0, CONNECT_CAP)
        .await
        .map(|t| (t - restored).as_secs_f64());
    if out.reconnect.is_some() {
        out.echo_after = echo(env).await.0;
    }
}

/// Runs every fault over every transport and prints the table (markdown) on stdout.
pub async fn run(bin: &Path, args: FaultArgs) -> anyhow::Result<()> {
    let transports: Vec<DeviceTransport> = [DeviceTransport::WebSocket, DeviceTransport::Mqtt]
        .into_iter()
        .filter(|t| args.transports.is_empty() || args.transports.iter().any(|a| a == t.flag()))
        .collect();
    let mut table = String::from(
        "| device transport | fault | connected in s | 64 KiB echo | hub detects s | service detects s | device detects s | device back after restore s | echo after restore |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut causes = Vec::new();
    for transport in transports {
        let mut env = WanEnv::start(bin, LinkProfile::new(BASE_RTT, 0.0), args.keepalive_secs)?;
        for fault in faults() {
            eprintln!("{}: {}", transport.label(), fault.name);
            let o = case(&mut env, transport, &fault).await?;
            eprintln!("  {o:?}");
            let dash = |s: String| if fault.blackhole { s } else { "-".into() };
            table.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                transport.label(),
                fault.name,
                secs(o.connect),
                echo_cell(o.echo),
                dash(secs(o.hub_detects)),
                dash(secs(o.service_detects)),
                dash(secs(o.device_detects)),
                dash(secs(o.reconnect)),
                dash(echo_cell(o.echo_after)),
            ));
            if let Some(c) = o.device_cause {
                causes.push(format!("{}: {c}", transport.label()));
            }
        }
    }
    println!("{table}");
    println!(
        "base path {} ms RTT; hub and proxies ping after {} s of silence and wait {} s for the answer; the device's MQTT keep-alive is 60 s",
        BASE_RTT.as_millis(),
        args.keepalive_secs,
        args.keepalive_secs
    );
    for c in causes {
        println!("device log at detection, {c}");
    }
    Ok(())
}
