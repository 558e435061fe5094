//! Liveness of a stream's legs: WebSocket pings from the hub, and a pong deadline.
//!
//! A leg is alive while something shows its peer is there: a frame from it (data, ping, pong,
//! anything), or a relayed write to it that the socket accepted. A leg that shows nothing for
//! [`Keepalive::interval`] is pinged; one that still shows nothing [`Keepalive::timeout`]
//! later is unresponsive, and the relay ends the stream.
//!
//! The ping also keeps middleboxes from cutting an idle stream: load balancers and reverse
//! proxies commonly drop connections idle for 60 s (nginx's `proxy_read_timeout`, AWS ALB's
//! idle timeout), so the default interval is 20 s.
//!
//! A ping written into the socket does not count as activity: a peer that has stopped (its
//! process suspended, its network gone) leaves the kernel's buffers accepting bytes for a
//! while, and only its pong, or its reading our data, proves it is there.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt as _;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_websockets::Message;

pub use adit_transport::Keepalive;

/// When a leg last showed life, as nanoseconds after a fixed origin. Lock-free: the relay
/// marks it once per batch of frames.
#[derive(Debug)]
pub struct Activity {
    origin: Instant,
    last: AtomicU64,
    // True while the relay has stopped reading this leg because it is blocked writing to the
    // other one: its pongs are then unread, so its silence proves nothing.
    parked: AtomicBool,
}

impl Activity {
    /// Activity as of now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            parked: AtomicBool::new(false),
        }
    }

    /// The relay stops (`true`) or resumes (`false`) reading this leg while it writes to the
    /// other; resuming counts as a sign of life.
    pub fn park(&self, parked: bool) {
        // Marked before unparking, so a watch never sees it unparked with an old mark.
        if !parked {
            self.mark();
        }
        self.parked.store(parked, Ordering::Relaxed);
    }

    fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Relaxed)
    }

    /// Records a sign of life now.
    pub fn mark(&self) {
        let nanos = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.fetch_max(nanos, Ordering::Relaxed);
    }

    /// The last sign of life.
    pub fn last(&self) -> Instant {
        self.origin + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// Pings the leg whose sink is `sink` whenever it has been silent for the interval; returns
/// when it has shown no life for interval + pong timeout. Runs until then, so the caller
/// races it against the relay.
pub async fn watch<S>(activity: &Activity, sink: &Mutex<S>, keepalive: Keepalive)
where
    S: futures_util::Sink<Message> + Unpin,
{
    loop {
        let last = activity.last();
        let ping_at = last + keepalive.interval();
        if Instant::now() < ping_at {
            tokio::time::sleep_until(ping_at).await;
            continue;
        }
        let deadline = ping_at + keepalive.timeout();
        // The relay may hold the sink while a write to this leg is blocked; the deadline still
        // holds then, since a write that never completes is no sign of life either.
        let _ = tokio::time::timeout_at(deadline, async {
            let mut sink = sink.lock().await;
            let _ = sink.send(Message::ping(Bytes::new())).await;
        })
        .await;
        // Look again once per interval (not only at the deadline), so that once the pong is
        // in, the next ping follows an interval after it even when the deadline is longer.
        loop {
            let now = Instant::now();
            if activity.last() > last {
                break;
            }
            // A parked leg is judged once the relay reads it again (the stalled side is the
            // other one, and its own watch judges it).
            if now >= deadline && !activity.is_parked() {
                return;
            }
            let next = if now >= deadline {
                now + keepalive.interval()
            } else {
                deadline.min(now + keepalive.interval())
            };
            tokio::time::sleep_until(next).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    // A real WebSocket pair over an in-memory pipe, so paused time drives every timer.
    async fn pair() -> (
        tokio_websockets::WebSocketStream<tokio::io::DuplexStream>,
        tokio_websockets::WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let server = tokio_websockets::ServerBuilder::new().serve(a);
        let client = tokio_websockets::ClientBuilder::new().take_over(b);
        (server, client)
    }

    fn k() -> Keepalive {
        Keepalive::new(Duration::from_secs(20), Duration::from_secs(10)).expect("valid")
    }

    #[tokio::test(start_paused = true)]
    async fn pings_after_exactly_the_interval_of_silence() {
        let (server, mut client) = pair().await;
        let (sink, _stream) = server.split();
        let sink = Mutex::new(sink);
        let activity = Activity::new();
        let start = Instant::now();
        let watcher = watch(&activity, &sink, k());
        tokio::pin!(watcher);
        let got = tokio::select! {
            m = client.next() => m,
            () = &mut watcher => panic!("declared dead before any ping"),
        };
        assert!(got.expect("open").expect("frame").is_ping());
        assert_eq!(start.elapsed(), k().interval());
    }

    #[tokio::test(start_paused = true)]
    async fn silent_leg_is_dead_at_interval_plus_pong_timeout_and_not_before() {
        let (server, _client) = pair().await; // the client never reads: no pong ever comes
        let (sink, _stream) = server.split();
        let sink = Mutex::new(sink);
        let activity = Activity::new();
        let start = Instant::now();
        let edge = k().interval() + k().timeout();
        let watcher = watch(&activity, &sink, k());
        tokio::pin!(watcher);
        assert!(
            tokio::time::timeout(edge - Duration::from_millis(1), &mut watcher)
                .await
                .is_err(),
            "alive just before the deadline"
        );
        watcher.await;
        assert_eq!(start.elapsed(), edge);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pong_keeps_the_leg_alive_for_hours() {
        let (server, mut client) = pair().await;
        let (sink, mut stream) = server.split();
        let sink = Mutex::new(sink);
        let activity = Activity::new();
        // The hub's reader marks activity for every frame; the client answers pings by itself
        // as long as it reads.
        let reader = async {
            while let Some(Ok(_)) = stream.next().await {
                activity.mark();
            }
        };
        let client_reads = async { while let Some(Ok(_)) = client.next().await {} };
        let watcher = watch(&activity, &sink, k());
        let three_hours = tokio::time::sleep(Duration::from_secs(3 * 3600));
        tokio::select! {
            () = watcher => panic!("a leg that answers pings was declared dead"),
            () = reader => panic!("stream ended"),
            () = client_reads => panic!("client ended"),
            () = three_hours => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_answered_ping_is_followed_by_the_next_an_interval_later() {
        // A pong deadline longer than the interval must not stretch the ping cadence: a
        // middlebox idle timeout just above the interval still sees traffic.
        let k = Keepalive::new(Duration::from_secs(2), Duration::from_secs(10)).expect("valid");
        let (server, mut client) = pair().await;
        let (sink, mut stream) = server.split();
        let sink = Mutex::new(sink);
        let activity = Activity::new();
        let start = Instant::now();
        let reader = async {
            while let Some(Ok(_)) = stream.next().await {
                activity.mark();
            }
        };
        let pings = async {
            let mut at = Vec::new();
            while at.len() < 3 {
                match client.next().await {
                    Some(Ok(m)) if m.is_ping() => at.push(start.elapsed().as_secs()),
                    Some(Ok(_)) => {}
                    other => panic!("{other:?}"),
                }
            }
            at
        };
        let at = tokio::select! {
            at = pings => at,
            () = watch(&activity, &sink, k) => panic!("declared dead"),
            () = reader => panic!("stream ended"),
        };
        // The pong comes back at once, so each ping follows the last by the interval, give
        // or take the one check per interval.
        assert_eq!(at[0], 2);
        assert!(at[2] <= 8, "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_leg_parked_behind_a_stalled_write_is_not_judged_until_it_is_read_again() {
        let (server, _client) = pair().await; // never answers
        let (sink, _stream) = server.split();
        let sink = Mutex::new(sink);
        let activity = Activity::new();
        activity.park(true);
        let watcher = watch(&activity, &sink, k());
        tokio::pin!(watcher);
        let an_hour = Duration::from_secs(3600);
        assert!(
            tokio::time::timeout(an_hour, &mut watcher).await.is_err(),
            "not blamed while the relay does not read it"
        );
        activity.park(false); // read again: a fresh start
        let resumed = Instant::now();
        watcher.await;
        assert_eq!(resumed.elapsed(), k().interval() + k().timeout());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_write_does_not_hold_off_the_deadline() {
        let (server, _client) = pair().await;
        let (sink, _stream) = server.split();
        let sink = Mutex::new(sink);
        let activity = Activity::new();
        let _held = sink.lock().await; // a relayed write that never completes
        let start = Instant::now();
        watch(&activity, &sink, k()).await;
        assert_eq!(start.elapsed(), k().interval() + k().timeout());
    }
}
