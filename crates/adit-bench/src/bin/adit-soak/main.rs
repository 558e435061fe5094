//! `adit-soak`: one real release hub (`adit hub` in a child process) under mixed traffic for
//! an hour: interactive 64-byte echo streams and bulk transfers of a few MiB opened at steady
//! rates through device-SDK devices and `adit device-proxy` processes, from the service SDK,
//! with devices flapping all along; every byte checked on its way back. Every 10 s it samples
//! the hub's RSS, open file descriptors, alive Tokio tasks and active-stream gauge into a CSV,
//! and at the end judges each curve flat (or not) after warm-up and writes a report.
//!
//! Run it with `bench/soak` (release build; it also draws the PNG). Exits 1 if a curve grew,
//! a byte was lost or a stream or flap failed.

mod args;
mod bulk;
mod echo_device;
mod ending;
mod flapper;
mod interactive;
mod pattern;
mod report;
mod rig;
#[path = "../../rss.rs"]
mod rss;
mod sampler;
mod tally;
mod traffic;
mod verdict;

use std::sync::Arc;
use std::time::{Duration, Instant};

use adit_device::{DeviceClient, DeviceOptions, Transport};
use adit_service::{ServiceClient, TlsOptions};
use clap::Parser as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::flapper::Flap;
use crate::interactive::Interactive;
use crate::rig::Rig;
use crate::tally::Tally;
use crate::traffic::Mix;
use crate::verdict::Phases;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.adit {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|p| p.join("adit"))
            .ok_or_else(|| anyhow::anyhow!("cannot locate the adit binary"))?,
    };
    anyhow::ensure!(
        bin.exists(),
        "build it first: cargo build --release -p adit -p adit-bench ({} missing)",
        bin.display()
    );
    std::fs::create_dir_all(&args.out)?;
    let rig = Rig::start(&bin);
    eprintln!("soak: hub pid {} on {}", rig.hub.pid(), rig.hub.addr);
    let ca = TlsOptions::with_ca_file(rig.ca());
    let device_options = |over_tls: bool| {
        let mut o = DeviceOptions::default();
        o.tls = ca.clone();
        if over_tls {
            o.transport = Transport::Tls;
            o.mqtt_port = rig.hub.mqtt_addr.port();
        }
        o
    };

    // The stable devices: SDK echo devices, and device proxies in front of a TCP echo server.
    let devices_stop = CancellationToken::new();
    let mut devices = JoinSet::new();
    let mut stable = Vec::new();
    for i in 0..args.sdk_devices {
        let id = format!("soak-sdk-{i}");
        let mut client = DeviceClient::new(&rig.create_device(&id)?, device_options(i % 2 == 1))?;
        let stop = devices_stop.clone();
        devices.spawn(async move {
            let _ = stop
                .run_until_cancelled(echo_device::serve(&mut client))
                .await;
            client.shutdown().await;
        });
        stable.push(id);
    }
    let echo_port = adit_testkit::echo_server();
    let mut proxies = Vec::new();
    for i in 0..args.proxy_devices {
        let id = format!("soak-proxy-{i}");
        let log = args.out.join(format!("device-proxy-{i}.log"));
        proxies.push(rig.device_proxy(&rig.create_device(&id)?, echo_port, &log)?);
        stable.push(id);
    }
    anyhow::ensure!(!stable.is_empty(), "no stable device to stream to");
    wait_for_devices(&rig, stable.len()).await?;

    // The flapping devices, spread evenly over one cycle.
    let stop = CancellationToken::new();
    let tally = Arc::new(Tally::default());
    let mut flappers = JoinSet::new();
    let cycle = args.flap_up + args.flap_down;
    for i in 0..args.flapping_devices {
        let flap = Flap {
            connection_string: rig.create_device(&format!("soak-flap-{i}"))?,
            options: device_options(i % 2 == 0),
            up: args.flap_up,
            down: args.flap_down,
            offset: cycle.mul_f64(i as f64 / args.flapping_devices.max(1) as f64),
        };
        flappers.spawn(flapper::run(flap, tally.clone(), stop.clone()));
    }

    let service = ServiceClient::from_connection_string(&rig.owner(), &ca)?;
    let mix = Mix {
        interactive_every: args.interactive_every,
        interactive: Interactive {
            messages: args.interactive_messages,
            every: args.message_every,
        },
        bulk_every: args.bulk_every,
        bulk_bytes: args.bulk_mib * 1024 * 1024,
    };
    let phases = Phases::new(args.duration.as_secs_f64());
    let start = Instant::now();
    let traffic = tokio::spawn(traffic::run(
        service,
        stable.clone(),
        mix,
        tally.clone(),
        stop.clone(),
    ));
    let csv = args.out.join("soak.csv");
    let sampling = sampler::run(
        &rig,
        tally.clone(),
        phases,
        start,
        args.sample_every,
        &csv,
        stop.clone(),
    );
    let timer = async {
        // Half a period past the end, so the sample at the end is taken.
        tokio::time::sleep(args.duration + args.sample_every / 2).await;
        stop.cancel();
    };
    let (samples, ()) = tokio::join!(sampling, timer);
    let samples = samples?;

    eprintln!("soak: traffic stopped; waiting for the streams in flight and the flappers");
    if tokio::time::timeout(Duration::from_secs(400), traffic)
        .await
        .is_err()
    {
        eprintln!("soak: streams still in flight after 400 s");
    }
    while flappers.join_next().await.is_some() {}
    // Let the hub notice the last disconnects, then one more sample: streams back to zero.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = match sampler::take(&rig, start).await {
        Ok(a) => {
            let mut out = std::fs::OpenOptions::new().append(true).open(&csv)?;
            sampler::write_row(&mut out, &a, "after", &tally)?;
            Some(a)
        }
        Err(e) => {
            eprintln!("soak: the sample after the traffic failed: {e:#}");
            None
        }
    };

    let series = |f: fn(&sampler::Sample) -> f64| -> Vec<(f64, f64)> {
        samples.iter().map(|s| (s.t, f(s))).collect()
    };
    let curves = [
        verdict::judge("hub RSS (KiB)", &series(|s| s.rss_kib), phases),
        verdict::judge(
            "  of which anonymous (KiB)",
            &series(|s| s.anon_kib),
            phases,
        ),
        verdict::judge("open file descriptors", &series(|s| s.fds), phases),
        verdict::judge("alive Tokio tasks", &series(|s| s.tasks), phases),
        verdict::judge("active streams", &series(|s| s.active_streams), phases),
    ];
    let report = report::build(&args, &bin, &curves, &tally, after.as_ref(), phases);
    println!("{}", report.text);
    std::fs::write(args.out.join("report.md"), &report.text)?;
    let _ = std::fs::copy(rig.hub.workdir().join("hub.log"), args.out.join("hub.log"));
    eprintln!("soak: wrote {} and report.md", csv.display());

    devices_stop.cancel();
    while devices.join_next().await.is_some() {}
    drop(proxies);
    // process::exit runs no destructors: stop the hub first.
    drop(rig);
    if !report.passed {
        std::process::exit(1);
    }
    Ok(())
}

/// Waits up to 60 s for the hub to count `n` connected devices.
async fn wait_for_devices(rig: &Rig, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let connected = rig
            .scrape()
            .await
            .ok()
            .and_then(|m| m.get("adit_connected_devices").copied())
            .unwrap_or(0.0);
        if connected >= n as f64 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {connected} of {n} devices connected within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
