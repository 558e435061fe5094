//! `adit-holbench`: head-of-line blocking on one multiplexed link (issue 15). 64-byte round
//! trips on one connection while a bulk transfer saturates another, over loopback TCP, in
//! three arrangements measured side by side in one run:
//!
//! - `adit mux`: both connections in one `adit.stream.v1` stream (`adit_transport::
//!   mux_session`: per-connection credit, small writes first), with its default adaptive
//!   receive window and with each fixed window of `--window` (64 KiB and 256 KiB unless told
//!   otherwise);
//! - `separate`: two TCP connections (what a stream per connection gives);
//! - `fifo mux`: both connections in one link through a single first-in first-out queue with
//!   no per-connection credit or scheduling (the model of a shared-window multiplexer without
//!   fairness, `fifo.rs`).
//!
//! Each is measured idle and loaded; the report gives p50 and p99, loaded p99 / idle p99, the
//! bulk transfer's throughput while the round trips ran and, for the Adit mux, the bulk
//! receiver's window at the end. Speed is reported, never asserted.

mod fifo;
mod probe;

use std::time::Duration;

use clap::Parser;

/// One arrangement, idle or loaded, and what each round measured.
type Measured = (probe::Arrangement, bool, Vec<probe::Measured>);

#[derive(Debug, Parser)]
struct Args {
    /// Round trips per measurement.
    #[arg(long, default_value_t = 2000)]
    round_trips: usize,
    /// Rounds (each arrangement once per round, interleaved); medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// A fixed receive window to measure the Adit mux with, in bytes, beside its default
    /// adaptive one; repeat for several (default: 64 KiB and 256 KiB).
    #[arg(long = "window", default_values_t = [64 * 1024, 256 * 1024])]
    windows: Vec<u32>,
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
    let mut arrangements = vec![probe::Arrangement::AditMux];
    arrangements.extend(
        args.windows
            .iter()
            .map(|&w| probe::Arrangement::AditMuxFixed(w)),
    );
    arrangements.extend([probe::Arrangement::Separate, probe::Arrangement::Fifo]);
    let mut results: Vec<Measured> = Vec::new();
    for &a in &arrangements {
        for loaded in [false, true] {
            results.push((a, loaded, Vec::new()));
        }
    }
    for round in 0..args.rounds {
        // A measurement thrown away first, of what comes first: whatever came first in a
        // round after the pause measured 20 µs slower idle (a cold CPU), which flattered its
        // loaded / idle ratio.
        probe::measure(arrangements[0], false, args.round_trips).await?;
        for entry in &mut results {
            let measured = probe::measure(entry.0, entry.1, args.round_trips).await?;
            entry.2.push(measured);
        }
        eprintln!("round {} of {} done", round + 1, args.rounds);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "| arrangement | load | RTT p50 µs | RTT p99 µs | p99 loaded / idle | bulk MB/s | window KiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &a in &arrangements {
        let pick = |loaded: bool| {
            let rounds = results
                .iter()
                .find(|(x, l, _)| *x == a && *l == loaded)
                .map(|(_, _, v)| v.as_slice())
                .unwrap_or_default();
            let bulk = median(rounds.iter().filter_map(|m| m.bulk));
            let windows: Vec<u32> = rounds.iter().filter_map(|m| m.window).collect();
            (
                median(rounds.iter().map(|m| m.p50)),
                median(rounds.iter().map(|m| m.p99)),
                bulk,
                windows,
            )
        };
        let (idle, loaded) = (pick(false), pick(true));
        for (label, (p50, p99, bulk, windows)) in [("idle", &idle), ("bulk beside", &loaded)] {
            let (ratio, bulk) = if label == "idle" {
                (String::new(), String::new())
            } else {
                (
                    format!("{:.1}x", p99 / idle.1.max(f64::MIN_POSITIVE)),
                    format!("{:.0}", bulk / 1e6),
                )
            };
            // Every round's window, so one that grew shows even when the median did not.
            let windows = windows
                .iter()
                .map(|w| (w / 1024).to_string())
                .collect::<Vec<_>>()
                .join(", ");
            println!(
                "| {} | {label} | {p50:.0} | {p99:.0} | {ratio} | {bulk} | {windows} |",
                a.name()
            );
        }
    }
    Ok(())
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
