//! Builds the web console's page (`web/console/`, from npm) and tells `console/assets.rs`
//! where it is (`ADIT_CONSOLE_DIST`).
//!
//! With Node.js and npm installed, `npm ci` (once) and `npm run build` make
//! `web/console/dist/`. Without them, an existing `dist/` is used as it is; failing that, a
//! stand-in page that says what is missing is embedded, so a fresh clone still builds and
//! the hub runs (everything but the console works).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let web = manifest.join("../../web/console");
    for watched in ["src", "package.json", "package-lock.json", "build.mjs"] {
        println!("cargo:rerun-if-changed={}", web.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=ADIT_SKIP_CONSOLE_BUILD");
    let dist = web.join("dist");
    let built = std::env::var_os("ADIT_SKIP_CONSOLE_BUILD").is_none() && npm_build(&web);
    let folder = if built || dist.join("index.html").is_file() {
        dist
    } else {
        stand_in()
    };
    println!("cargo:rustc-env=ADIT_CONSOLE_DIST={}", folder.display());
}

/// Runs npm in `web`; false (with a warning) when it cannot.
fn npm_build(web: &Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("npm")
            .args(args)
            .current_dir(web)
            .status()
            .map(|s| s.success())
    };
    // --ignore-scripts: no dependency's install script runs inside `cargo build` (esbuild
    // needs none: its binary comes as an optional dependency for the platform).
    if !web.join("node_modules").is_dir() {
        match run(&["ci", "--ignore-scripts", "--no-audit", "--no-fund"]) {
            Ok(true) => {}
            Ok(false) => {
                println!(
                    "cargo:warning=web console: `npm ci` failed; the hub embeds the last built page or a stand-in"
                );
                return false;
            }
            Err(_) => {
                println!(
                    "cargo:warning=web console: npm not found (install Node.js 20 and npm, then build again); the hub embeds a stand-in page"
                );
                return false;
            }
        }
    }
    match run(&["run", "build", "--silent"]) {
        Ok(true) => true,
        _ => {
            println!(
                "cargo:warning=web console: `npm run build` failed; the hub embeds the last built page or a stand-in"
            );
            false
        }
    }
}

/// A page saying the console was not built, in `OUT_DIR`.
fn stand_in() -> PathBuf {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("console");
    std::fs::create_dir_all(&out).expect("OUT_DIR is writable");
    std::fs::write(
        out.join("index.html"),
        "<!doctype html><meta charset=utf-8><title>Adit console</title>\
         <h1>The console's page was not built</h1>\
         <p>This hub was built without Node.js. Install Node.js 20 and npm, then build the hub \
         again (<code>cargo build</code> runs <code>npm ci</code> and <code>npm run build</code> \
         in <code>web/console</code>).</p>",
    )
    .expect("OUT_DIR is writable");
    out
}
