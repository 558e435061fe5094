//! Bulk throughput with iperf3 (Debian's package), one stream and four in parallel, in both
//! directions, through every path.

use std::process::{Child, Command, Stdio};

use adit_testkit::free_port;

/// An `iperf3 -s` kept running for the whole bench.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    /// Starts the server, or says why not (iperf3 missing) and returns `None`.
    pub fn start() -> anyhow::Result<Option<Self>> {
        let present = Command::new("iperf3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            eprintln!("iperf3 not found (apt-get install iperf3): skipping the iperf3 rows");
            return Ok(None);
        }
        let port = free_port();
        let child = Command::new("iperf3")
            .args(["-s", "-B", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Dropped (and so killed) if it never listens.
        let server = Self { child, port };
        adit_bench::wait_listening(port)?;
        Ok(Some(server))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One iperf3 test shape.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    pub streams: u8,
    /// Server to client (`-R`).
    pub reverse: bool,
}

impl Test {
    /// The four shapes the bench runs.
    pub const ALL: [Test; 4] = [
        Test {
            streams: 1,
            reverse: false,
        },
        Test {
            streams: 1,
            reverse: true,
        },
        Test {
            streams: 4,
            reverse: false,
        },
        Test {
            streams: 4,
            reverse: true,
        },
    ];

    /// Row label in the table.
    pub fn label(self) -> String {
        format!(
            "iperf3 {}x {} MB/s",
            self.streams,
            if self.reverse { "down" } else { "up" }
        )
    }
}

/// Runs one test for `seconds` through `port`; MB/s received.
pub async fn run(port: u16, test: Test, seconds: u32) -> anyhow::Result<f64> {
    let mut cmd = tokio::process::Command::new("iperf3");
    cmd.args([
        "-c",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        &seconds.to_string(),
        "-P",
        &test.streams.to_string(),
        "-J",
    ]);
    if test.reverse {
        cmd.arg("-R");
    }
    let out = cmd.stderr(Stdio::null()).output().await?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    if let Some(e) = report["error"].as_str() {
        anyhow::bail!("iperf3: {e}");
    }
    let bits = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("iperf3 printed no end.sum_received"))?;
    Ok(bits / 8.0 / 1e6)
}
