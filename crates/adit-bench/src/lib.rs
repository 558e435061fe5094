//! What the benchmark binaries share.

pub mod cpu;
pub mod probes;
pub mod rathole;
pub mod rss;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The `adit` binary built beside the running benchmark binary (`target/release/adit` for
/// `target/release/adit-faults`). Errors: it cannot be located or was not built, with the
/// command that builds it.
pub fn adit_beside_me() -> anyhow::Result<PathBuf> {
    let bin = std::env::current_exe()?
        .parent()
        .map(|p| p.join("adit"))
        .ok_or_else(|| anyhow::anyhow!("cannot locate the adit binary"))?;
    anyhow::ensure!(
        bin.exists(),
        "build it first: cargo build --release -p adit -p adit-bench ({} missing)",
        bin.display()
    );
    Ok(bin)
}

/// Waits (up to 30 s) until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Hub flags of every benchmark hub: room for the bench's open-stream count (1,000 streams
/// to one device, two HTTPS connections each) and 10,000 WebSocket devices, and a
/// stream-rate limit far above what a hub can do, so the setup-rate rows measure the hub and
/// not its limit.
pub const BENCH_HUB_FLAGS: [&str; 6] = [
    "--max-connections",
    "30000",
    "--max-streams-per-device",
    "10000",
    "--max-stream-rate",
    "1000000",
];
