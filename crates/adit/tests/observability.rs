//! What an operator sees: one DeviceStreams record per stream through `adit logs --json`,
//! Prometheus counters that move by the right amounts, health, and streaming-endpoint discovery.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adit_service::{Error as ServiceError, ServiceClient, StreamOptions, TlsOptions};
use adit_testkit::echo_server;
use adit_testkit::{HubProcess, RawMqtt, Running, device_token, https_client};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Packet, Subscribe};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");

/// `adit device-proxy` for `device`, routing streams named `echo` to the echo server.
fn device_proxy(hub: &HubProcess, device: &str, echo_port: u16) -> Running {
    let out = hub.cli(&["device", "connection-string", device], &[]);
    let cs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let proxy = Command::new(ADIT)
        .args([
            "device-proxy",
            "--map",
            &format!("echo=127.0.0.1:{echo_port}"),
        ])
        .env("ADIT_DEVICE_CONNECTION_STRING", &cs)
        .env("ADIT_CA_FILE", hub.ca_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("device-proxy");
    Running(proxy)
}

fn cli_json_lines(hub: &HubProcess, args: &[&str]) -> Vec<Value> {
    let out = hub.cli(args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn properties(record: &Value) -> Value {
    serde_json::from_str(
        record["properties"]
            .as_str()
            .expect("properties is a JSON string"),
    )
    .expect("valid JSON")
}

/// `name{labels} value` lines of a Prometheus scrape.
async fn scrape(hub: &HubProcess) -> HashMap<String, f64> {
    let body = https_client(&hub.ca_path())
        .get(format!("http://{}/metrics", hub.admin_addr))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(f64::NAN)))
        .collect()
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_leaves_one_record_and_moves_the_counters() {
    let hub = HubProcess::start(ADIT);
    let echo_port = echo_server();
    for id in ["served", "silent", "away"] {
        assert!(hub.cli(&["device", "create", id], &[]).status.success());
    }
    let _proxy = device_proxy(&hub, "served", echo_port);
    // "silent" connects and subscribes but never answers.
    let silent_cs: adit_proto::ConnectionString = String::from_utf8_lossy(
        &hub.cli(&["device", "connection-string", "silent"], &[])
            .stdout,
    )
    .trim()
    .parse()
    .expect("valid");
    let silent_key = silent_cs.key.expect("key");
    let mut silent = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path()).await;
    let host_name = format!("localhost:{}", hub.addr.port());
    let token = device_token(&host_name, "silent", &silent_key);
    silent
        .connect(
            "silent",
            &format!("{host_name}/silent/?api-version=1"),
            &token,
            60,
        )
        .await;
    let mut sub = Subscribe::new("$iothub/streams/POST/#", QoS::AtMostOnce);
    sub.pkid = 1;
    silent.send(Packet::Subscribe(sub)).await;
    assert!(matches!(silent.recv().await, Some(Packet::SubAck(_))));

    let service = ServiceClient::from_connection_string(
        &hub.owner_connection_string(),
        &TlsOptions::with_ca_file(hub.ca_path()),
    )
    .expect("client");
    // Wait for the proxy to be connected.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut wait = StreamOptions::default();
    wait.connect_timeout = Duration::from_secs(10);
    let before = scrape(&hub).await;

    // Accepted: 1,000 bytes each way.
    let mut stream = loop {
        match service.open_stream("served", "echo", &wait).await {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => eprintln!("waiting for the proxy: {e}"),
            Err(e) => panic!("{e}"),
        }
    };
    stream.write_all(&[b'a'; 1000]).await.expect("write");
    stream.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await.expect("echo");
    assert_eq!(back.len(), 1000);
    let _ = stream.close().await;
    // Rejected (no route for that name), timed out, offline.
    assert!(matches!(
        service.open_stream("served", "nope", &wait).await,
        Err(ServiceError::Rejected(_))
    ));
    let mut quick = StreamOptions::default();
    quick.response_timeout = Duration::from_millis(500);
    assert!(matches!(
        service.open_stream("silent", "x", &quick).await,
        Err(ServiceError::TimedOut(_))
    ));
    assert!(matches!(
        service
            .open_stream("away", "x", &StreamOptions::default())
            .await,
        Err(ServiceError::DeviceOffline(_))
    ));
    // A refused token, for the authentication counter and log.
    let bad = https_client(&hub.ca_path())
        .get(format!(
            "https://localhost:{}/devices?api-version=1",
            hub.addr.port()
        ))
        .header(
            "Authorization",
            "SharedAccessSignature sr=localhost&sig=AAAA&se=9999999999&skn=iothubowner",
        )
        .send()
        .await;
    assert!(bad.is_ok());

    // Each outcome has exactly one record, found through `adit logs --json`.
    let expect = [
        ("served", "closed", "Success", "200", 1000u64),
        ("silent", "timed_out", "Timeout", "504", 0),
        ("away", "device_offline", "DeviceNotOnline", "404", 0),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    for (device, outcome, result, status, bytes) in expect {
        let records = loop {
            let r = cli_json_lines(
                &hub,
                &["logs", "--json", "--device", device, "--outcome", outcome],
            );
            if !r.is_empty() || Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(records.len(), 1, "{device} {outcome}: {records:?}");
        let r = &records[0];
        for key in [
            "time",
            "resourceId",
            "operationName",
            "category",
            "resultType",
            "resultDescription",
            "level",
            "durationMs",
            "properties",
            "location",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert_eq!(r["category"], "DeviceStreams");
        assert_eq!(r["operationName"], "invoke");
        assert_eq!(r["resultType"], result);
        let p = properties(r);
        assert_eq!(p["deviceId"], device);
        assert_eq!(p["statusCode"], status);
        assert_eq!(p["direction"], "c2d");
        assert_eq!(p["sdkVersion"], adit_service::API_VERSION);
        assert_eq!(p["bytesDeviceToService"], bytes);
        assert_eq!(p["bytesServiceToDevice"], bytes);
        if outcome == "closed" {
            assert_eq!(p["requestName"], "echo");
            assert!(p["handshakeMs"].is_u64());
            assert!(p["closedBy"].is_string());
        }
    }
    let rejected = cli_json_lines(&hub, &["logs", "--json", "--outcome", "rejected"]);
    assert_eq!(rejected.len(), 1);
    assert_eq!(properties(&rejected[0])["requestName"], "nope");
    let all_streams = cli_json_lines(&hub, &["logs", "--json"]);
    assert_eq!(all_streams.len(), 4, "one record per stream, no more");
    let connections = cli_json_lines(
        &hub,
        &[
            "logs",
            "--json",
            "--category",
            "Connections",
            "--device",
            "silent",
        ],
    );
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["operationName"], "deviceConnect");
    let auth = cli_json_lines(&hub, &["logs", "--json", "--category", "Authentication"]);
    assert!(!auth.is_empty());
    let future = cli_json_lines(&hub, &["logs", "--json", "--since", "2099-01-01T00:00:00Z"]);
    assert!(future.is_empty());
    let recent = cli_json_lines(&hub, &["logs", "--json", "--since", "1h"]);
    assert_eq!(recent.len(), 4);
    // The table form prints a header and one row per stream.
    let table = hub.cli(&["logs"], &[]);
    assert_eq!(String::from_utf8_lossy(&table.stdout).lines().count(), 5);

    // The counters moved by exactly these streams.
    let after = scrape(&hub).await;
    for (key, want) in [
        ("adit_streams_total{outcome=\"closed\"}", 1.0),
        ("adit_streams_total{outcome=\"rejected\"}", 1.0),
        ("adit_streams_total{outcome=\"timed_out\"}", 1.0),
        ("adit_streams_total{outcome=\"device_offline\"}", 1.0),
        (
            "adit_relayed_bytes_total{direction=\"device_to_service\"}",
            1000.0,
        ),
        (
            "adit_relayed_bytes_total{direction=\"service_to_device\"}",
            1000.0,
        ),
        ("adit_stream_setup_seconds_count", 1.0),
        ("adit_gateway_connections_total{role=\"service\"}", 1.0),
        (
            "adit_auth_failures_total{protocol=\"https\",reason=\"bad_signature\"}",
            1.0,
        ),
    ] {
        assert_eq!(delta(&before, &after, key), want, "{key}");
    }
    assert_eq!(after.get("adit_connected_devices"), Some(&2.0));
    assert_eq!(after.get("adit_active_streams"), Some(&0.0));

    let health = https_client(&hub.ca_path())
        .get(format!("http://{}/healthz", hub.admin_addr))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);

    let shown: Value =
        serde_json::from_slice(&hub.cli(&["streams", "show"], &[]).stdout).expect("JSON");
    assert_eq!(
        shown["streamingEndpoints"][0],
        format!("https://localhost:{}", hub.addr.port())
    );
}

/// `adit hub --max-streams-per-device 1`: a second stream to a device with one open is refused
/// with 429 ThrottlingException, and once the first ends the next one is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_limit_flags_reach_the_hub() {
    let hub = HubProcess::start_on_free_ports(ADIT, &["--max-streams-per-device", "1"]);
    let echo_port = echo_server();
    assert!(hub.cli(&["device", "create", "one"], &[]).status.success());
    let _proxy = device_proxy(&hub, "one", echo_port);
    let service = ServiceClient::from_connection_string(
        &hub.owner_connection_string(),
        &TlsOptions::with_ca_file(hub.ca_path()),
    )
    .expect("client");
    let mut wait = StreamOptions::default();
    wait.connect_timeout = Duration::from_secs(10);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut first = loop {
        match service.open_stream("one", "echo", &wait).await {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => eprintln!("waiting for the proxy: {e}"),
            Err(e) => panic!("{e}"),
        }
    };
    assert!(matches!(
        service.open_stream("one", "echo", &wait).await,
        Err(ServiceError::Throttled)
    ));
    first.write_all(b"ping").await.expect("write");
    let mut back = [0u8; 4];
    first.read_exact(&mut back).await.expect("echo");
    let _ = first.close().await;
    drop(first);
    // The slot is released when the hub sees the stream end.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match service.open_stream("one", "echo", &wait).await {
            Ok(_) => break,
            Err(ServiceError::Throttled) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// The alive-task gauge counts the hub's runtime tasks, rises with a connected device's
/// session and falls when it leaves (what the soak samples to spot a task leak).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_hubs_alive_tasks() {
    let hub = HubProcess::start(ADIT);
    let echo_port = echo_server();
    assert!(
        hub.cli(&["device", "create", "tasks"], &[])
            .status
            .success()
    );
    let gauge = |m: &HashMap<String, f64>| m.get("adit_tokio_alive_tasks").copied();
    let idle = gauge(&scrape(&hub).await).expect("adit_tokio_alive_tasks is exposed");
    assert!(idle >= 1.0, "a serving hub runs tasks: {idle}");
    let proxy = device_proxy(&hub, "tasks", echo_port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let connected = loop {
        let m = scrape(&hub).await;
        if m.get("adit_connected_devices") == Some(&1.0) {
            break gauge(&m).expect("gauge");
        }
        assert!(
            Instant::now() < deadline,
            "the device proxy did not connect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        connected > idle,
        "a device session adds tasks: {idle} -> {connected}"
    );
    drop(proxy);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = gauge(&scrape(&hub).await).expect("gauge");
        if now < connected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session's tasks did not end: {connected} connected, {now} after the device left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
