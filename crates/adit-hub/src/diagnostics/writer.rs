//! The one task that writes the log: appends lines, rotates by size, drains on shutdown.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use std::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{DiagnosticsConfig, LOG_FILE};

/// The current file and its size.
pub struct LogFile {
    dir: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max: u64,
    keep: usize,
}

impl LogFile {
    pub fn open(config: &DiagnosticsConfig) -> std::io::Result<Self> {
        let path = config.dir.join(LOG_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir: config.dir.clone(),
            out: BufWriter::new(file),
            size,
            max: config.max_file_bytes,
            keep: config.keep_files,
        })
    }

    fn write(&mut self, line: &str) -> std::io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 + 1 > self.max {
            self.rotate()?;
        }
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.size += line.len() as u64 + 1;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let name = |n: usize| self.dir.join(format!("{LOG_FILE}.{n}"));
        let _ = std::fs::remove_file(name(self.keep));
        for n in (1..self.keep).rev() {
            let _ = std::fs::rename(name(n), name(n + 1));
        }
        std::fs::rename(self.dir.join(LOG_FILE), name(1))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(LOG_FILE))?;
        self.out = BufWriter::new(file);
        self.size = 0;
        Ok(())
    }
}

/// How often a quiet writer looks at its shutdown token.
const POLL: Duration = Duration::from_millis(100);

/// Writes until `shutdown`, then drains what is queued and stops. Blocking: runs on its own
/// thread, so a slow disk or a stalled stdout reader costs only queued records (counted as
/// dropped by the senders), never a runtime thread.
pub fn run(
    mut file: LogFile,
    rx: mpsc::Receiver<String>,
    stdout: bool,
    shutdown: &CancellationToken,
) {
    let mut out = std::io::stdout();
    loop {
        let line = match rx.recv_timeout(POLL) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) if shutdown.is_cancelled() => break,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        // Take what else is queued, then flush once: batches under load, promptness when idle.
        for line in std::iter::once(line).chain(rx.try_iter()) {
            if stdout {
                let _ = writeln!(out, "{line}");
            }
            if let Err(e) = file.write(&line) {
                tracing::error!(error = %e, "cannot write the diagnostics log");
            }
        }
        if let Err(e) = file.out.flush() {
            tracing::error!(error = %e, "cannot flush the diagnostics log");
        }
        if stdout {
            let _ = out.flush();
        }
    }
    for line in rx.try_iter() {
        let _ = file.write(&line);
    }
    let _ = file.out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Filter, query};

    #[test]
    fn rotates_by_size_and_queries_read_oldest_first() {
        let dir = tempfile::tempdir().expect("dir");
        let config = DiagnosticsConfig {
            dir: dir.path().to_path_buf(),
            max_file_bytes: 200,
            keep_files: 3,
            stdout: false,
            resource_id: "r".into(),
            location: "l".into(),
        };
        let mut file = LogFile::open(&config).expect("open");
        for i in 0..40 {
            let line = format!(
                r#"{{"time":"2026-01-01T00:00:{i:02}.000Z","category":"DeviceStreams","n":{i}}}"#
            );
            file.write(&line).expect("write");
        }
        file.out.flush().expect("flush");
        assert!(dir.path().join("diagnostics.jsonl.3").exists());
        assert!(
            !dir.path().join("diagnostics.jsonl.4").exists(),
            "only keep_files rotated files"
        );
        let all = query(dir.path(), &Filter::default()).expect("query");
        let ns: Vec<u64> = all.iter().filter_map(|r| r["n"].as_u64()).collect();
        assert!(
            !ns.is_empty() && ns.windows(2).all(|w| w[0] < w[1]),
            "oldest first: {ns:?}"
        );
        assert_eq!(ns.last(), Some(&39));
        let newest = query(
            dir.path(),
            &Filter {
                limit: 2,
                ..Filter::default()
            },
        )
        .expect("query");
        assert_eq!(
            newest
                .iter()
                .filter_map(|r| r["n"].as_u64())
                .collect::<Vec<_>>(),
            vec![38, 39]
        );
        let window = Filter {
            since: Some("2026-01-01T00:00:38.000Z".into()),
            until: Some("2026-01-01T00:00:39.000Z".into()),
            ..Filter::default()
        };
        assert_eq!(query(dir.path(), &window).expect("query").len(), 1);
    }
}
