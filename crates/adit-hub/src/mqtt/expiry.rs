//! When a device session's SAS token runs out.
//!
//! Azure IoT Hub closes an MQTT connection when the token it was opened with expires; clients
//! renew by reconnecting with a fresh token. A session therefore carries a deadline, taken
//! from the token's `se` (Unix seconds) once, at CONNECT, and turned into a monotonic
//! [`Instant`] so that wall-clock steps after CONNECT neither shorten nor stretch it.
//!
//! Sessions get no clock-skew grace: the 5-minute tolerance of the SAS verifier exists for
//! clocks that disagree about *when a token was made*, but a session that outlived `se` by
//! minutes is exactly what a short-lived (or leaked) token must not buy.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// How long a token with expiry `expires_at` (Unix seconds) stays valid from `now`, to the
/// millisecond; `None` once `now` has reached `expires_at`.
pub fn remaining(expires_at: u64, now: SystemTime) -> Option<Duration> {
    let end = UNIX_EPOCH.checked_add(Duration::from_secs(expires_at))?;
    end.duration_since(now).ok().filter(|d| !d.is_zero())
}

/// The instant a session opened at `opened` (wall clock `now`) must end, for a token with
/// expiry `expires_at` (Unix seconds). An expired token yields `opened`: end at once.
pub fn deadline(expires_at: u64, now: SystemTime, opened: Instant) -> Instant {
    match remaining(expires_at, now) {
        // `checked_add` fails only for expiries centuries away; such a token never ends the
        // session, which is the same as waiting for it.
        Some(left) => opened.checked_add(left).unwrap_or(opened + FAR_FUTURE),
        None => opened,
    }
}

// About 30 years: later than any token a session can outlive in practice.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);

#[cfg(test)]
mod tests {
    use super::*;

    const SE: u64 = 1_800_000_000;

    fn at(unix_ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(unix_ms)
    }

    #[test]
    fn remaining_counts_to_the_millisecond_and_ends_at_se() {
        assert_eq!(
            remaining(SE, at(SE * 1000 - 10_250)),
            Some(Duration::from_millis(10_250))
        );
        assert_eq!(
            remaining(SE, at(SE * 1000 - 1)),
            Some(Duration::from_millis(1))
        );
        assert_eq!(remaining(SE, at(SE * 1000)), None);
        assert_eq!(remaining(SE, at(SE * 1000 + 1)), None);
        assert_eq!(remaining(0, at(SE * 1000)), None);
        // An absurd expiry does not overflow.
        assert!(remaining(u64::MAX, at(SE * 1000)).is_none_or(|d| d > FAR_FUTURE));
    }

    // Lets the timer task run after the clock moved.
    async fn settle() {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_fires_at_se_and_not_a_millisecond_before() {
        let opened = Instant::now();
        let end = deadline(SE, at(SE * 1000 - 10_000), opened);
        let timer = tokio::spawn(tokio::time::sleep_until(end));
        tokio::time::advance(Duration::from_millis(9_999)).await;
        settle().await;
        assert!(
            !timer.is_finished(),
            "1 ms before se the session is still valid"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        settle().await;
        assert!(timer.is_finished(), "at se the session ends");
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_token_ends_the_session_at_once() {
        let opened = Instant::now();
        assert_eq!(deadline(SE, at(SE * 1000), opened), opened);
        assert_eq!(deadline(SE, at(SE * 1000 + 5_000), opened), opened);
    }
}
