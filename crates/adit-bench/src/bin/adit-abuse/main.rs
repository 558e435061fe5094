//! `adit-abuse`: what a real `adit hub` survives from hostile clients, in figures. Each
//! scenario runs against its own hub process (release build, default limits unless the
//! scenario is about a limit), with legitimate clients measured beside the attack and in a
//! quiet period of the same run. Attackers use source addresses 127.0.0.2 and up; the
//! legitimate clients come from 127.0.0.1.
//!
//! Scenarios (`--only` takes a comma-separated list):
//! - `slowloris`: stalled connections on each listener, closed by the hub's deadlines.
//! - `overload`: more idle connections than `--max-connections` admits.
//! - `oversize`: oversize and lying MQTT, WebSocket and HTTP input.
//! - `bad-sas`: a flood of bad SAS CONNECTs while valid devices connect.
//! - `replay`: token replay and wrong-role tokens.
//!
//! `bench/abuse` builds release and runs this; `--smoke` is a quick check (small counts,
//! every scenario at once).

mod attacker;
mod bad_sas;
mod fleet;
mod legit;
mod overload;
mod oversize;
mod replay;
mod row;
mod slowloris;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use fleet::Fleet;
use legit::Legit;
use row::Row;
use slowloris::{Listener, Target};

/// Command-line options.
#[derive(Debug, Parser)]
struct Args {
    /// The `adit` binary [default: beside this one].
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Only these scenarios (comma-separated): slowloris, overload, oversize, bad-sas, replay.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Small counts, every scenario at once: checks the harness in well under a minute.
    #[arg(long)]
    smoke: bool,
    /// Slowloris connections per variant.
    #[arg(long, default_value_t = 2000)]
    conns: usize,
    /// Bad SAS CONNECTs in the flood.
    #[arg(long, default_value_t = 100_000)]
    bad_sas: u64,
    /// Attacker connections in flight during the flood.
    #[arg(long, default_value_t = 500)]
    flood_concurrency: usize,
    /// Valid devices connecting during the flood.
    #[arg(long, default_value_t = 100)]
    valid: usize,
    /// Attempts per oversize input.
    #[arg(long, default_value_t = 200)]
    oversize: usize,
    /// Seconds of the quiet baseline and of the overload period.
    #[arg(long, default_value_t = 10)]
    quiet_secs: u64,
    /// Attacker source addresses (127.0.0.2 onwards).
    #[arg(long, default_value_t = 250)]
    sources: u32,
}

impl Args {
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// The counts, shrunk for `--smoke`.
    fn scaled(mut self) -> Self {
        if self.smoke {
            self.conns = 10;
            self.bad_sas = 500;
            self.flood_concurrency = 50;
            self.valid = 10;
            self.oversize = 5;
            self.quiet_secs = 2;
            self.sources = 20;
        }
        self
    }
}

fn target(fleet: &Fleet, sources: u32) -> anyhow::Result<Target> {
    Ok(Target {
        https: fleet.https,
        mqtt: fleet.mqtt,
        tls: attacker::connector(&fleet.ca),
        hello: Arc::new(attacker::client_hello(&fleet.ca)?),
        sources: Arc::new(attacker::Sources::new(sources)),
    })
}

async fn slowloris(bin: PathBuf, a: &Args) -> anyhow::Result<Vec<Row>> {
    let fleet = Fleet::start(&bin, &[])?;
    let t = target(&fleet, a.sources)?;
    let legit = Legit::start(&fleet).await?;
    let quiet = legit
        .quiet(Duration::from_secs(a.quiet_secs))
        .await
        .summary();
    let all = [
        Listener::Https,
        Listener::MqttTls,
        Listener::MqttWs,
        Listener::Gateway,
    ];
    if a.smoke {
        return Ok(slowloris::attack(&t, &legit, &all, a.conns, &quiet).await);
    }
    let mut rows = Vec::new();
    for l in all {
        rows.extend(slowloris::attack(&t, &legit, &[l], a.conns, &quiet).await);
    }
    Ok(rows)
}

async fn overload(bin: PathBuf, a: &Args) -> anyhow::Result<Vec<Row>> {
    let limit = if a.smoke { 50 } else { 1000 };
    let limit_s = limit.to_string();
    let fleet = Fleet::start(
        &bin,
        &["--max-connections", &limit_s, "--max-devices", &limit_s],
    )?;
    let t = target(&fleet, a.sources)?;
    let legit = Legit::start(&fleet).await?;
    let quiet = legit
        .quiet(Duration::from_secs(a.quiet_secs))
        .await
        .summary();
    let period = Duration::from_secs(a.quiet_secs.max(5));
    Ok(vec![
        overload::attack(&t, &legit, limit, limit + limit / 5, period, &quiet).await,
    ])
}

async fn oversize(bin: PathBuf, a: &Args) -> anyhow::Result<Vec<Row>> {
    let fleet = Fleet::start(&bin, &[])?;
    let t = target(&fleet, a.sources)?;
    let legit = Legit::start(&fleet).await?;
    oversize::run(&fleet, &t, &legit, a.oversize).await
}

async fn bad_sas(bin: PathBuf, a: &Args) -> anyhow::Result<Vec<Row>> {
    let fleet = Fleet::start(&bin, &[])?;
    let t = target(&fleet, a.sources)?;
    bad_sas::run(&fleet, &t, a.valid, a.bad_sas, a.flood_concurrency).await
}

async fn replay(bin: PathBuf, a: &Args) -> anyhow::Result<Vec<Row>> {
    let fleet = Fleet::start(&bin, &[])?;
    let _legit = Legit::start(&fleet).await?;
    replay::run(&fleet, !a.smoke).await
}

/// Runs `f` when `want`.
async fn maybe<F>(want: bool, f: F) -> Option<F::Output>
where
    F: std::future::Future,
{
    if want { Some(f.await) } else { None }
}

fn print_all(name: &str, result: anyhow::Result<Vec<Row>>) -> bool {
    match result {
        Ok(rows) => {
            for r in &rows {
                r.print();
            }
            rows.iter().all(|r| r.pass)
        }
        Err(e) => {
            println!("| {name} | | | harness error: {e:#} | | FAIL |");
            false
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse().scaled();
    let bin = match &a.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("adit"))
            .ok_or_else(|| anyhow::anyhow!("no directory for the adit binary"))?,
    };
    anyhow::ensure!(bin.exists(), "{} not found (build -p adit)", bin.display());
    // The hub runs in a directory of its own: a relative path would not find it.
    let bin = bin.canonicalize()?;
    row::print_header();
    let mut ok = true;
    if a.smoke {
        let (s, o, v, b, r) = tokio::join!(
            maybe(a.wants("slowloris"), slowloris(bin.clone(), &a)),
            maybe(a.wants("overload"), overload(bin.clone(), &a)),
            maybe(a.wants("oversize"), oversize(bin.clone(), &a)),
            maybe(a.wants("bad-sas"), bad_sas(bin.clone(), &a)),
            maybe(a.wants("replay"), replay(bin.clone(), &a)),
        );
        for (name, r) in [
            ("slowloris", s),
            ("overload", o),
            ("oversize", v),
            ("bad-sas", b),
            ("replay", r),
        ] {
            if let Some(r) = r {
                ok &= print_all(name, r);
            }
        }
    } else {
        if a.wants("slowloris") {
            ok &= print_all("slowloris", slowloris(bin.clone(), &a).await);
        }
        if a.wants("overload") {
            ok &= print_all("overload", overload(bin.clone(), &a).await);
        }
        if a.wants("oversize") {
            ok &= print_all("oversize", oversize(bin.clone(), &a).await);
        }
        if a.wants("bad-sas") {
            ok &= print_all("bad-sas", bad_sas(bin.clone(), &a).await);
        }
        if a.wants("replay") {
            ok &= print_all("replay", replay(bin.clone(), &a).await);
        }
    }
    anyhow::ensure!(ok, "some scenario did not hold (rows marked FAIL)");
    Ok(())
}
