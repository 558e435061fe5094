//! The figures: samples per metric and case, their medians as Markdown tables, and a CSV.

use crate::idle_fleet;

/// One case's samples of one metric.
type CaseSamples = (String, Vec<f64>);

/// Samples by metric, then by case, in the order they were first recorded.
#[derive(Default)]
pub struct Samples {
    rows: Vec<(String, Vec<CaseSamples>)>,
}

impl Samples {
    pub fn record(&mut self, metric: &str, case: &str, value: f64) {
        let at = match self.rows.iter().position(|(m, _)| m == metric) {
            Some(i) => i,
            None => {
                self.rows.push((metric.to_string(), Vec::new()));
                self.rows.len() - 1
            }
        };
        let cases = &mut self.rows[at].1;
        match cases.iter_mut().find(|(c, _)| c == case) {
            Some((_, v)) => v.push(value),
            None => cases.push((case.to_string(), vec![value])),
        }
    }

    fn median(&self, metric: &str, case: &str) -> Option<(f64, usize)> {
        let (_, cases) = self.rows.iter().find(|(m, _)| m == metric)?;
        let (_, v) = cases.iter().find(|(c, _)| c == case)?;
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        Some((*v.get(v.len() / 2)?, v.len()))
    }

    /// Markdown: one row per metric, one column per case in `cases` order (medians).
    pub fn table(&self, cases: &[&str]) -> String {
        let mut t = format!("| metric (median) | {} |\n|---|", cases.join(" | "));
        t.push_str(&"---|".repeat(cases.len()));
        t.push('\n');
        for (metric, _) in &self.rows {
            t.push_str(&format!("| {metric} |"));
            for case in cases {
                match self.median(metric, case) {
                    Some((x, _)) => t.push_str(&format!(" {x:.1} |")),
                    None => t.push_str(" |"),
                }
            }
            t.push('\n');
        }
        t
    }

    /// CSV lines `metric,case,median,samples` (no header).
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for (metric, cases) in &self.rows {
            for (case, _) in cases {
                if let Some((x, n)) = self.median(metric, case) {
                    out.push_str(&format!("{metric},{case},{x:.3},{n}\n"));
                }
            }
        }
        out
    }
}

/// Markdown: one row per idle run (`label`, outcome).
pub fn idle_table(runs: &[(&str, idle_fleet::Outcome)]) -> String {
    let mut t = String::from(
        "| idle devices | connected in s | devices/s | held per node | hub RSS KiB/device per node | HAProxy KiB/device |\n|---|---|---|---|---|---|\n",
    );
    for (label, o) in runs {
        let held: Vec<String> = o
            .nodes
            .iter()
            .map(|s| format!("{:.0}", s.devices))
            .collect();
        let kib: Vec<String> = o
            .nodes
            .iter()
            .map(|s| format!("{:.1}", s.kib_per_device))
            .collect();
        t.push_str(&format!(
            "| {} on {label} | {:.2} | {:.0} | {} | {} | {} |\n",
            o.devices,
            o.connect_secs,
            o.devices as f64 / o.connect_secs.max(1e-9),
            held.join(" / "),
            kib.join(" / "),
            o.haproxy_kib_per_device
                .map(|k| format!("{k:.1}"))
                .unwrap_or_default(),
        ));
    }
    t
}

/// CSV lines for the idle runs, in the streams CSV's shape (case = the run's label).
pub fn idle_csv(runs: &[(&str, idle_fleet::Outcome)]) -> String {
    let mut out = String::new();
    for (label, o) in runs {
        out.push_str(&format!(
            "idle connect s ({}),{label},{:.3},1\n",
            o.devices, o.connect_secs
        ));
        for (i, s) in o.nodes.iter().enumerate() {
            out.push_str(&format!(
                "idle devices held node {i},{label},{:.0},1\nhub RSS KiB/idle device node {i},{label},{:.3},1\n",
                s.devices, s.kib_per_device
            ));
        }
        if let Some(k) = o.haproxy_kib_per_device {
            out.push_str(&format!("HAProxy RSS KiB/idle device,{label},{k:.3},1\n"));
        }
    }
    out
}
