//! What the benchmark binaries share.

use std::path::PathBuf;

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
