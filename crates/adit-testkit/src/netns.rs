//! Network namespaces that a test or bench makes for itself (`ip netns`), deleted on drop.
//!
//! Names are `adit-PID-N`: a namespace whose process died without dropping it (kill -9) is
//! deleted by the next [`NetNs::create`] on the machine, so none outlives a failed run for
//! long.

use std::ffi::OsStr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const PREFIX: &str = "adit-";

/// Why a namespace or an emulated link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// This machine or user cannot make them (not root, no `/dev/net/tun`, no `ip`).
    #[error("network namespaces unavailable: {0}")]
    Unavailable(String),
    /// An `ip` command failed.
    #[error("`ip {args}` failed: {stderr}")]
    Ip {
        /// The arguments given.
        args: String,
        /// What `ip` said.
        stderr: String,
    },
    /// A TUN device could not be made or driven.
    #[error("TUN device: {0}")]
    Tun(String),
    /// Any other I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Whether this process can make namespaces and TUN devices: `Err` says why not (for a
/// test's skip message).
pub fn netns_support() -> Result<(), NetnsError> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Err(NetnsError::Unavailable(format!(
            "needs root (uid is {uid:?})"
        )));
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err(NetnsError::Unavailable("no /dev/net/tun".into()));
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(NetnsError::Unavailable(
            "no `ip` command (apt-get install iproute2)".into(),
        )),
    }
}

/// Runs `ip ARGS`.
pub(crate) fn ip<I, S>(args: I) -> Result<(), NetnsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = Command::new("ip").args(&args).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(NetnsError::Ip {
        args: args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// A network namespace of this process's own, with its loopback up.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Makes `adit-PID-N` (after deleting namespaces left by dead processes).
    pub fn create() -> Result<Self, NetnsError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        netns_support()?;
        reap_stale();
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(["netns", "add", &name])?;
        let ns = Self { name };
        ns.ip(["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip -n NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS`.
    pub fn ip<I, S>(&self, args: I) -> Result<(), NetnsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec!["-n".into(), self.name.clone().into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        ip(all)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`, which execs it:
    /// the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(["netns", "delete", &self.name]);
    }
}

/// Deletes `adit-PID-N` namespaces whose process is gone.
fn reap_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(["netns", "delete", name]);
        }
    }
}
