//! A child process the harness drives: its output lines as they come, its exit, SIGKILL.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running child whose stdout and stderr lines arrive on one channel; killed (SIGKILL) and
/// reaped on drop, so nothing outlives its scenario.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl Peer {
    /// Starts `command` with piped stdio.
    pub fn spawn(command: &mut Command) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, lines) = mpsc::channel();
        // Threads, because std pipes have no read timeout; each ends at the child's exit.
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            std::thread::spawn(move || forward(out, &tx));
        }
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || forward(err, &tx));
        }
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        })
    }

    /// Waits up to `within` for a line containing `needle` (that arrived after `after`);
    /// returns when it arrived.
    pub fn wait_line(&mut self, needle: &str, after: Instant, within: Duration) -> Option<Instant> {
        let hit = |(at, line): &(Instant, String)| *at >= after && line.contains(needle);
        if let Some((at, _)) = self.seen.iter().find(|l| hit(l)) {
            return Some(*at);
        }
        let start = Instant::now();
        loop {
            let left = within.checked_sub(start.elapsed())?;
            let line = self.lines.recv_timeout(left).ok()?;
            let found = hit(&line).then_some(line.0);
            self.seen.push(line);
            if found.is_some() {
                return found;
            }
        }
    }

    /// Writes one line to the child's stdin.
    pub fn send(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("stdin closed"))?;
        stdin.write_all(line.as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        Ok(())
    }

    /// Waits up to `within` for the child to exit; returns its status and when it was seen
    /// gone (polled every 5 ms).
    pub fn wait_exit(&mut self, within: Duration) -> Option<(ExitStatus, Instant)> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, Instant::now()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// The last line the child wrote that starts with `error` or holds "ended", after
    /// collecting what is pending (its final words, for the report).
    pub fn last_error(&mut self) -> String {
        std::thread::sleep(Duration::from_millis(50));
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen
            .iter()
            .rev()
            .map(|(_, l)| l)
            .find(|l| l.starts_with("error") || l.contains("ended") || l.contains("WARN"))
            .map(|l| shorten(l))
            .unwrap_or_default()
    }

    /// SIGKILL, as a crash: no cleanup code of the child runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn forward(from: impl std::io::Read, to: &mpsc::Sender<(Instant, String)>) {
    for line in BufReader::new(from).lines() {
        let Ok(line) = line else { break };
        if to.send((Instant::now(), line)).is_err() {
            break;
        }
    }
}

/// A log line without its timestamp and target, cut to fit a table cell.
fn shorten(line: &str) -> String {
    let text = line
        .split_once(": ")
        .filter(|(head, _)| head.contains("Z "))
        .map_or(line, |(_, rest)| rest);
    text.chars().take(110).collect()
}
