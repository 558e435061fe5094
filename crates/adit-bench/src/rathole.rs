//! rathole, the peer the benchmarks compare Adit with: finding its binary and running a
//! server and client on loopback.

use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};

use adit_testkit::free_port;

use crate::wait_listening;

/// A running rathole server and client.
#[derive(Debug)]
pub struct Rathole {
    /// Server, then client.
    pub children: Vec<Child>,
    /// The visitor port of the `bench` service.
    pub port: u16,
    /// The visitor port of the `iperf` service, when there is one.
    pub iperf_port: Option<u16>,
    /// Holds the configuration files for as long as rathole runs.
    _config: tempfile::TempDir,
}

/// `ADIT_BENCH_RATHOLE`, else `target/bench-tools/bin/rathole` (where `bench/run` installs it
/// from crates.io), else `rathole` on the PATH.
pub fn find_rathole() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ADIT_BENCH_RATHOLE") {
        return Some(PathBuf::from(p));
    }
    let beside = std::env::current_exe().ok().and_then(|e| {
        e.parent()?
            .parent()
            .map(|t| t.join("bench-tools/bin/rathole"))
    });
    if let Some(p) = beside.filter(|p| p.exists()) {
        return Some(p);
    }
    Command::new("rathole")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| PathBuf::from("rathole"))
}

/// rathole's transport between its server and client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatholeTransport {
    /// Plain TCP: no encryption.
    Tcp,
    /// The Noise protocol (`Noise_NK_25519_ChaChaPoly_BLAKE2s`, rathole's encrypted default):
    /// the like-for-like peer for Adit's TLS legs.
    Noise,
}

/// `rathole --genkey`: (private, public), or `None` when this build has no Noise support.
fn rathole_keypair(bin: &FsPath) -> Option<(String, String)> {
    let out = Command::new(bin).arg("--genkey").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.ends_with(':'));
    Some((keys.next()?.to_string(), keys.next()?.to_string()))
}

/// rathole server and client, one service per target (`bench`, and `iperf` when given).
/// Returns the processes and the visitor port of each service.
pub fn start_rathole(
    target: u16,
    iperf: Option<u16>,
    transport: RatholeTransport,
) -> anyhow::Result<Option<Rathole>> {
    let Some(bin) = find_rathole() else {
        eprintln!("rathole not found (bench/run installs it): skipping that path");
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let control = free_port();
    let (server_transport, client_transport) = match transport {
        RatholeTransport::Tcp => (String::new(), String::new()),
        RatholeTransport::Noise => {
            let Some((private, public)) = rathole_keypair(&bin) else {
                eprintln!(
                    "this rathole has no Noise support (bench/run builds it with the noise feature): skipping rathole-noise"
                );
                return Ok(None);
            };
            (
                format!(
                    "[server.transport]\ntype = \"noise\"\n[server.transport.noise]\nlocal_private_key = \"{private}\"\n"
                ),
                format!(
                    "[client.transport]\ntype = \"noise\"\n[client.transport.noise]\nremote_public_key = \"{public}\"\n"
                ),
            )
        }
    };
    let services: Vec<(&str, u16, u16)> = std::iter::once(("bench", target, free_port()))
        .chain(iperf.map(|p| ("iperf", p, free_port())))
        .collect();
    let mut server = format!("[server]\nbind_addr = \"127.0.0.1:{control}\"\n{server_transport}");
    let mut client = format!("[client]\nremote_addr = \"127.0.0.1:{control}\"\n{client_transport}");
    for (name, to, visitor) in &services {
        server.push_str(&format!(
            "[server.services.{name}]\ntoken = \"adit-bench\"\nbind_addr = \"127.0.0.1:{visitor}\"\n"
        ));
        client.push_str(&format!(
            "[client.services.{name}]\ntoken = \"adit-bench\"\nlocal_addr = \"127.0.0.1:{to}\"\n"
        ));
    }
    let (server_toml, client_toml) = (
        dir.path().join("server.toml"),
        dir.path().join("client.toml"),
    );
    std::fs::write(&server_toml, server)?;
    std::fs::write(&client_toml, client)?;
    let quiet = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("RUST_LOG", "error");
    };
    let mut s = Command::new(&bin);
    s.arg("--server").arg(&server_toml);
    quiet(&mut s);
    let s = s.spawn()?;
    wait_listening(control)?;
    let mut c = Command::new(&bin);
    c.arg("--client").arg(&client_toml);
    quiet(&mut c);
    let c = c.spawn()?;
    for (_, _, visitor) in &services {
        wait_listening(*visitor)?;
    }
    Ok(Some(Rathole {
        children: vec![s, c],
        port: services[0].2,
        iperf_port: services.get(1).map(|s| s.2),
        _config: dir,
    }))
}
