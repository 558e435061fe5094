//! A WAN link emulated in user space: this machine's kernel has no `sch_netem`, so `tc netem`
//! cannot add delay or loss. Instead the "device side" is a network namespace of its own
//! ([`NetNs`]) joined to this (the hub's) namespace by two TUN devices, and a forwarder
//! thread carries every IP packet between them, after a one-way delay, dropping each with a
//! given probability, or every one while the link is blackholed (a cable cut: packets vanish,
//! nobody is told).
//!
//! Addresses come from 198.18.0.0/15, the range set aside for benchmarks (RFC 2544): the hub
//! side is `198.18.X.Y`, the device side `198.19.X.Y`, point to point, unique per link so
//! several links (tests in parallel) coexist.

use std::hash::Hasher as _;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tun::Tun;
use tokio_util::sync::CancellationToken;

use crate::netns::{NetNs, NetnsError, ip};

/// Largest IP packet read from a TUN device (its MTU is 1500; room for more).
const MAX_PACKET: usize = 65_536;
/// Packets that may wait in one direction's delay line; more are dropped (a router's tail drop).
const QUEUE_PACKETS: usize = 16_384;
/// The MTU of both ends: an Ethernet-sized path, as across the Internet.
const MTU: &str = "1500";

/// What the link does to packets; every field can change while it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkProfile {
    /// Delay each way (half the added round-trip time).
    pub one_way_delay: Duration,
    /// Probability that a packet is dropped, applied to each direction on its own (0.0-1.0).
    pub loss: f64,
}

impl LinkProfile {
    /// A path with this round-trip time and loss (each way).
    pub fn new(rtt: Duration, loss: f64) -> Self {
        Self {
            one_way_delay: rtt / 2,
            loss,
        }
    }
}

/// Packet counts since the link started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets delivered to the other side.
    pub forwarded: u64,
    /// Packets dropped by the loss probability, the blackhole or a full delay line.
    pub dropped: u64,
}

/// The knobs, shared with the forwarder.
#[derive(Debug, Default)]
struct Control {
    delay_us: AtomicU64,
    /// Loss probability in parts per million.
    loss_ppm: AtomicU32,
    blackholed: AtomicBool,
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

impl Control {
    fn set(&self, p: LinkProfile) {
        let us = u64::try_from(p.one_way_delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_us.store(us, Ordering::Relaxed);
        let ppm = (p.loss.clamp(0.0, 1.0) * 1e6).round() as u32;
        self.loss_ppm.store(ppm, Ordering::Relaxed);
    }

    fn drops(&self, rng: &mut StdRng) -> bool {
        if self.blackholed.load(Ordering::Relaxed) {
            return true;
        }
        let ppm = self.loss_ppm.load(Ordering::Relaxed);
        ppm > 0 && rng.random_range(0..1_000_000) < ppm
    }
}

/// A running emulated link and the device-side namespace behind it. Dropping it stops the
/// forwarder (its TUN devices vanish with their file descriptors) and deletes the namespace.
#[derive(Debug)]
pub struct EmulatedLink {
    control: Arc<Control>,
    hub_addr: Ipv4Addr,
    device_addr: Ipv4Addr,
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    // Declared last: dropped after the forwarder has stopped.
    netns: NetNs,
}

impl EmulatedLink {
    /// Makes the namespace, the TUN pair and the forwarder, with `profile` in force.
    pub fn start(profile: LinkProfile) -> Result<Self, NetnsError> {
        let netns = NetNs::create()?;
        let control = Arc::new(Control::default());
        control.set(profile);
        let cancel = CancellationToken::new();
        let (names_tx, names_rx) = std::sync::mpsc::channel();
        let thread = {
            let (control, cancel) = (control.clone(), cancel.clone());
            std::thread::Builder::new()
                .name("emulated-link".into())
                .spawn(move || forwarder(control, cancel, names_tx))?
        };
        let mut link = Self {
            control,
            hub_addr: Ipv4Addr::UNSPECIFIED,
            device_addr: Ipv4Addr::UNSPECIFIED,
            cancel,
            thread: Some(thread),
            netns,
        };
        let (hub_tun, device_tun) = names_rx
            .recv()
            .map_err(|_| NetnsError::Tun("the forwarder thread ended".into()))??;
        link.configure(&hub_tun, &device_tun)?;
        Ok(link)
    }

    /// Moves one TUN device into the namespace and numbers both ends.
    fn configure(&mut self, hub_tun: &str, device_tun: &str) -> Result<(), NetnsError> {
        ip(["link", "set", device_tun, "netns", self.netns.name()])?;
        self.netns
            .ip(["link", "set", device_tun, "name", "wan0", "mtu", MTU, "up"])?;
        ip(["link", "set", hub_tun, "mtu", MTU, "up"])?;
        // A pair of addresses no other link holds: start from a hash of the namespace's name
        // (process and link number), step on while the hub-side address is taken.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        hasher.write(self.netns.name().as_bytes());
        let seed = hasher.finish() as u32;
        let mut last = None;
        for attempt in 0..64u32 {
            let n = (seed.wrapping_add(attempt.wrapping_mul(104_729)) % 65_000) + 1;
            let [_, _, x, y] = n.to_be_bytes();
            let (hub, device) = (Ipv4Addr::new(198, 18, x, y), Ipv4Addr::new(198, 19, x, y));
            let (h, d) = (hub.to_string(), device.to_string());
            if address_taken(&h) {
                continue;
            }
            match ip(["addr", "add", &h, "peer", &d, "dev", hub_tun]) {
                Ok(()) => {
                    self.netns
                        .ip(["addr", "add", &d, "peer", &h, "dev", "wan0"])?;
                    self.hub_addr = hub;
                    self.device_addr = device;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| NetnsError::Tun("no free address pair".into())))
    }

    /// The hub side's address (in this process's namespace): what a hub listens on.
    pub fn hub_addr(&self) -> Ipv4Addr {
        self.hub_addr
    }

    /// The device side's address (in [`EmulatedLink::netns`]).
    pub fn device_addr(&self) -> Ipv4Addr {
        self.device_addr
    }

    /// The device side's namespace: run device processes with [`NetNs::command`].
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    /// Changes delay and loss from the next packet on.
    pub fn set_profile(&self, profile: LinkProfile) {
        self.control.set(profile);
    }

    /// Drops every packet both ways (`true`), or carries them again (`false`). Packets in the
    /// delay line when the link is cut are lost too.
    pub fn set_blackhole(&self, on: bool) {
        self.control.blackholed.store(on, Ordering::Relaxed);
    }

    /// Packets forwarded and dropped so far.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            forwarded: self.control.forwarded.load(Ordering::Relaxed),
            dropped: self.control.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Drop for EmulatedLink {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether an interface of this namespace holds `addr` already (another link's hub side).
fn address_taken(addr: &str) -> bool {
    Command::new("ip")
        .args(["-o", "addr", "show", "to", addr])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty())
}

type Names = Result<(String, String), NetnsError>;

/// The forwarder thread: makes both TUN devices, reports their names, carries packets both
/// ways until cancelled.
fn forwarder(
    control: Arc<Control>,
    cancel: CancellationToken,
    names: std::sync::mpsc::Sender<Names>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = names.send(Err(e.into()));
            return;
        }
    };
    runtime.block_on(async move {
        let make = || {
            Tun::builder()
                .build()
                .map_err(|e| NetnsError::Tun(e.to_string()))
                .and_then(|mut v| v.pop().ok_or_else(|| NetnsError::Tun("no queue".into())))
        };
        let (hub, device) = match (make(), make()) {
            (Ok(h), Ok(d)) => (Arc::new(h), Arc::new(d)),
            (Err(e), _) | (_, Err(e)) => {
                let _ = names.send(Err(e));
                return;
            }
        };
        let _ = names.send(Ok((hub.name().to_string(), device.name().to_string())));
        let directions = [
            carry(hub.clone(), device.clone(), control.clone(), 1),
            carry(device, hub, control, 2),
        ];
        let [a, b] = directions;
        tokio::select! {
            () = cancel.cancelled() => {}
            () = a => {}
            () = b => {}
        }
    });
}

/// One direction: read from `from`, drop or delay, write to `to`.
async fn carry(from: Arc<Tun>, to: Arc<Tun>, control: Arc<Control>, seed: u64) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_PACKETS);
    let delivery = {
        let control = control.clone();
        async move {
            while let Some((due, packet)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if control.blackholed.load(Ordering::Relaxed) {
                    control.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // A packet the kernel refuses (e.g. a device going away) is lost, as on a wire.
                if to.send(&packet).await.is_ok() {
                    control.forwarded.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    };
    let intake = async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let n = match from.recv(&mut buf).await {
                Ok(n) => n,
                Err(_) => return,
            };
            if control.drops(&mut rng) {
                control.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let due =
                Instant::now() + Duration::from_micros(control.delay_us.load(Ordering::Relaxed));
            if tx.try_send((due, buf[..n].to_vec())).is_err() {
                control.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    tokio::join!(intake, delivery);
}
