//! Every few seconds: the hub's resident memory and open file descriptors (from /proc), its
//! alive Tokio tasks and active streams (from /metrics), and the traffic so far; each sample
//! appended to the CSV as it is taken.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::rig::Rig;
use crate::tally::Tally;
use crate::verdict::Phases;

/// One sample.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the traffic started.
    pub t: f64,
    /// Hub `VmRSS`, KiB.
    pub rss_kib: f64,
    /// Its anonymous part (`RssAnon`: heap and stacks, where a leak would show; the rest is
    /// mostly the binary's code, paged in and out by the kernel), KiB.
    pub anon_kib: f64,
    /// Hub open file descriptors.
    pub fds: f64,
    /// `adit_tokio_alive_tasks`.
    pub tasks: f64,
    /// `adit_active_streams`.
    pub active_streams: f64,
    /// `adit_connected_devices`.
    pub devices: f64,
}

const HEADER: &str = "t_s,phase,rss_kib,open_fds,alive_tasks,active_streams,connected_devices,\
                      streams_opened,streams_failed,bytes_sent,bytes_echoed,bytes_lost,flaps,rss_anon_kib";

/// Takes a sample every `every` from `start` until `stop`, appending each to `csv`.
pub async fn run(
    rig: &Rig,
    tally: Arc<Tally>,
    phases: Phases,
    start: Instant,
    every: Duration,
    csv: &Path,
    stop: CancellationToken,
) -> anyhow::Result<Vec<Sample>> {
    let mut out = std::fs::File::create(csv)?;
    writeln!(out, "{HEADER}")?;
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval_at(start.into(), every);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        // A failed scrape is reported and skipped: one lost sample does not end the soak.
        let sample = match take(rig, start).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("soak: sample failed: {e:#}");
                continue;
            }
        };
        write_row(&mut out, &sample, phases.name(sample.t), &tally)?;
        eprintln!(
            "soak: t={:.0}s rss={:.0}KiB fds={:.0} tasks={:.0} streams={:.0} devices={:.0} \
             opened={} failed={} lost={} flaps={}",
            sample.t,
            sample.rss_kib,
            sample.fds,
            sample.tasks,
            sample.active_streams,
            sample.devices,
            Tally::get(&tally.opened),
            Tally::get(&tally.failed),
            Tally::get(&tally.lost),
            Tally::get(&tally.flaps),
        );
        samples.push(sample);
    }
    Ok(samples)
}

/// One sample now, `t` seconds after `start`.
pub async fn take(rig: &Rig, start: Instant) -> anyhow::Result<Sample> {
    let pid = rig.hub.pid();
    let metrics = rig.scrape().await?;
    let gauge = |name: &str| {
        metrics
            .get(name)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("the hub's /metrics has no {name}"))
    };
    // A hub without the task gauge (older than the soak) still gets its other curves; the
    // verdict then fails that curve.
    let tasks = gauge("adit_tokio_alive_tasks").unwrap_or(f64::NAN);
    Ok(Sample {
        t: start.elapsed().as_secs_f64(),
        rss_kib: crate::rss::rss_kib(pid)?,
        anon_kib: rss_anon_kib(pid)?,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as f64,
        tasks,
        active_streams: gauge("adit_active_streams")?,
        devices: gauge("adit_connected_devices")?,
    })
}

/// Appends `sample` with the traffic counters as they are now.
pub fn write_row(
    out: &mut std::fs::File,
    s: &Sample,
    phase: &str,
    tally: &Tally,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:.1},{phase},{},{},{},{},{},{},{},{},{},{},{},{}",
        s.t,
        s.rss_kib,
        s.fds,
        s.tasks,
        s.active_streams,
        s.devices,
        Tally::get(&tally.opened),
        Tally::get(&tally.failed),
        Tally::get(&tally.sent),
        Tally::get(&tally.echoed),
        Tally::get(&tally.lost),
        Tally::get(&tally.flaps),
        s.anon_kib,
    )?;
    out.flush()?;
    Ok(())
}

/// `RssAnon` of `pid`, in KiB.
fn rss_anon_kib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .ok_or_else(|| anyhow::anyhow!("no RssAnon for {pid}"))?;
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}
