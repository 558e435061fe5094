//! Child processes whose stderr lines are kept with the instant each arrived (to time when a
//! process noticed something), killed on drop.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// A running child and its timestamped stderr.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    lines: Lines,
}

impl Spawned {
    /// Spawns `cmd` with stdout discarded and stderr collected.
    pub fn start(mut cmd: Command) -> anyhow::Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let lines = Lines::default();
        if let Some(err) = child.stderr.take() {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut v) = lines.lock() {
                        v.push((Instant::now(), line));
                    }
                }
            });
        }
        Ok(Self { child, lines })
    }

    /// When the first stderr line after `since` containing `needle` arrived.
    pub fn line_after(&self, since: Instant, needle: &str) -> Option<(Instant, String)> {
        let lines = self.lines.lock().ok()?;
        lines
            .iter()
            .find(|(t, l)| *t >= since && l.contains(needle))
            .cloned()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `n` stderr lines (for an error message).
    pub fn tail(&self, n: usize) -> String {
        let Ok(lines) = self.lines.lock() else {
            return String::new();
        };
        let from = lines.len().saturating_sub(n);
        lines[from..]
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
