//! Past `--max-connections`: attackers hold more idle TCP connections than the hub admits,
//! reopening each as soon as the hub closes it, on the HTTPS and MQTT ports at once. Run on a
//! hub started with small limits, so the figure shows the mechanism, not the machine's file
//! descriptor limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::legit::Legit;
use crate::row::Row;
use crate::slowloris::{self, Held, Listener, Stall, Target};

/// Holds `conns` silent TCP connections on each port for `period`; one row.
pub async fn attack(
    target: &Target,
    legit: &Legit,
    limit: usize,
    conns: usize,
    period: Duration,
    quiet: &str,
) -> Row {
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for listener in [Listener::Https, Listener::MqttTls] {
        for _ in 0..conns {
            let (t, stop, opened) = (target.clone(), stop.clone(), opened.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let cap = Duration::from_secs(30);
                    match slowloris::one(t.clone(), listener, Stall::TcpSilent, cap).await {
                        Held::NotOpened => {}
                        _ => {
                            opened.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // Closed at once when the hub is full: retry soon, not in a tight loop.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
    }
    // Let the attackers fill the slots first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ((), report) = legit.during(tokio::time::sleep(period)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Row {
        scenario: "overload",
        load: format!(
            "--max-connections {limit} --max-devices {limit}; {conns} idle TCP per port, reopened when closed"
        ),
        tried: "legitimate clients from 127.0.0.1".into(),
        outcome: report.summary(),
        figure: format!(
            "attacker connections made {}; quiet: {quiet}",
            opened.load(Ordering::Relaxed)
        ),
        // Not a pass/fail of the hub: this documents the limit (see docs/reliability/abuse.md).
        pass: true,
    }
}
