//! Failed authentication never locks out valid clients at the same address (field case 18 in
//! its general form), while the failing identity, the flood of unknown identities and the bad
//! REST tokens are still throttled. Everything here comes from 127.0.0.1, as from one NAT.
//!
//! Prints the valid devices' connect latency with and without the flood:
//! `cargo test -p adit-hub --test auth_throttle -- --nocapture`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adit_hub::throttle::ThrottleConfig;
use adit_proto::Key;
use adit_testkit::{RawMqtt, TestHub, device_token, https_client};
use reqwest::StatusCode;
use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Login, Packet};
use serde_json::Value;

const VALID_DEVICES: usize = 100;
const V: &str = "api-version=2021-04-12";

/// How each flood fared: attempts, and those answered "throttled".
#[derive(Debug, Default)]
struct Tally {
    attempts: AtomicU64,
    throttled: AtomicU64,
}

impl Tally {
    fn add(&self, throttled: bool) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if throttled {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(&self) -> (u64, u64) {
        (
            self.attempts.load(Ordering::Relaxed),
            self.throttled.load(Ordering::Relaxed),
        )
    }
}

/// One CONNECT on a fresh connection; the CONNACK code (`None`: closed without one).
async fn connect_once(hub: &TestHub, client_id: &str, password: &str) -> Option<ConnectReturnCode> {
    let mut c = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path).await;
    c.connect(client_id, &hub.username(client_id), password, 60)
        .await
}

/// Connects `ids` all at once with their valid keys and returns each one's latency (TCP,
/// TLS, CONNECT to CONNACK), failing the test if any is refused.
async fn connect_all(hub: &Arc<TestHub>, devices: &[(String, Key)]) -> Vec<Duration> {
    let tasks: Vec<_> = devices
        .iter()
        .cloned()
        .map(|(id, key)| {
            let hub = hub.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut c = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path).await;
                let token = device_token(&hub.host_name(), &id, &key);
                let code = c.connect(&id, &hub.username(&id), &token, 60).await;
                let took = started.elapsed();
                assert_eq!(code, Some(ConnectReturnCode::Success), "{id} refused");
                c.send(Packet::Disconnect).await;
                took
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.push(t.await.expect("device task"));
    }
    latencies.sort();
    latencies
}

fn summary(latencies: &[Duration]) -> String {
    let at = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.95),
        at(1.0)
    )
}

async fn rest_status(hub: &TestHub, token: &str) -> StatusCode {
    https_client(&hub.ca_path)
        .get(format!("{}/devices?{V}", hub.base_url()))
        .header("Authorization", token)
        .send()
        .await
        .expect("request sent")
        .status()
}

/// Runs `attempt` in a loop until `stop`, tallying its answers.
fn flood<F, Fut>(
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
    attempt: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let (stop, tally) = (stop.clone(), tally.clone());
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            tally.add(attempt(n).await);
            n += 1;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_failures_at_one_address_never_refuses_valid_clients_there() {
    // The default limits, with a shorter penalty so that the flood keeps coming.
    let hub = Arc::new(
        TestHub::start_with(|c| {
            c.auth_throttle = ThrottleConfig {
                penalty: Duration::from_millis(200),
                ..ThrottleConfig::default()
            };
        })
        .await,
    );
    let limits = ThrottleConfig::default();
    let mut devices = Vec::new();
    for i in 0..VALID_DEVICES {
        let id = format!("valid-{i}");
        let key = hub.create_device(&id).await;
        devices.push((id, key));
    }
    // The device whose old instance keeps retrying with a replaced key.
    let revoked_key = hub.create_device("revoked").await;
    let wrong = Key::from_bytes(&[7u8; 32]).expect("valid key");
    let owner = hub.owner_token();

    // Without a flood.
    let quiet = connect_all(&hub, &devices).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (bad_sig, unknown, garbage, rest) = (
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
    );
    let mut floods = Vec::new();
    // A device retrying with a revoked key, from four connections at once.
    for _ in 0..4 {
        let (hub, wrong) = (hub.clone(), wrong.clone());
        floods.push(flood(&stop, &bad_sig, move |_| {
            let (hub, wrong) = (hub.clone(), wrong.clone());
            async move {
                let token = device_token(&hub.host_name(), "revoked", &wrong);
                let code = connect_once(&hub, "revoked", &token).await;
                assert_ne!(code, Some(ConnectReturnCode::Success));
                code == Some(ConnectReturnCode::ServiceUnavailable)
            }
        }));
    }
    // Well-formed CONNECTs for devices that do not exist (registry lookups).
    for f in 0..2 {
        let (hub, wrong) = (hub.clone(), wrong.clone());
        floods.push(flood(&stop, &unknown, move |n| {
            let (hub, wrong) = (hub.clone(), wrong.clone());
            async move {
                let id = format!("ghost-{f}-{n}");
                let token = device_token(&hub.host_name(), &id, &wrong);
                let code = connect_once(&hub, &id, &token).await;
                assert_ne!(code, Some(ConnectReturnCode::Success));
                code == Some(ConnectReturnCode::ServiceUnavailable)
            }
        }));
    }
    // Garbage: bad client ids, passwords that are not tokens, no login at all.
    {
        let hub = hub.clone();
        floods.push(flood(&stop, &garbage, move |n| {
            let hub = hub.clone();
            async move {
                let mut c = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path).await;
                let code = match n % 3 {
                    0 => c.connect("bad id\n", "x", "y", 60).await,
                    1 => c.connect("d", &hub.username("d"), "not a token", 60).await,
                    _ => {
                        let mut connect = Connect::new("d");
                        connect.login = None::<Login>;
                        c.send(Packet::Connect(connect)).await;
                        match c.recv().await {
                            Some(Packet::ConnAck(ack)) => Some(ack.code),
                            _ => None,
                        }
                    }
                };
                assert_ne!(code, Some(ConnectReturnCode::Success));
                code == Some(ConnectReturnCode::ServiceUnavailable)
            }
        }));
    }
    // Bad REST tokens: garbage, and the owner policy with a wrong key.
    for kind in 0..2 {
        let (hub, wrong) = (hub.clone(), wrong.clone());
        floods.push(flood(&stop, &rest, move |_| {
            let (hub, wrong) = (hub.clone(), wrong.clone());
            async move {
                let token = match kind {
                    0 => "SharedAccessSignature garbage".to_string(),
                    _ => hub.token("iothubowner", &wrong, adit_hub::auth::unix_now() + 60),
                };
                let status = rest_status(&hub, &token).await;
                assert!(
                    status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
                    "{status}"
                );
                status == StatusCode::TOO_MANY_REQUESTS
            }
        }));
    }

    // Let every flood pass its limit before the valid clients come.
    let deadline = Instant::now() + Duration::from_secs(60);
    while [&bad_sig, &unknown, &garbage, &rest]
        .iter()
        .any(|t| t.get().1 == 0)
    {
        assert!(
            Instant::now() < deadline,
            "a flood was never throttled: bad signatures {:?}, unknown {:?}, garbage {:?}, REST {:?}",
            bad_sig.get(),
            unknown.get(),
            garbage.get(),
            rest.get()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Every valid device connects, and the service API answers, during the flood.
    let service = {
        let (hub, owner) = (hub.clone(), owner.clone());
        tokio::spawn(async move {
            for _ in 0..20 {
                assert_eq!(rest_status(&hub, &owner).await, StatusCode::OK);
            }
        })
    };
    let flooded = connect_all(&hub, &devices).await;
    service.await.expect("service calls");
    // Even the throttled identity passes with a valid key, from the same address.
    assert_eq!(
        connect_once(
            &hub,
            "revoked",
            &device_token(&hub.host_name(), "revoked", &revoked_key)
        )
        .await,
        Some(ConnectReturnCode::Success)
    );

    stop.store(true, Ordering::Relaxed);
    for f in floods {
        f.await.expect("flood task");
    }
    let (sig_n, sig_t) = bad_sig.get();
    let (unk_n, unk_t) = unknown.get();
    let (gar_n, gar_t) = garbage.get();
    let (rest_n, rest_t) = rest.get();
    println!(
        "{VALID_DEVICES} valid devices from 127.0.0.1, connecting at once:\n  \
         without a flood: {}\n  during the flood: {}\n\
         flood from 127.0.0.1 (attempts / answered throttled): bad signatures {sig_n}/{sig_t}, \
         unknown devices {unk_n}/{unk_t}, garbage {gar_n}/{gar_t}, bad REST tokens {rest_n}/{rest_t}",
        summary(&quiet),
        summary(&flooded)
    );
    // The failing identity is throttled once past its limit, not before.
    assert!(sig_n > u64::from(limits.max_failures));
    assert!(sig_n - sig_t >= u64::from(limits.max_failures));
    assert!(
        flooded.last().is_some_and(|l| *l < Duration::from_secs(10)),
        "{}",
        summary(&flooded)
    );

    // Every failure counted; throttled ones recorded sparsely, and the records say so.
    let records = hub
        .log_records("category=Authentication&limit=10000", |_| true)
        .await;
    let properties = |r: &Value| -> Value {
        serde_json::from_str(r["properties"].as_str().unwrap_or("{}")).unwrap_or_default()
    };
    let revoked: Vec<Value> = records
        .iter()
        .map(properties)
        .filter(|p| p["identity"] == "revoked")
        .collect();
    let throttled_records = revoked
        .iter()
        .filter(|p| p["throttledAttempts"].is_u64())
        .count();
    assert!(
        throttled_records >= 1,
        "the throttled attempts are recorded"
    );
    let expected_max = limits.max_failures as usize + 1 + (sig_t as usize) / 100 + 1;
    assert!(
        revoked.len() <= expected_max,
        "throttled attempts are recorded sparsely: {} records for {sig_n} attempts",
        revoked.len()
    );
    assert!(
        records.iter().any(|r| r["resultDescription"]
            .as_str()
            .is_some_and(|d| d.starts_with("throttled"))),
        "throttled records say so"
    );
}

#[tokio::test]
async fn a_throttled_failure_is_answered_after_the_penalty_and_a_valid_one_at_once() {
    let penalty = Duration::from_millis(800);
    let hub = TestHub::start_with(|c| {
        c.auth_throttle = ThrottleConfig {
            max_failures: 2,
            max_unknown: 2,
            penalty,
            ..ThrottleConfig::default()
        }
    })
    .await;
    let key = hub.create_device("d1").await;
    let wrong = Key::from_bytes(&[3u8; 32]).expect("valid");
    let bad = device_token(&hub.host_name(), "d1", &wrong);
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(
            connect_once(&hub, "d1", &bad).await,
            Some(ConnectReturnCode::NotAuthorized)
        );
        assert!(
            started.elapsed() < penalty,
            "counted failures are answered at once"
        );
    }
    let started = Instant::now();
    assert_eq!(
        connect_once(&hub, "d1", &bad).await,
        Some(ConnectReturnCode::ServiceUnavailable)
    );
    assert!(started.elapsed() >= penalty, "throttled after the penalty");
    let started = Instant::now();
    let good = device_token(&hub.host_name(), "d1", &key);
    assert_eq!(
        connect_once(&hub, "d1", &good).await,
        Some(ConnectReturnCode::Success)
    );
    assert!(
        started.elapsed() < penalty,
        "a valid credential waits for nothing"
    );

    // REST counts apart: the MQTT failures throttle no REST request, and vice versa.
    assert_eq!(rest_status(&hub, "bad").await, StatusCode::UNAUTHORIZED);
    assert_eq!(rest_status(&hub, "bad").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        rest_status(&hub, "bad").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(rest_status(&hub, &hub.owner_token()).await, StatusCode::OK);
    let other = device_token(&hub.host_name(), "ghost", &wrong);
    assert_eq!(
        connect_once(&hub, "ghost", &other).await,
        Some(ConnectReturnCode::NotAuthorized),
        "MQTT's own budget for unknown identities is untouched by REST's"
    );
}
