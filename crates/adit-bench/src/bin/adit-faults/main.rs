//! `adit-faults`: SIGKILL of the device proxy, of the service side and of the hub at each
//! stage of a stream (requested, delivered, accepted, connecting, relaying), on real
//! processes over loopback. For each fault it reports how soon the surviving peers ended
//! their side and with what error, whether the hub's gauges came back to zero (or, when the
//! hub was killed, how soon the device was back after a restart and whether the registry
//! passed its integrity check), and whether a fresh stream worked afterwards.
//!
//! Run it with `bench/faults` (release build); `--postgres` puts the registry in a
//! throwaway PostgreSQL database instead of SQLite. It exits 1 if any fault failed.

mod hung_target;
mod integrity;
mod peer;
mod rig;
mod scenario;
mod service_peer;
mod stage;

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::stage::{Stage, Victim};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    peer: Option<Peer>,
    /// Keep the registry in a fresh PostgreSQL database (127.0.0.1:5432) instead of SQLite.
    #[arg(long)]
    postgres: bool,
    /// Only these faults, as STAGE:KILLED (e.g. `accepted:service`, `relaying:hub`); all by
    /// default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the results as CSV.
    #[arg(long, default_value = "target/bench/faults.csv")]
    csv: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Peer {
    /// The holding service side (run by the harness itself).
    #[command(hide = true)]
    ServicePeer(service_peer::PeerArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Peer::ServicePeer(peer)) = args.peer {
        return service_peer::run(peer).await;
    }
    let bin = adit_bench::adit_beside_me()?;
    let mut rows = Vec::new();
    for stage in Stage::ALL {
        for victim in Victim::ALL {
            if stage == Stage::Requested && victim == Victim::Device {
                continue; // no device process yet: the request waits for one
            }
            if !args.only.is_empty() && !args.only.contains(&format!("{stage}:{victim}")) {
                continue;
            }
            eprintln!("fault: kill -9 {victim} at {stage}");
            // A fresh hub each time, on a fresh data directory or a fresh database.
            let database = if args.postgres {
                Some(adit_testkit::TestDatabase::create().await)
            } else {
                None
            };
            let url = database.as_ref().map(|d| d.url.clone());
            let row = match scenario::run(&bin, url.as_deref(), stage, victim).await {
                Ok(row) => row,
                Err(e) => scenario::Row {
                    stage,
                    victim,
                    peers: String::new(),
                    hub: String::new(),
                    fresh_stream: false,
                    verdict: Err(format!("harness: {e:#}")),
                },
            };
            if let Some(db) = database {
                db.drop_database().await;
            }
            eprintln!("  {:?}", row.verdict);
            rows.push(row);
        }
    }
    print_table(&rows);
    write_csv(&args.csv, &rows)?;
    let failed = rows.iter().filter(|r| r.verdict.is_err()).count();
    println!("\nfaults: {} passed, {failed} failed", rows.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn print_table(rows: &[scenario::Row]) {
    println!("| stage | killed | surviving peers | hub | fresh stream | result |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.stage,
            r.victim,
            r.peers,
            r.hub,
            if r.fresh_stream { "ok" } else { "failed" },
            match &r.verdict {
                Ok(()) => "pass".to_string(),
                Err(why) => format!("FAIL: {why}"),
            }
        );
    }
}

fn write_csv(path: &std::path::Path, rows: &[scenario::Row]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::fs::File::create(path)?;
    writeln!(out, "stage,killed,surviving_peers,hub,fresh_stream,result")?;
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for r in rows {
        writeln!(
            out,
            "{},{},{},{},{},{}",
            r.stage,
            r.victim,
            quote(&r.peers),
            quote(&r.hub),
            r.fresh_stream,
            quote(&match &r.verdict {
                Ok(()) => "pass".to_string(),
                Err(why) => why.clone(),
            })
        )?;
    }
    Ok(())
}
