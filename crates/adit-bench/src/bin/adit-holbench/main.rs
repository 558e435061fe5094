//! `adit-holbench`: head-of-line blocking on one multiplexed link (issue 15). 64-byte round
//! trips on one connection while a bulk transfer saturates another, over loopback TCP, in
//! three arrangements measured side by side in one run:
//!
//! - `adit mux`: both connections in one `adit.stream.v1` stream (`adit_transport::
//!   mux_session`: per-connection credit, small writes first);
//! - `separate`: two TCP connections (what a stream per connection gives);
//! - `fifo mux`: both connections in one link through a single first-in first-out queue with
//!   no per-connection credit or scheduling (the model of a shared-window multiplexer without
//!   fairness, `fifo.rs`).
//!
//! Each is measured idle and loaded; the report gives p50 and p99 and loaded p99 / idle p99.
//! Speed is reported, never asserted.

mod fifo;
mod probe;

use std::time::Duration;

use clap::Parser;

/// One arrangement, idle or loaded, and its (p50, p99) per round in µs.
type Measured = (probe::Arrangement, bool, Vec<(f64, f64)>);

#[derive(Debug, Parser)]
struct Args {
    /// Round trips per measurement.
    #[arg(long, default_value_t = 2000)]
    round_trips: usize,
    /// Rounds (each arrangement once per round, interleaved); medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Receive window per connection of the Adit mux, in bytes (its default: 256 KiB).
    #[arg(long, default_value_t = 256 * 1024)]
    window: u32,
    /// A quick run that checks the harness.
    #[arg(long)]
    smoke: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.round_trips = 200;
        args.rounds = 1;
    }
    let arrangements = [
        probe::Arrangement::AditMux,
        probe::Arrangement::Separate,
        probe::Arrangement::Fifo,
    ];
    let mut results: Vec<Measured> = Vec::new();
    for a in arrangements {
        for loaded in [false, true] {
            results.push((a, loaded, Vec::new()));
        }
    }
    for round in 0..args.rounds {
        for entry in &mut results {
            let (p50, p99) =
                probe::measure(entry.0, entry.1, args.round_trips, args.window).await?;
            entry.2.push((p50, p99));
        }
        eprintln!("round {} of {} done", round + 1, args.rounds);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("| arrangement | load | RTT p50 µs | RTT p99 µs | p99 loaded / idle |");
    println!("|---|---|---|---|---|");
    for a in arrangements {
        let pick = |loaded: bool| {
            results
                .iter()
                .find(|(x, l, _)| *x == a && *l == loaded)
                .map(|(_, _, v)| (median(v.iter().map(|p| p.0)), median(v.iter().map(|p| p.1))))
                .unwrap_or((0.0, 0.0))
        };
        let (idle, loaded) = (pick(false), pick(true));
        for (label, (p50, p99)) in [("idle", idle), ("bulk beside", loaded)] {
            let ratio = if label == "idle" {
                String::new()
            } else {
                format!("{:.1}x", p99 / idle.1.max(f64::MIN_POSITIVE))
            };
            println!("| {} | {label} | {p50:.0} | {p99:.0} | {ratio} |", a.name());
        }
    }
    Ok(())
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
