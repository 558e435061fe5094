//! One printed row per scenario (load held, what was tried, outcome, figure), and the latency
//! summaries the rows quote.

use std::time::Duration;

/// One scenario's result line.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario name (what `--only` selects).
    pub scenario: &'static str,
    /// The load held while it ran.
    pub load: String,
    /// What was tried.
    pub tried: String,
    /// What the hub did.
    pub outcome: String,
    /// The measured figure.
    pub figure: String,
    /// False when the outcome is not what the hub promises.
    pub pass: bool,
}

impl Row {
    /// Prints the row as a Markdown table line (to stdout, at once).
    pub fn print(&self) {
        use std::io::Write as _;
        let mark = if self.pass { "ok" } else { "FAIL" };
        println!(
            "| {} | {} | {} | {} | {} | {mark} |",
            self.scenario, self.load, self.tried, self.outcome, self.figure
        );
        let _ = std::io::stdout().flush();
    }
}

/// Prints the table's header.
pub fn print_header() {
    println!("| scenario | load held | tried | outcome | figure | verdict |");
    println!("|---|---|---|---|---|---|");
}

/// Latencies collected by a probe.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
    /// Attempts that failed outright.
    pub failures: u64,
}

impl Latencies {
    /// Adds one successful attempt's latency.
    pub fn add(&mut self, d: Duration) {
        self.samples.push(d);
    }

    /// Adds everything `other` holds.
    pub fn absorb(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.failures += other.failures;
    }

    /// Successful attempts.
    pub fn count(&self) -> usize {
        self.samples.len()
    }

    /// The `q` quantile (0.0 to 1.0) in milliseconds, if any sample.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v = self.samples.clone();
        v.sort();
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        Some(v[i].as_secs_f64() * 1000.0)
    }

    /// `p50/p99 ms (n=.., failed ..)`.
    pub fn summary(&self) -> String {
        match (self.quantile_ms(0.5), self.quantile_ms(0.99)) {
            (Some(p50), Some(p99)) => format!(
                "{p50:.1}/{p99:.1} ms (n={}, failed {})",
                self.count(),
                self.failures
            ),
            _ => format!("no sample (failed {})", self.failures),
        }
    }
}

/// Seconds as `12.3 s`.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
