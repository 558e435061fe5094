//! SAS token lifetime on the device side: how long each token lasts and when to renew it.
//!
//! The hub, as Azure IoT Hub does, closes a session when the token it was opened with
//! expires. Azure's SDKs therefore reconnect with a fresh token ahead of expiry; so does this
//! one, at [`RENEW_AT_PERCENT`] of the token's lifetime, leaving the rest as margin for a slow
//! reconnect or a hub clock slightly ahead of the device's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Share of a token's lifetime after which the client renews it (Azure's SDKs use 85 %).
pub const RENEW_AT_PERCENT: u32 = 85;

/// Longest token lifetime signed: a year. Longer ones are cut to it, so `se` stays a
/// plausible time that every verifier can hold.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(365 * 86_400);

/// The expiry to sign for a token made at `now` that should last `ttl` (at most
/// [`MAX_TOKEN_TTL`]), and how long it
/// really lasts from `now`. `se` is whole Unix seconds, so it is rounded *up*: the token
/// lasts at least `ttl` (truncating would cut up to a second off, which matters for the
/// short lifetimes tests use).
pub fn expiry(now: SystemTime, ttl: Duration) -> (u64, Duration) {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let end = now.saturating_add(ttl.min(MAX_TOKEN_TTL));
    let se = end.as_secs() + u64::from(end.subsec_nanos() > 0);
    let lifetime = Duration::from_secs(se).saturating_sub(now);
    (se, lifetime)
}

/// When to renew a token that lasts `lifetime` from `signed`.
pub fn renew_at(signed: Instant, lifetime: Duration) -> Instant {
    let after = lifetime.saturating_mul(RENEW_AT_PERCENT) / 100;
    // Only a lifetime of centuries overflows; then renewal never comes, as it need not.
    signed
        .checked_add(after)
        .unwrap_or_else(|| signed + Duration::from_secs(100 * 365 * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix_ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(unix_ms)
    }

    #[test]
    fn a_huge_ttl_is_cut_to_a_year() {
        let now = at(1_800_000_000_000);
        let (se, lifetime) = expiry(now, Duration::MAX);
        assert_eq!(se, 1_800_000_000 + 365 * 86_400);
        assert_eq!(lifetime, MAX_TOKEN_TTL);
    }

    #[test]
    fn expiry_rounds_up_so_the_token_lasts_at_least_the_ttl() {
        let ttl = Duration::from_secs(3);
        assert_eq!(
            expiry(at(1_000_000_400), ttl),
            (1_000_004, Duration::from_millis(3_600))
        );
        assert_eq!(
            expiry(at(1_000_000_000), ttl),
            (1_000_003, Duration::from_secs(3))
        );
        assert_eq!(
            expiry(at(1_000_000_999), Duration::from_secs(3600)),
            (1_003_601, Duration::from_millis(3_600_001))
        );
    }

    // Lets the timer task run after the clock moved.
    async fn settle() {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn renewal_fires_at_85_percent_of_the_lifetime_and_not_before() {
        let signed = Instant::now();
        // A 4-s token: renewal due at 3.4 s, 0.6 s before the hub would close the session.
        let timer = tokio::spawn(tokio::time::sleep_until(renew_at(
            signed,
            Duration::from_secs(4),
        )));
        tokio::time::advance(Duration::from_millis(3_399)).await;
        settle().await;
        assert!(!timer.is_finished(), "not renewed 1 ms early");
        tokio::time::advance(Duration::from_millis(1)).await;
        settle().await;
        assert!(timer.is_finished(), "renewed at 85 %");
    }

    #[tokio::test(start_paused = true)]
    async fn an_hour_long_token_is_renewed_after_51_minutes() {
        let signed = Instant::now();
        assert_eq!(
            renew_at(signed, Duration::from_secs(3600)) - signed,
            Duration::from_secs(3060)
        );
        // And an absurd lifetime does not panic.
        let _ = renew_at(signed, Duration::MAX);
    }
}
