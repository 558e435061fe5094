//! A network namespace joined to this one by a veth pair: the simplest real link, one a test
//! can take down and bring back (a device's Wi-Fi dropping, a cable pulled). Unlike
//! [`crate::emulated_link::EmulatedLink`] it adds no delay or loss; packets cross the kernel's
//! own veth driver.
//!
//! Addresses: a `/30` of 10.213.0.0/16 per link, `.1` on this side and `.2` in the namespace,
//! chosen from the process id and a counter, so links of tests running in parallel (each in
//! its own process under nextest) do not meet. The namespace's default route goes through
//! this side. Both ends are deleted on drop (the
//! namespace's end goes with the namespace; this side's with its peer).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::netns::{NetNs, NetnsError, ip};

/// A namespace behind a veth pair.
#[derive(Debug)]
pub struct VethLink {
    host_if: String,
    /// The link's `/30` within 10.213.0.0/16 (0..16384).
    block: u16,
    ns: NetNs,
}

impl VethLink {
    /// Makes the namespace, the pair and the addresses, both ends up.
    ///
    /// # Errors
    /// [`NetnsError`] when namespaces cannot be made here (see [`crate::netns::netns_support`])
    /// or an `ip` command fails.
    pub fn create() -> Result<Self, NetnsError> {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let ns = NetNs::create()?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let block =
            u16::try_from((pid.wrapping_mul(8).wrapping_add(u32::from(n))) % 16_384).unwrap_or(0);
        let host_if = format!("av{}-{n}", pid % 100_000);
        let link = Self { host_if, block, ns };
        ip([
            "link",
            "add",
            &link.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            link.ns.name(),
        ])?;
        ip([
            "addr",
            "add",
            &format!("{}/30", link.host_addr()),
            "dev",
            &link.host_if,
        ])?;
        ip(["link", "set", &link.host_if, "up"])?;
        link.ns.ip([
            "addr",
            "add",
            &format!("{}/30", link.ns_addr()),
            "dev",
            "eth0",
        ])?;
        link.up()?;
        Ok(link)
    }

    /// This side's address.
    pub fn host_addr(&self) -> Ipv4Addr {
        self.addr(1)
    }

    /// The namespace's address.
    pub fn ns_addr(&self) -> Ipv4Addr {
        self.addr(2)
    }

    fn addr(&self, host: u8) -> Ipv4Addr {
        let [hi, lo] = (self.block * 4).to_be_bytes();
        Ipv4Addr::new(10, 213, hi, lo + host)
    }

    /// The namespace, for running programs in it.
    pub fn netns(&self) -> &NetNs {
        &self.ns
    }

    /// Takes the namespace's end down, as a device whose Wi-Fi drops: from now on no packet
    /// crosses; programs in the namespace get "network unreachable" for new connections, and
    /// this side is not told (its end only loses its carrier, and keeps its address).
    ///
    /// # Errors
    /// [`NetnsError::Ip`] when `ip link set` fails.
    pub fn down(&self) -> Result<(), NetnsError> {
        self.ns.ip(["link", "set", "eth0", "down"])
    }

    /// Brings the namespace's end back, with its default route through this side (so the
    /// namespace reaches every address of this namespace, other links' included).
    ///
    /// # Errors
    /// [`NetnsError::Ip`] when `ip link set` or `ip route` fails.
    pub fn up(&self) -> Result<(), NetnsError> {
        self.ns.ip(["link", "set", "eth0", "up"])?;
        self.ns.ip([
            "route",
            "replace",
            "default",
            "via",
            &self.host_addr().to_string(),
        ])
    }
}

impl Drop for VethLink {
    fn drop(&mut self) {
        let _ = ip(["link", "delete", &self.host_if]);
    }
}
