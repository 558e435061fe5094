//! The adaptive receive window: how large each connection's window should be for the path the
//! stream runs on, estimated from the bandwidth-delay product (BDP), as HTTP/2
//! implementations do (h2's `adaptive_window`).
//!
//! What an interactive connection waits behind is a bulk connection's bytes in flight, that
//! is its window; yet a window smaller than the path's BDP caps bulk throughput at
//! window / RTT. So the window starts small ([`DEFAULT_INITIAL_WINDOW`]) and grows only when
//! the path shows it needs more: while DATA arrives, the receiver sends PING and counts the
//! DATA payload bytes that arrive until the PONG. Those bytes are what the sender had in
//! flight over one round trip. When they fill most of the window (at least 2/3: the window,
//! not the path, is what limits the sender) and the bandwidth they show (bytes / RTT) beat
//! the best seen so far (by more than an eighth), a larger window would carry more: the
//! window becomes twice the sample (less what of it was queue, below), up to a maximum
//! ([`DEFAULT_MAX_WINDOW`]).
//!
//! Bandwidths are taken over the longer of the sample's round trip and the smoothed one (h2
//! takes the smoothed one), so one short round trip does not pass for a faster path. One
//! addition to h2's rule: the window becomes twice the sample's BDP rather than twice the
//! sample, the BDP being its bandwidth times the shortest round trip seen (the first PING of
//! a link goes while it is idle, [`BdpEstimator::on_idle`], to measure it). A sample counts every byte ahead of the PONG,
//! including the queue the window itself piled up on a short path (socket buffers, the peer's
//! writer); doubling it would only double that queue, and what a keystroke waits behind with
//! it. While the window is what limits the sender, its round trips stay near the shortest and
//! this is about twice the sample, as in h2; once a queue builds, round trips grow and the
//! window stops. So on a short path the window stays small, and on a long fat one it doubles
//! every round trip or two until it covers the BDP. The window never shrinks: credit already
//! granted cannot be taken back.
//!
//! Sans IO: the caller sends the PINGs this asks for, feeds it each DATA arrival and PONG
//! with the time they happened, and grows its connections' windows
//! ([`crate::Mux::grow_window`]) when it says so. After a link failure or the peer's
//! reattach the PING in flight may be lost and its count spans an outage:
//! [`BdpEstimator::forget`].

use std::time::{Duration, Instant};

use crate::flow::MAX_CREDIT;

/// The window a connection starts with unless its settings say otherwise, in bytes: small, so
/// a short path stays small (64 KiB is 1.3 MB/s at 50 ms, and grows from there).
pub const DEFAULT_INITIAL_WINDOW: u32 = 64 * 1024;

/// The largest window the estimator grows to unless its settings say otherwise, in bytes:
/// 16 MiB, 335 MB/s at 50 ms.
pub const DEFAULT_MAX_WINDOW: u32 = 16 * 1024 * 1024;

/// How much a sample's bandwidth must beat the best seen so far before the window grows: an
/// eighth. Doubling a window that limits the sender roughly doubles the bandwidth, far past
/// this; on a path that is already full, samples only scatter around the same bandwidth, and
/// without a margin each new record of that scatter would double the window (and what a
/// keystroke waits behind) for nothing.
const GAIN_MARGIN: f64 = 1.0 / 8.0;

/// How long a PING may go unanswered before it is taken for lost (a hub that dropped it
/// while the peer was not there yet, say) and another may go: without it, one lost PING
/// would end the adaptation for the session.
const PING_LOST_AFTER: Duration = Duration::from_secs(10);

/// Weight of the newest round trip in the smoothed one: 1/8, as TCP's (RFC 6298).
const SRTT_GAIN: u32 = 8;

/// Samples in a row that did not grow the window before PINGs are spaced out: slow start
/// alternates samples that grow and samples that straddle a growth, which must not slow it.
const STABLE_AFTER: u32 = 2;

/// Wait before the next PING once the window is stable; it doubles with each further stable
/// sample, up to [`STABLE_HOLD_MAX`], and drops back to none when the window grows. A stable
/// window needs no PING per round trip (on a 1 ms path that would be a thousand messages a
/// second each way), but a path that changes is still noticed within seconds.
const STABLE_HOLD_FIRST: Duration = Duration::from_millis(100);

/// Longest wait between PINGs on a stable window.
const STABLE_HOLD_MAX: Duration = Duration::from_secs(2);

/// The PING in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    opaque: u64,
    sent: Instant,
    /// DATA payload bytes received since it was sent.
    bytes: u64,
}

/// Estimates the receive window for one stream (all its connections share the path). See
/// the module's documentation.
#[derive(Debug, Clone)]
pub struct BdpEstimator {
    window: u32,
    max: u32,
    /// The PING in flight, if any.
    probe: Option<Probe>,
    /// The next PING's opaque: each is new, so a PONG of a forgotten PING never matches.
    next_opaque: u64,
    /// Best bandwidth seen, in bytes per second.
    best: f64,
    /// Shortest round trip seen on this link (reset at a reattach: the new link may take
    /// another way).
    min_rtt: Option<Duration>,
    /// Smoothed round trip on this link, as TCP's SRTT (RFC 6298: gain 1/8), reset with
    /// `min_rtt`.
    srtt: Option<Duration>,
    /// Samples in a row that did not grow the window.
    stable: u32,
    /// No PING before this (the window is stable).
    hold_until: Option<Instant>,
}

impl BdpEstimator {
    /// Starts at `initial` bytes and grows up to `max` bytes (at most
    /// [`crate::flow::MAX_CREDIT`]). With `max` at or under `initial` the window is fixed: it
    /// never asks for a PING.
    pub fn new(initial: u32, max: u32) -> Self {
        let cap = u32::try_from(MAX_CREDIT).unwrap_or(u32::MAX);
        Self {
            window: initial,
            max: max.min(cap).max(initial),
            probe: None,
            next_opaque: 1,
            best: 0.0,
            min_rtt: None,
            srtt: None,
            stable: 0,
            hold_until: None,
        }
    }

    /// The window, in bytes: what every connection of the stream should grant.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// The largest window it may grow to, in bytes.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Whether a PING is in flight.
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// The link is idle at `now` (the session just started, or resumed): returns the opaque of
    /// a PING to send now, if the window may still grow and none is in flight. Its round trip
    /// is the path's own, before data queues up on it: the shortest round trip the samples
    /// that follow are measured against (otherwise the first sample, queue and all, would be
    /// its own reference, and a window that only built a queue would double once). It counts
    /// the DATA that arrives before its PONG like any other.
    pub fn on_idle(&mut self, now: Instant) -> Option<u64> {
        self.expire(now);
        if self.probe.is_some() || self.window >= self.max {
            return None;
        }
        Some(self.start_probe(now, 0))
    }

    /// A DATA frame with `n` payload bytes arrived at `now`. Returns the opaque of a PING to
    /// send now (ahead of anything queued, so it measures the path rather than this side's
    /// queue) when one is due: DATA is arriving, no PING is in flight, the window may still
    /// grow and a stable window's wait is over. The frame that triggers a PING counts in its
    /// sample: it is part of what the sender had in flight.
    pub fn on_data(&mut self, now: Instant, n: usize) -> Option<u64> {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.expire(now);
        if let Some(p) = &mut self.probe {
            p.bytes = p.bytes.saturating_add(n);
            return None;
        }
        if self.window >= self.max || self.hold_until.is_some_and(|t| now < t) {
            return None;
        }
        self.hold_until = None;
        Some(self.start_probe(now, n))
    }

    /// Forgets a PING unanswered for [`PING_LOST_AFTER`].
    fn expire(&mut self, now: Instant) {
        if self
            .probe
            .is_some_and(|p| now.saturating_duration_since(p.sent) >= PING_LOST_AFTER)
        {
            self.probe = None;
        }
    }

    fn start_probe(&mut self, now: Instant, bytes: u64) -> u64 {
        let opaque = self.next_opaque;
        self.next_opaque = self.next_opaque.wrapping_add(1);
        self.probe = Some(Probe {
            opaque,
            sent: now,
            bytes,
        });
        opaque
    }

    /// A PONG carrying `opaque` arrived at `now`. Returns the new window when the sample grew
    /// it (the caller grows every connection's window to it); `None` when it did not, and for
    /// a PONG that matches no PING in flight (ignored).
    pub fn on_pong(&mut self, now: Instant, opaque: u64) -> Option<u32> {
        let probe = self.probe.filter(|p| p.opaque == opaque)?;
        self.probe = None;
        // A round trip of zero (a coarse clock) counts as a nanosecond.
        let rtt = now
            .saturating_duration_since(probe.sent)
            .max(Duration::from_nanos(1));
        let min_rtt = self.min_rtt.map_or(rtt, |m| m.min(rtt));
        let srtt = self.srtt.map_or(rtt, |s| {
            if rtt > s {
                s + (rtt - s) / SRTT_GAIN
            } else {
                s - (s - rtt) / SRTT_GAIN
            }
        });
        (self.min_rtt, self.srtt) = (Some(min_rtt), Some(srtt));
        if probe.bytes == 0 {
            // An idle PING ([`BdpEstimator::on_idle`]) that no DATA followed: a round trip,
            // nothing to say of the window.
            return None;
        }
        // Over the longer of this round trip and the smoothed one (h2 takes the smoothed
        // one): a sample whose round trip was short because this side read a backlog at once
        // is not a faster path, nor is one whose round trip grew faster than the smoothing.
        let round_trip = rtt.max(srtt).as_secs_f64();
        let bandwidth = probe.bytes as f64 / round_trip;
        let fills_window = probe.bytes.saturating_mul(3) >= u64::from(self.window) * 2;
        let faster = bandwidth > self.best * (1.0 + GAIN_MARGIN);
        self.best = self.best.max(bandwidth);
        // Twice the path's BDP as this sample shows it: that bandwidth times the shortest
        // round trip. A sample counts every byte that arrived before the PONG, including the
        // queue the window itself piled up ahead of it (socket buffers, the peer's writer),
        // and doubling that would only double the queue. While the window is what limits the
        // sender, round trips stay near the shortest and this is about twice the sample, as
        // in h2; once a queue builds, it stops the window. (Float to integer saturates.)
        let bdp = (bandwidth * min_rtt.as_secs_f64()).round() as u64;
        let target = bdp.saturating_mul(2).min(u64::from(self.max));
        let target = u32::try_from(target).unwrap_or(self.max);
        if fills_window && faster && target > self.window {
            self.window = target;
            self.stable = 0;
            self.hold_until = None;
            return Some(target);
        }
        self.stable = self.stable.saturating_add(1);
        if self.stable >= STABLE_AFTER {
            let doublings = (self.stable - STABLE_AFTER).min(16);
            let hold = STABLE_HOLD_FIRST
                .saturating_mul(1 << doublings)
                .min(STABLE_HOLD_MAX);
            self.hold_until = Some(now + hold);
        }
        None
    }

    /// The link failed, or the peer reattached: the PING in flight may have been lost with
    /// the old link (or dropped by the hub while a half was away), and its count would span
    /// the outage. Forgets it; its PONG, should one come, matches nothing. The shortest round
    /// trip and the smoothed one are measured again (the new link may take another way); the
    /// window and the best bandwidth are kept.
    pub fn forget(&mut self) {
        self.probe = None;
        self.min_rtt = None;
        self.srtt = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    /// A path in simulated time, and the PING in flight on it.
    struct Path {
        now: Instant,
        ping: Option<(u64, Instant)>,
    }

    impl Path {
        fn new() -> Self {
            Self {
                now: Instant::now(),
                ping: None,
            }
        }

        /// `rounds` round trips of `rtt` with a sender limited by the window alone on a path
        /// that carries at most `capacity` bytes per round trip: each round trip, the receiver
        /// gets one window's worth (or the path's capacity) in frames of 16 KiB, pinging as
        /// the estimator asks, and a PONG comes back one RTT after its PING, ahead of the next
        /// round's data. Returns the window after each round trip.
        fn run(
            &mut self,
            est: &mut BdpEstimator,
            rtt: Duration,
            capacity: u64,
            rounds: usize,
        ) -> Vec<u32> {
            let mut windows = Vec::new();
            for _ in 0..rounds {
                self.now += rtt;
                if let Some((opaque, sent)) = self.ping
                    && self.now >= sent + rtt
                {
                    est.on_pong(self.now, opaque);
                    self.ping = None;
                }
                let mut left = u64::from(est.window()).min(capacity);
                while left > 0 {
                    let n = left.min(16 * KIB);
                    left -= n;
                    if let Some(opaque) = est.on_data(self.now, n as usize) {
                        self.ping = Some((opaque, self.now));
                    }
                }
                windows.push(est.window());
            }
            windows
        }
    }

    #[test]
    fn on_a_long_fat_path_the_window_grows_until_it_covers_the_bdp() {
        // 50 ms, 20 MB/s: a BDP of 1 MB, sixteen times the initial window.
        let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
        let windows = Path::new().run(&mut est, Duration::from_millis(50), 1_000_000, 40);
        assert_eq!(windows[0], 64 * 1024);
        assert!(
            windows.windows(2).all(|w| w[1] >= w[0]),
            "never shrinks: {windows:?}"
        );
        let last = *windows.last().expect("rounds");
        assert!(
            u64::from(last) >= 1_000_000,
            "covers the BDP within 40 RTT: {windows:?}"
        );
        assert!(
            u64::from(last) <= 2 * 1_000_000 + 16 * KIB,
            "and stops there: twice what one RTT carries, {windows:?}"
        );
        // Doubling at least every other round trip until then.
        let first_big = windows.iter().position(|&w| u64::from(w) >= 1_000_000);
        assert!(first_big.is_some_and(|i| i <= 10), "{windows:?}");
    }

    #[test]
    fn on_a_short_path_the_window_stays_put() {
        // 1 ms at 40 MB/s: 40 kB per round trip, under the initial window.
        let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
        let windows = Path::new().run(&mut est, Duration::from_millis(1), 40_000, 2000);
        assert!(windows.iter().all(|&w| w == 64 * 1024), "{windows:?}");
    }

    #[test]
    fn a_full_path_stops_the_growth_even_when_the_window_limits() {
        // 100 kB per round trip: the first sample (a full 64 KiB window) doubles it, the
        // next ones show the same bandwidth and leave it.
        let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
        let windows = Path::new().run(&mut est, Duration::from_millis(10), 100_000, 500);
        let last = *windows.last().expect("rounds");
        assert_eq!(last, 2 * 100_000, "{:?}", &windows[..10]);
    }

    #[test]
    fn a_window_that_only_builds_a_queue_does_not_grow() {
        let rtt = Duration::from_millis(1);
        let grow_with = |full_sample_rtt: Duration| {
            let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
            let mut t = Instant::now();
            // An interactive start: a few bytes per round trip show the path's 1 ms.
            let p = est.on_data(t, 100).expect("a PING");
            t += rtt;
            assert_eq!(est.on_pong(t, p), None, "too few bytes to say anything");
            // Then a full window in one round trip.
            let p = est.on_data(t, 64 * 1024).expect("a PING");
            t += full_sample_rtt;
            est.on_pong(t, p)
        };
        // 64 KiB took 4 ms on a 1 ms path: 16 MB/s, a BDP of 16 kB; three quarters of the
        // round trip was queue. h2's rule alone would double the window (and the queue).
        assert_eq!(grow_with(Duration::from_millis(4)), None);
        // 64 KiB in 1.25 ms: 52 MB/s, a BDP of 52 kB; twice that is over the window.
        let grown = grow_with(Duration::from_micros(1250)).expect("grows");
        assert!(
            (100_000..=2 * 64 * 1024).contains(&grown),
            "twice the BDP: {grown}"
        );
    }

    #[test]
    fn the_idle_round_trip_is_the_reference_for_the_first_sample() {
        let sample = |idle_rtt: Duration| {
            let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
            let mut t = Instant::now();
            let p = est.on_idle(t).expect("a PING on the idle link");
            assert_eq!(est.on_idle(t), None, "one in flight at a time");
            t += idle_rtt;
            assert_eq!(est.on_pong(t, p), None, "a round trip, no sample");
            // A full window in 4 ms.
            let p = est.on_data(t, 64 * 1024).expect("a PING");
            t += Duration::from_millis(4);
            est.on_pong(t, p)
        };
        // The path takes 1 ms: three quarters of the 4 ms were queue.
        assert_eq!(sample(Duration::from_millis(1)), None);
        // The path takes 4 ms: the window limits the sender, twice the sample.
        assert_eq!(sample(Duration::from_millis(4)), Some(128 * 1024));
    }

    #[test]
    fn a_ping_never_answered_is_given_up() {
        let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
        let t = Instant::now();
        let lost = est.on_idle(t).expect("a PING");
        assert_eq!(
            est.on_data(t + Duration::from_secs(9), 1000),
            None,
            "still waiting"
        );
        let next = est
            .on_data(t + PING_LOST_AFTER, 1000)
            .expect("taken for lost: another PING");
        assert_ne!(next, lost);
        assert_eq!(
            est.on_pong(t + PING_LOST_AFTER, lost),
            None,
            "matches nothing"
        );
        assert!(est.probing());
    }

    #[test]
    fn the_window_never_passes_its_maximum() {
        let mut est = BdpEstimator::new(64 * 1024, 1 << 20);
        let windows = Path::new().run(&mut est, Duration::from_millis(100), u64::MAX, 100);
        assert!(windows.iter().all(|&w| w <= 1 << 20));
        assert_eq!(*windows.last().expect("rounds"), 1 << 20);
        // At the maximum there is nothing to learn: no more PINGs.
        assert_eq!(est.on_data(Instant::now(), 16 * 1024), None);
    }

    #[test]
    fn the_maximum_is_capped_at_the_largest_credit() {
        let est = BdpEstimator::new(64 * 1024, u32::MAX);
        assert_eq!(u64::from(est.max()), MAX_CREDIT);
    }

    #[test]
    fn a_fixed_window_never_pings() {
        let mut est = BdpEstimator::new(256 * 1024, 256 * 1024);
        let t = Instant::now();
        for i in 0..100 {
            assert_eq!(est.on_data(t + Duration::from_millis(i), 16 * 1024), None);
        }
        assert_eq!(est.window(), 256 * 1024);
    }

    #[test]
    fn it_never_shrinks_when_the_path_slows_down() {
        let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
        let mut path = Path::new();
        path.run(&mut est, Duration::from_millis(50), 1_000_000, 40);
        let grown = est.window();
        let windows = path.run(&mut est, Duration::from_millis(5), 10_000, 200);
        assert!(windows.iter().all(|&w| w == grown), "{windows:?}");
    }

    #[test]
    fn a_pong_that_matches_no_ping_is_ignored() {
        let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
        let t = Instant::now();
        assert_eq!(est.on_pong(t, 1), None, "no PING in flight");
        let opaque = est.on_data(t, 64 * 1024).expect("a PING");
        assert_eq!(est.on_data(t, 16 * 1024), None, "one at a time");
        let later = t + Duration::from_millis(50);
        assert_eq!(est.on_pong(later, opaque + 1), None, "not its PONG");
        assert!(est.probing(), "the PING is still in flight");
        assert_eq!(est.on_pong(later, opaque), Some(2 * 80 * 1024));
        assert_eq!(est.on_pong(later, opaque), None, "answered already");
    }

    #[test]
    fn nothing_is_sampled_across_a_reattach() {
        let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
        let t = Instant::now();
        let before = est.on_data(t, 64 * 1024).expect("a PING");
        // The link fails; DATA replayed on the new one arrives in a rush.
        est.forget();
        assert!(!est.probing());
        let later = t + Duration::from_secs(3);
        let after = est.on_data(later, 16 * 1024).expect("a new PING");
        assert_ne!(after, before);
        assert_eq!(
            est.on_pong(later + Duration::from_millis(50), before),
            None,
            "the old PING's PONG matches nothing"
        );
        assert!(est.probing(), "the new PING is still in flight");
        // Its own PONG: 16 KiB in 50 ms is a quarter of the window, no growth.
        assert_eq!(est.on_pong(later + Duration::from_millis(50), after), None);
        assert_eq!(est.window(), 64 * 1024);
    }

    #[test]
    fn a_stable_window_spaces_its_pings_out_and_growth_resumes_them() {
        let mut est = BdpEstimator::new(64 * 1024, 16 << 20);
        let mut t = Instant::now();
        let rtt = Duration::from_millis(10);
        // Samples far under the window: stable.
        for _ in 0..STABLE_AFTER {
            let p = est
                .on_data(t, 1000)
                .expect("a PING per round trip at first");
            t += rtt;
            assert_eq!(est.on_pong(t, p), None);
        }
        assert_eq!(est.on_data(t, 1000), None, "held");
        t += STABLE_HOLD_FIRST;
        let p = est.on_data(t, 64 * 1024).expect("after the hold");
        t += rtt;
        assert_eq!(est.on_pong(t, p), Some(128 * 1024));
        assert!(est.on_data(t, 1000).is_some(), "growing: no hold");
    }
}
