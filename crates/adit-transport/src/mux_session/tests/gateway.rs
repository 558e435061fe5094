//! An in-memory gateway for tests: two legs joined by a relay that forwards whole messages,
//! drops what is sent towards a leg that is away (as the hub does while it parks a half), cuts
//! legs when the test says so or when a planned number of bytes has crossed, and takes new
//! legs from [`LegReattach`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::super::{Reattach, ReattachError};
use super::wire::{MsgLink, Wire, link};

/// One half of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Service = 0,
    Device = 1,
}

#[derive(Debug)]
enum Control {
    Cut(Side),
    Attach(Side, Wire),
}

/// The test's handle on the relay.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    control: mpsc::UnboundedSender<Control>,
    /// Cuts the relay made from its plan so far.
    planned_cuts: Arc<AtomicU64>,
}

impl Gateway {
    /// Starts the relay with both legs attached; it cuts `side` once the bytes it forwarded
    /// (both ways) pass each `at` of `plan`, in order, and both legs are there. Returns the
    /// service's and the device's first links.
    pub(crate) fn start(plan: Vec<(u64, Side)>) -> (Self, MsgLink, MsgLink) {
        let (control, control_rx) = mpsc::unbounded_channel();
        let (service, service_wire) = link();
        let (device, device_wire) = link();
        let planned_cuts = Arc::new(AtomicU64::new(0));
        let relay = Relay {
            legs: [Some(service_wire), Some(device_wire)],
            forwarded: 0,
            plan,
            next: 0,
            planned_cuts: planned_cuts.clone(),
        };
        tokio::spawn(relay.run(control_rx));
        (
            Self {
                control,
                planned_cuts,
            },
            service,
            device,
        )
    }

    /// Drops `side`'s leg now: its reads and writes fail, messages in flight are lost.
    pub(crate) fn cut(&self, side: Side) {
        let _ = self.control.send(Control::Cut(side));
    }

    /// How many planned cuts happened.
    pub(crate) fn planned_cuts(&self) -> u64 {
        self.planned_cuts.load(Ordering::Relaxed)
    }

    /// A [`Reattach`] that joins `side` again after `offline`.
    pub(crate) fn reattach(&self, side: Side, offline: Duration) -> LegReattach {
        LegReattach {
            side,
            offline,
            control: self.control.clone(),
        }
    }
}

/// Reattaches one side through the [`Gateway`].
#[derive(Debug)]
pub(crate) struct LegReattach {
    side: Side,
    offline: Duration,
    control: mpsc::UnboundedSender<Control>,
}

impl Reattach for LegReattach {
    type Link = MsgLink;

    async fn reattach(&mut self) -> Result<MsgLink, ReattachError> {
        tokio::time::sleep(self.offline).await;
        let (ours, theirs) = link();
        self.control
            .send(Control::Attach(self.side, theirs))
            .map_err(|_| ReattachError::Gone("the gateway is gone".into()))?;
        Ok(ours)
    }
}

struct Relay {
    legs: [Option<Wire>; 2],
    forwarded: u64,
    plan: Vec<(u64, Side)>,
    next: usize,
    planned_cuts: Arc<AtomicU64>,
}

/// The next message from `leg`, `None` when it vanished; never while there is no leg.
async fn next_message(leg: Option<&mut Wire>) -> Option<Bytes> {
    match leg {
        Some(w) => w.rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Relay {
    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        loop {
            let [service, device] = &mut self.legs;
            let (from, message) = tokio::select! {
                c = control.recv() => {
                    match c {
                        None => return,
                        Some(Control::Cut(side)) => self.legs[side as usize] = None,
                        Some(Control::Attach(side, wire)) => self.legs[side as usize] = Some(wire),
                    }
                    continue;
                }
                m = next_message(service.as_mut()) => (Side::Service, m),
                m = next_message(device.as_mut()) => (Side::Device, m),
            };
            let Some(message) = message else {
                self.legs[from as usize] = None;
                continue;
            };
            let to = 1 - from as usize;
            // Towards a leg that is away, messages are dropped whole.
            if let Some(w) = &self.legs[to] {
                if w.tx.send(message.clone()).is_err() {
                    self.legs[to] = None;
                    continue;
                }
                self.forwarded += message.len() as u64;
            }
            self.follow_plan();
        }
    }

    fn follow_plan(&mut self) {
        let Some(&(at, side)) = self.plan.get(self.next) else {
            return;
        };
        if self.forwarded >= at && self.legs.iter().all(Option::is_some) {
            self.legs[side as usize] = None;
            self.next += 1;
            self.planned_cuts.fetch_add(1, Ordering::Relaxed);
        }
    }
}
