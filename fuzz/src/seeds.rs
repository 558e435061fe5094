//! Seeds on request: a target run with `ADIT_FUZZ_SEEDS=DIR` writes its seed inputs into DIR
//! (one file each, named by content hash) and exits, so the seeds come from the same build
//! and the same encoders as the code under test. `fuzz/run` does this before each run.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};

/// Writes `seeds()` into `$ADIT_FUZZ_SEEDS` and exits when that variable is set; returns
/// otherwise.
pub fn write_if_asked(seeds: impl FnOnce() -> Vec<Vec<u8>>) {
    let Some(dir) = std::env::var_os("ADIT_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let seeds = seeds();
    for seed in &seeds {
        let mut h = DefaultHasher::new();
        seed.hash(&mut h);
        let path = dir.join(format!("seed-{:016x}", h.finish()));
        if let Err(e) = std::fs::write(&path, seed) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    eprintln!("wrote {} seeds to {}", seeds.len(), dir.display());
    std::process::exit(0);
}

/// `parts` joined with a newline: the layout of targets that take several text fields.
pub fn lines(parts: &[&str]) -> Vec<u8> {
    parts.join("\n").into_bytes()
}
