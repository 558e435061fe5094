//! Every limit and timer of the throttle, on tokio's paused clock: at and past each boundary.

use std::time::Duration;

use super::*;

const WINDOW: Duration = Duration::from_secs(60);
const PENALTY: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn throttle(max_failures: u32, max_unknown: u32) -> AuthThrottle {
    AuthThrottle::new(ThrottleConfig {
        max_failures,
        max_unknown,
        window: WINDOW,
        penalty: PENALTY,
    })
}

fn ip(last: u8) -> IpAddr {
    [10, 0, 0, last].into()
}

#[tokio::test(start_paused = true)]
async fn an_identity_is_throttled_only_at_its_address_and_only_past_its_limit() {
    let t = throttle(3, 100);
    let (nat, other) = (ip(1), ip(2));
    for _ in 0..3 {
        assert!(!t.is_throttled(nat, Blame::Identity("revoked")));
        assert_eq!(
            t.record_failure(nat, Blame::Identity("revoked")),
            Verdict::Counted
        );
    }
    assert!(t.is_throttled(nat, Blame::Identity("revoked")));
    assert_eq!(
        t.record_failure(nat, Blame::Identity("revoked")),
        Verdict::Throttled { attempts: 1 }
    );
    assert_eq!(
        t.record_failure(nat, Blame::Identity("revoked")),
        Verdict::Throttled { attempts: 2 }
    );
    // Nobody else is touched: another identity at the same address, the same identity
    // elsewhere, the address's own budget, a module of the device.
    assert!(!t.is_throttled(nat, Blame::Identity("good")));
    assert!(!t.is_throttled(nat, Blame::Identity("revoked/module")));
    assert!(!t.is_throttled(other, Blame::Identity("revoked")));
    assert!(!t.is_throttled(nat, Blame::Source));
    assert!(!t.admit(nat).await.is_gated());
    assert_eq!(
        t.record_failure(nat, Blame::Identity("good")),
        Verdict::Counted
    );
}

#[tokio::test(start_paused = true)]
async fn the_window_ends_exactly_at_its_length() {
    let t = throttle(2, 100);
    let a = ip(1);
    t.record_failure(a, Blame::Identity("d"));
    tokio::time::advance(Duration::from_secs(10)).await;
    t.record_failure(a, Blame::Identity("d"));
    // The window runs from the first failure, not the last.
    tokio::time::advance(WINDOW - Duration::from_secs(10) - MS).await;
    assert!(
        t.is_throttled(a, Blame::Identity("d")),
        "1 ms before the end"
    );
    assert_eq!(
        t.record_failure(a, Blame::Identity("d")),
        Verdict::Throttled { attempts: 1 }
    );
    tokio::time::advance(MS).await;
    assert!(!t.is_throttled(a, Blame::Identity("d")), "at the end");
    assert_eq!(t.record_failure(a, Blame::Identity("d")), Verdict::Counted);
    assert_eq!(t.record_failure(a, Blame::Identity("d")), Verdict::Counted);
    assert!(
        t.is_throttled(a, Blame::Identity("d")),
        "a new window counts anew"
    );
}

#[tokio::test(start_paused = true)]
async fn each_address_counts_apart() {
    let t = throttle(1, 1);
    let (a, b) = (ip(1), ip(2));
    t.record_failure(a, Blame::Identity("d"));
    t.record_failure(a, Blame::Source);
    assert!(t.is_throttled(a, Blame::Identity("d")));
    assert!(t.is_throttled(a, Blame::Source));
    assert!(!t.is_throttled(b, Blame::Identity("d")));
    assert!(!t.is_throttled(b, Blame::Source));
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("address");
    assert!(
        t.is_throttled(mapped, Blame::Source),
        "IPv4-mapped is the IPv4 address"
    );
    assert!(t.is_throttled(mapped, Blame::Identity("d")));
}

#[tokio::test(start_paused = true)]
async fn an_ipv6_host_is_counted_by_its_64() {
    let t = throttle(1, 1);
    let one: IpAddr = "2001:db8:1:2::1".parse().expect("address");
    let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().expect("address");
    let next_64: IpAddr = "2001:db8:1:3::1".parse().expect("address");
    t.record_failure(one, Blame::Source);
    t.record_failure(one, Blame::Identity("d"));
    assert!(t.is_throttled(same_64, Blame::Source));
    assert!(t.is_throttled(same_64, Blame::Identity("d")));
    assert!(t.admit(same_64).await.is_gated());
    assert!(!t.is_throttled(next_64, Blame::Source));
    assert!(!t.is_throttled(next_64, Blame::Identity("d")));
}

#[tokio::test(start_paused = true)]
async fn past_its_unknown_budget_an_address_is_checked_one_at_a_time() {
    let t = throttle(100, 2);
    let (nat, other) = (ip(1), ip(2));
    assert_eq!(t.record_failure(nat, Blame::Source), Verdict::Counted);
    assert!(!t.admit(nat).await.is_gated(), "within the budget");
    assert_eq!(t.record_failure(nat, Blame::Source), Verdict::Counted);
    assert!(t.is_throttled(nat, Blame::Source));
    assert_eq!(
        t.record_failure(nat, Blame::Source),
        Verdict::Throttled { attempts: 1 }
    );
    // Identities are not blamed for the address's garbage.
    assert!(!t.is_throttled(nat, Blame::Identity("d")));
    assert!(!t.admit(other).await.is_gated());

    let first = t.admit(nat).await;
    assert!(first.is_gated());
    let mut second = tokio_test_spawn(t.clone(), nat);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!second.is_finished(), "waits while another check runs");
    drop(first);
    let second = (&mut second).await.expect("task");
    assert!(
        second,
        "admitted once the first is done: waiting, never refused"
    );

    // The gate lifts exactly when the window ends.
    tokio::time::advance(WINDOW - Duration::from_secs(5) - MS).await;
    assert!(t.admit(nat).await.is_gated(), "1 ms before the end");
    tokio::time::advance(MS).await;
    assert!(!t.admit(nat).await.is_gated(), "at the end");
    assert!(!t.is_throttled(nat, Blame::Source));
}

/// Admits on a task and says whether the admission was gated.
fn tokio_test_spawn(t: AuthThrottle, source: IpAddr) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move { t.admit(source).await.is_gated() })
}

#[tokio::test(start_paused = true)]
async fn the_penalty_holds_a_throttled_answer_exactly_its_length() {
    let t = throttle(1, 100);
    let a = ip(1);
    let counted = t.record_failure(a, Blame::Identity("d"));
    let started = Instant::now();
    t.penalize(counted).await;
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "a counted failure waits for nothing"
    );

    let throttled = t.record_failure(a, Blame::Identity("d"));
    assert!(throttled.is_throttled());
    let t2 = t.clone();
    let mut answer = tokio::spawn(async move { t2.penalize(throttled).await });
    tokio::time::sleep(PENALTY - MS).await;
    assert!(!answer.is_finished(), "1 ms before the penalty ends");
    tokio::time::sleep(MS).await;
    // Due now: awaiting it must not need the (paused, auto-advancing) clock to move.
    let at = Instant::now();
    (&mut answer).await.expect("task");
    assert_eq!(Instant::now(), at, "answered at the penalty");
}

#[test]
fn throttled_attempts_are_reported_sparsely() {
    assert!(Verdict::Counted.is_reported());
    let reported: Vec<u32> = (1..=350)
        .filter(|&attempts| Verdict::Throttled { attempts }.is_reported())
        .collect();
    assert_eq!(
        reported,
        vec![1, REPORT_EVERY, 2 * REPORT_EVERY, 3 * REPORT_EVERY]
    );
}

#[tokio::test(start_paused = true)]
async fn memory_is_bounded() {
    let t = AuthThrottle::with_capacity(
        ThrottleConfig {
            max_failures: 1,
            max_unknown: 1,
            window: WINDOW,
            penalty: PENALTY,
        },
        4,
    );
    let a = ip(1);
    for id in ["a", "b"] {
        t.record_failure(a, Blame::Identity(id));
    }
    tokio::time::advance(WINDOW).await;
    for id in ["c", "d"] {
        t.record_failure(a, Blame::Identity(id));
    }
    // Full: the expired windows make room, the live ones stay.
    t.record_failure(a, Blame::Identity("e"));
    assert_eq!(t.state().identities.len(), 3);
    assert!(t.is_throttled(a, Blame::Identity("c")));
    t.record_failure(a, Blame::Identity("f"));
    // All live and full: cleared rather than grown (errs towards letting traffic through).
    t.record_failure(a, Blame::Identity("g"));
    assert_eq!(t.state().identities.len(), 1);
    assert!(!t.is_throttled(a, Blame::Identity("c")));
    // Known keys never evict.
    t.record_failure(a, Blame::Identity("g"));
    assert_eq!(t.state().identities.len(), 1);

    for last in 0..10 {
        t.record_failure(ip(last), Blame::Source);
        assert!(t.state().sources.len() <= 4);
    }
}
