//! The soak's report: the traffic mix, each curve's figures and verdict, the traffic totals,
//! and the state after the traffic stopped, as Markdown (printed and written to a file).

use std::fmt::Write as _;

use crate::args::Args;
use crate::sampler::Sample;
use crate::tally::Tally;
use crate::verdict::{Curve, Phases, TOLERANCE_PCT};

/// The report and whether the soak passed.
#[derive(Debug)]
pub struct Report {
    /// Markdown.
    pub text: String,
    /// Every curve flat, no byte lost, no stream or flap failed.
    pub passed: bool,
}

/// Builds the report.
pub fn build(
    args: &Args,
    hub: &std::path::Path,
    curves: &[Curve],
    tally: &Tally,
    after: Option<&Sample>,
    phases: Phases,
) -> Report {
    let mut out = String::new();
    let minutes = args.duration.as_secs_f64() / 60.0;
    let _ = writeln!(
        out,
        "## Soak: {minutes:.0} min of mixed traffic on one hub\n"
    );
    let _ = writeln!(out, "Hub: `{}`.\n", hub.display());
    let _ = writeln!(
        out,
        "Traffic: an interactive stream (64-byte echoes every {} ms, {} of them) opened every \
         {:.1} s; a bulk stream ({} MiB each way) every {:.1} s; round-robin over {} device-SDK \
         devices and {} `adit device-proxy` devices; {} devices flapping ({:.0} s up, {:.0} s \
         down). Sampled every {:.0} s.\n",
        args.message_every.as_millis(),
        args.interactive_messages,
        args.interactive_every.as_secs_f64(),
        args.bulk_mib,
        args.bulk_every.as_secs_f64(),
        args.sdk_devices,
        args.proxy_devices,
        args.flapping_devices,
        args.flap_up.as_secs_f64(),
        args.flap_down.as_secs_f64(),
        args.sample_every.as_secs_f64(),
    );
    let (w0, w1) = phases.first_window();
    let (l0, l1) = phases.last_window();
    let _ = writeln!(
        out,
        "Warm-up: the first {:.0} s. Flat: the mean of the last window ({l0:.0}-{l1:.0} s) within \
         {TOLERANCE_PCT} % of the mean of the first window after warm-up ({w0:.0}-{w1:.0} s).\n",
        phases.warm_up_end()
    );
    let _ = writeln!(
        out,
        "| curve | start | end | max | first window mean | last window mean | change | slope after warm-up | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for c in curves {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:+.2} % | {:+.2} %/h | {} |",
            c.name,
            c.start,
            c.end,
            c.max,
            c.first_mean,
            c.last_mean,
            c.change_pct,
            c.slope_pct_per_hour,
            if c.flat { "flat" } else { "NOT FLAT" }
        );
    }
    let get = Tally::get;
    let _ = writeln!(out, "\n| traffic | total |\n|---|---|");
    for (what, n) in [
        ("streams opened", get(&tally.opened)),
        ("  interactive", get(&tally.interactive)),
        ("  bulk", get(&tally.bulk)),
        ("streams verified byte-identical", get(&tally.verified)),
        ("streams failed", get(&tally.failed)),
        ("bytes sent (service to device)", get(&tally.sent)),
        ("bytes echoed back identical", get(&tally.echoed)),
        ("bytes lost", get(&tally.lost)),
        ("device flaps", get(&tally.flaps)),
        ("flaps that failed to reconnect", get(&tally.flap_failures)),
    ] {
        let _ = writeln!(out, "| {what} | {n} |");
    }
    if let Some(a) = after {
        let _ = writeln!(
            out,
            "\nAfter the traffic and the flapping stopped ({:.0} s): RSS {:.0} KiB ({:.0} KiB \
             anonymous), {:.0} open fds, {:.0} alive tasks, {:.0} active streams, {:.0} connected devices.",
            a.t, a.rss_kib, a.anon_kib, a.fds, a.tasks, a.active_streams, a.devices
        );
    }
    let flat = curves.iter().all(|c| c.flat);
    let clean = get(&tally.lost) == 0
        && get(&tally.failed) == 0
        && get(&tally.flap_failures) == 0
        && get(&tally.opened) > 0;
    let passed = flat && clean;
    let _ = writeln!(
        out,
        "\nVerdict: {} (curves {}, traffic {}).",
        if passed { "PASS" } else { "FAIL" },
        if flat { "flat" } else { "not all flat" },
        if clean {
            "clean: no byte lost, no stream or flap failed"
        } else {
            "NOT clean"
        }
    );
    Report { text: out, passed }
}
