//! The figures as a Markdown table (stdout) and a CSV, and failures by reason.

use std::fmt::Write as _;
use std::time::Duration;

use crate::api_probe::Window;
use crate::phase::{ApiWindows, Outcome};
use crate::stats::Latencies;

type Cell = Box<dyn Fn(&Outcome) -> String>;

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2}", d.as_secs_f64()))
        .unwrap_or_else(|| "not all".into())
}

fn ms(l: &Latencies, q: f64) -> String {
    l.ms(q).map(|v| format!("{v:.1}")).unwrap_or_default()
}

fn fraction_secs(l: &Latencies, q: f64, devices: usize) -> String {
    // Time by which q of the whole fleet (not of those that made it) was back.
    let needed = (q * devices as f64).ceil() as usize;
    if l.len() < needed || devices == 0 {
        return "not reached".into();
    }
    let q_of_arrived = needed as f64 / l.len() as f64;
    l.secs(q_of_arrived)
        .map(|v| format!("{v:.2}"))
        .unwrap_or_default()
}

fn api_cell(pick: fn(&Outcome) -> &ApiWindows, query: fn(&ApiWindows) -> &Window) -> Cell {
    Box::new(move |o| {
        let w = query(pick(o));
        format!(
            "{} / {} (n={}, failed {})",
            ms(&w.ok, 0.5),
            ms(&w.ok, 0.99),
            w.ok.len(),
            w.failed
        )
    })
}

fn rows() -> Vec<(&'static str, Cell)> {
    vec![
        ("devices", Box::new(|o| o.devices.to_string())),
        (
            "connected (first storm)",
            Box::new(|o| o.connect.connected.to_string()),
        ),
        (
            "time to all connected, s",
            Box::new(|o| secs(o.connect.all_after)),
        ),
        (
            "connect latency p50 ms",
            Box::new(|o| ms(&o.connect.latencies, 0.5)),
        ),
        (
            "connect latency p95 ms",
            Box::new(|o| ms(&o.connect.latencies, 0.95)),
        ),
        (
            "connect latency p99 ms",
            Box::new(|o| ms(&o.connect.latencies, 0.99)),
        ),
        (
            "failed attempts (first storm)",
            Box::new(|o| o.connect.failures.values().sum::<u64>().to_string()),
        ),
        (
            "kill -9 to hub listening again, s",
            Box::new(|o| format!("{:.2}", o.restart.as_secs_f64())),
        ),
        (
            "99 % back after kill -9, s",
            Box::new(|o| fraction_secs(&o.reconnect.latencies, 0.99, o.devices)),
        ),
        (
            "100 % back after kill -9, s",
            Box::new(|o| secs(o.reconnect.all_after)),
        ),
        (
            "API GET /devices/{id} p50 / p99 ms, quiet",
            api_cell(|o| &o.api_quiet, |w| &w.device),
        ),
        (
            "API GET /devices/{id} p50 / p99 ms, connect storm",
            api_cell(|o| &o.api_connect, |w| &w.device),
        ),
        (
            "API GET /devices/{id} p50 / p99 ms, reconnect storm",
            api_cell(|o| &o.api_reconnect, |w| &w.device),
        ),
        (
            "API GET /devices?top=100 p50 / p99 ms, quiet",
            api_cell(|o| &o.api_quiet, |w| &w.list),
        ),
        (
            "API GET /devices?top=100 p50 / p99 ms, connect storm",
            api_cell(|o| &o.api_connect, |w| &w.list),
        ),
        (
            "API GET /devices?top=100 p50 / p99 ms, reconnect storm",
            api_cell(|o| &o.api_reconnect, |w| &w.list),
        ),
    ]
}

/// The table, one column per transport.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut out = String::from("| metric |");
    for o in outcomes {
        let _ = write!(out, " {} |", o.transport);
    }
    out.push_str("\n|---|");
    for _ in outcomes {
        out.push_str("---|");
    }
    out.push('\n');
    for (name, cell) in rows() {
        let _ = write!(out, "| {name} |");
        for o in outcomes {
            let _ = write!(out, " {} |", cell(o));
        }
        out.push('\n');
    }
    out
}

/// Failed attempts by reason, per transport and storm.
pub fn failures(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        for (storm, failures) in [
            ("first storm", &o.connect.failures),
            ("after kill -9", &o.reconnect.failures),
        ] {
            let _ = writeln!(out, "{} {storm}: failed attempts by reason", o.transport);
            if failures.is_empty() {
                let _ = writeln!(out, "  (none)");
            }
            for (reason, count) in failures {
                let _ = writeln!(out, "  {count:>6}  {reason}");
            }
        }
    }
    out
}

/// `metric,transport,value` lines.
pub fn csv(outcomes: &[Outcome]) -> String {
    let mut out = String::from("metric,transport,value\n");
    for (name, cell) in rows() {
        for o in outcomes {
            let _ = writeln!(
                out,
                "\"{name}\",{},\"{}\"",
                o.transport,
                cell(o).replace('"', "'")
            );
        }
    }
    out
}

/// The hub's warnings and errors, counted by message (timestamps and fields left out).
pub fn hub_warnings(log: &str) -> String {
    let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
    for line in log.lines() {
        let Some(at) = line.find(" WARN ").or_else(|| line.find(" ERROR ")) else {
            continue;
        };
        // `LEVEL target: message key=value ...`: keep level, target and message.
        let rest = line[at..].trim_start();
        let message: Vec<&str> = rest.split(' ').take_while(|w| !w.contains('=')).collect();
        *kinds.entry(message.join(" ")).or_default() += 1;
    }
    let mut out = format!("hub warnings and errors: {}\n", kinds.values().sum::<u64>());
    for (kind, count) in kinds {
        let _ = writeln!(out, "  {count:>6}  {kind}");
    }
    out
}
