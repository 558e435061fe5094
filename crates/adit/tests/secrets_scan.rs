//! No secret in anything Adit writes. The real `adit` binary runs the suite's scenarios with
//! known keys and tokens: a hub (`--log-stdout`, debug logging), devices with good and wrong
//! keys, malformed tokens whose signature is a known marker, streams whose tokens are
//! captured, REST calls with bad tokens, `--help` with secrets in the environment, commands
//! with bad connection strings. Then everything the hub and the clients wrote (stdout,
//! stderr, the diagnostics log through `/adit/logs` and on disk, the registry database) is
//! scanned for every secret, whole or in pieces. The scanner's own tests plant secrets to
//! show that it finds them.

#[path = "secrets_scan/scanner.rs"]
mod scanner;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use adit_proto::resource::{encode_component, identity_uri};
use adit_proto::topic::StreamRequest;
use adit_proto::{ConnectionString, Key, SasToken};
use adit_testkit::{HubProcess, RawMqtt, echo_server, gateway_connect, https_client};
use futures_util::{SinkExt as _, StreamExt as _};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet, Publish, Subscribe, SubscribeFilter};
use scanner::Scanner;
use tokio_websockets::Message;

const ADIT: &str = env!("CARGO_BIN_EXE_adit");
const V: &str = "api-version=2021-04-12";

/// Everything one process or file wrote, named for the report.
#[derive(Debug, Default)]
struct Written(Vec<(String, String)>);

impl Written {
    fn add(&mut self, source: impl Into<String>, text: impl Into<String>) {
        self.0.push((source.into(), text.into()));
    }

    fn output(&mut self, source: &str, out: &Output) {
        self.add(
            format!("{source} (stdout)"),
            String::from_utf8_lossy(&out.stdout),
        );
        self.add(
            format!("{source} (stderr)"),
            String::from_utf8_lossy(&out.stderr),
        );
    }
}

fn random_key() -> Key {
    Key::from_bytes(&rand::random::<[u8; 32]>()).expect("32 bytes")
}

/// A base64 marker that looks like a signature (and is one, of nothing).
fn marker() -> String {
    random_key().to_base64().to_string()
}

/// The signature inside a SAS token, as its `sig` field carries it (percent-encoded).
fn signature_of(token: &str) -> String {
    token
        .split('&')
        .find_map(|f| f.strip_prefix("sig="))
        .map(|s| adit_proto::resource::decode_component(s).unwrap_or_else(|| s.to_string()))
        .expect("token has a sig")
}

/// `adit ARGS` beside the hub with `envs`, logging at debug level.
fn adit(hub: &HubProcess, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut all = vec![("ADIT_LOG", "debug")];
    all.extend_from_slice(envs);
    hub.cli(args, &all)
}

/// Runs `adit ARGS` (in `dir`) for at most `limit`, then kills it; returns what it wrote.
fn run_for(dir: &Path, args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Output {
    let mut child = Command::new(ADIT)
        .args(args)
        .current_dir(dir)
        .env_remove("ADIT_CONNECTION_STRING")
        .env_remove("ADIT_DEVICE_CONNECTION_STRING")
        .env_remove("ADIT_DATABASE_URL")
        .env_remove("ADIT_DATA_DIR")
        .env_remove("ADIT_CA_FILE")
        .env("ADIT_LOG", "debug")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("adit starts");
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Stopped as a user would (SIGTERM: its shutdown path logs too), then killed.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    child.wait_with_output().expect("output")
}

async fn rest(hub: &HubProcess, authorization: &str) -> u16 {
    https_client(&hub.ca_path())
        .get(format!("https://localhost:{}/devices?{V}", hub.addr.port()))
        .header("Authorization", authorization)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn raw_connect(
    hub: &HubProcess,
    client_id: &str,
    password: &str,
) -> Option<ConnectReturnCode> {
    let host = format!("localhost:{}", hub.addr.port());
    let mut c = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path()).await;
    c.connect(client_id, &format!("{host}/{client_id}/?{V}"), password, 60)
        .await
}

fn device_connection_string(out: &Output) -> ConnectionString {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("device connection string")
}

fn wait_connected(hub: &HubProcess, device: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = hub.cli(&["device", "show", device], &[]);
        let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if d["connectionState"] == "Connected" {
            return;
        }
        assert!(Instant::now() < deadline, "{device} never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Text of every file under `dir` (lossy), with its path.
fn files_under(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_anything_the_hub_and_clients_write() {
    let mut secrets = Scanner::default();
    let mut written = Written::default();

    // --help with every secret the environment can hold.
    let db_password = format!("pw{}", &marker()[..24].replace(['+', '/'], "x"));
    let db_url = format!("postgres://adit:{db_password}@127.0.0.1:9/adit");
    secrets.add("database password", &db_password);
    let env_key = random_key();
    let env_service = format!(
        "HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey={}",
        env_key.to_base64()
    );
    let env_device = format!(
        "HostName=localhost;DeviceId=d;SharedAccessKey={}",
        env_key.to_base64()
    );
    secrets.add("key in the environment", env_key.to_base64());
    let help_dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["--help"][..],
        &["hub", "--help"],
        &["device", "list", "--help"],
        &["device-proxy", "--help"],
        &["connect", "--help"],
        &["service-proxy", "--help"],
        &["logs", "--help"],
    ] {
        let out = run_for(
            help_dir.path(),
            args,
            &[
                ("ADIT_DATABASE_URL", &db_url),
                ("ADIT_CONNECTION_STRING", &env_service),
                ("ADIT_DEVICE_CONNECTION_STRING", &env_device),
            ],
            Duration::from_secs(10),
        );
        written.output(&format!("adit {}", args.join(" ")), &out);
    }
    // A hub whose database cannot be reached says so without its password (sqlx retries
    // for a while: in the background).
    let db_fails = tokio::task::spawn_blocking({
        let (dir, db_url) = (help_dir.path().to_path_buf(), db_url.clone());
        move || {
            run_for(
                &dir,
                &[
                    "hub",
                    "--data-dir",
                    "db-fails",
                    "--https-port",
                    "0",
                    "--mqtt-port",
                    "0",
                    "--admin-addr",
                    "127.0.0.1:0",
                ],
                &[("ADIT_DATABASE_URL", &db_url)],
                Duration::from_secs(60),
            )
        }
    });

    // The hub, logging everything it can.
    let hub = HubProcess::start_with_env(
        ADIT,
        &[
            "--https-port",
            "0",
            "--mqtt-port",
            "0",
            "--admin-addr",
            "127.0.0.1:0",
            "--log-stdout",
        ],
        &[("ADIT_LOG", "debug")],
    );
    let host = format!("localhost:{}", hub.addr.port());
    let owner: ConnectionString = hub.owner_connection_string().parse().expect("owner");
    secrets.add_whole("registered: owner connection string", owner.to_string());
    let policies = adit(&hub, &["policy", "list", "--show-keys"], &[]);
    assert!(policies.status.success());
    for line in String::from_utf8_lossy(&policies.stdout).lines() {
        if let Some(cs) = line
            .split_whitespace()
            .find_map(|w| w.parse::<ConnectionString>().ok())
            && let Some(key) = cs.key
        {
            secrets.add("registered: policy key", key.to_base64());
        }
    }
    let good = device_connection_string(&adit(&hub, &["device", "create", "good"], &[]));
    let other = device_connection_string(&adit(&hub, &["device", "create", "other"], &[]));
    let good_key = good.key.clone().expect("key");
    let other_key = other.key.clone().expect("key");
    secrets.add("registered: device key (good)", good_key.to_base64());
    secrets.add("registered: device key (other)", other_key.to_base64());
    secrets.add_whole("registered: device connection string", good.to_string());

    // A device with a wrong key retries for a while.
    let wrong_key = random_key();
    secrets.add("wrong device key", wrong_key.to_base64());
    let mut wrong = good.clone();
    wrong.key = Some(wrong_key.clone());
    let ca = hub.ca_path().display().to_string();
    let wrong_cs = wrong.to_string();
    let wrong_proxy = tokio::task::spawn_blocking({
        let dir = hub.workdir().to_path_buf();
        let ca = ca.clone();
        let mqtt_port = hub.mqtt_addr.port().to_string();
        move || {
            run_for(
                &dir,
                &[
                    "device-proxy",
                    "--target",
                    "127.0.0.1:9",
                    "--transport",
                    "mqtt",
                    "--mqtt-port",
                    &mqtt_port,
                ],
                &[
                    ("ADIT_DEVICE_CONNECTION_STRING", &wrong_cs),
                    ("ADIT_CA_FILE", &ca),
                ],
                Duration::from_secs(4),
            )
        }
    });

    // The good device behind a real device proxy, serving an echo server.
    let echo = echo_server();
    let good_cs = good.to_string();
    let good_proxy = tokio::task::spawn_blocking({
        let dir = hub.workdir().to_path_buf();
        let ca = ca.clone();
        move || {
            run_for(
                &dir,
                &["device-proxy", "--target", &format!("127.0.0.1:{echo}")],
                &[
                    ("ADIT_DEVICE_CONNECTION_STRING", &good_cs),
                    ("ADIT_CA_FILE", &ca),
                ],
                Duration::from_secs(25),
            )
        }
    });
    wait_connected(&hub, "good");

    // Stream A: this test is the service, the real device proxy the device. Its service
    // token is captured from the answer.
    let reply = https_client(&hub.ca_path())
        .post(format!(
            "https://{host}/twins/good/streams/ssh?api-version=2020-09-30"
        ))
        .header("Authorization", owner_token(&owner))
        .send()
        .await
        .expect("initiate");
    let header = |n: &str| {
        reply
            .headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_default()
    };
    let (url, token) = (
        header("iothub-streaming-url"),
        header("iothub-streaming-auth-token"),
    );
    assert!(!token.is_empty(), "stream A accepted");
    secrets.add("stream token (service half of stream A)", &token);
    let mut ws = gateway_connect(&url, &token, &hub.ca_path(), None)
        .await
        .expect("service half joins");
    ws.send(Message::binary(&b"hello"[..])).await.expect("send");
    let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo in time");
    assert!(matches!(echoed, Some(Ok(m)) if m.as_payload().as_ref() == b"hello"));
    let _ = ws.close().await;

    // Stream B: the real `adit connect` is the service, a raw device in this test the device.
    // Its device token is captured from the request topic.
    let mut device = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path()).await;
    let device_token = SasToken::sign(
        &identity_uri(&host, "other", None),
        &other_key,
        None,
        adit_hub::auth::unix_now() + 3600,
    );
    secrets.add("device signature (other)", signature_of(&device_token));
    assert_eq!(
        device
            .connect("other", &format!("{host}/other/?{V}"), &device_token, 60)
            .await,
        Some(ConnectReturnCode::Success)
    );
    let mut sub = Subscribe::new_many([SubscribeFilter::new(
        "$iothub/streams/POST/#".into(),
        QoS::AtMostOnce,
    )]);
    sub.pkid = 1;
    device.send(Packet::Subscribe(sub)).await;
    assert!(matches!(device.recv().await, Some(Packet::SubAck(_))));
    let connect = tokio::task::spawn_blocking({
        let dir = hub.workdir().to_path_buf();
        move || {
            let mut child = Command::new(ADIT)
                .args(["connect", "other", "--connect-timeout", "10"])
                .current_dir(&dir)
                .env_remove("ADIT_CONNECTION_STRING")
                .env_remove("ADIT_DATA_DIR")
                .env_remove("ADIT_CA_FILE")
                .env("ADIT_LOG", "debug")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("adit connect starts");
            let mut stdin = child.stdin.take().expect("stdin");
            let _ = stdin.write_all(b"ping\n");
            drop(stdin);
            child.wait_with_output().expect("adit connect ends")
        }
    });
    let request = match tokio::time::timeout(Duration::from_secs(20), device.recv()).await {
        Ok(Some(Packet::Publish(p))) => StreamRequest::parse(&p.topic).expect("stream request"),
        other => panic!("expected a stream request, got {other:?}"),
    };
    secrets.add("stream token (device half of stream B)", &request.auth);
    let mut ws = gateway_connect(&request.url, &request.auth, &hub.ca_path(), None)
        .await
        .expect("device half joins");
    device
        .send(Packet::Publish(Publish::new(
            format!("$iothub/streams/res/200/?$rid={}", request.rid),
            QoS::AtMostOnce,
            Vec::new(),
        )))
        .await;
    let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("data in time");
    assert!(matches!(got, Some(Ok(m)) if m.as_payload().as_ref() == b"ping\n"));
    ws.send(Message::binary(&b"pong\n"[..]))
        .await
        .expect("send");
    let _ = ws.close().await;
    let out = connect.await.expect("adit connect");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pong\n");
    written.output("adit connect other", &out);

    // Bad CONNECTs whose signatures are known markers.
    let sr = encode_component(&identity_uri(&host, "good", None));
    let mut bad_tokens = Vec::new();
    for shape in [
        "sr={sr}&sig={sig}&se=notanumber",
        "sr={sr}&sig={sig}&se=1&unknown=1",
        "sr={sr}&sig={sig}&se=1&noequals",
        "sr={sr}&sig={sig}&se=1&skn=%ZZ",
        "sr={sr}&sig={sig}&se=4102444800",
        "sr={sr}&sig={sig}&se=4102444800 trailing",
        "sr={sr}&sig={sig}&sig={sig}&se=1",
    ] {
        let sig = marker();
        secrets.add(format!("marker signature ({shape})"), &sig);
        let token = format!(
            "SharedAccessSignature {}",
            shape
                .replace("{sr}", &sr)
                .replace("{sig}", &encode_component(&sig))
        );
        secrets.add_whole(format!("malformed token ({shape})"), &token);
        bad_tokens.push(token);
    }
    // Real signatures that fail for other reasons: expired, for a device that does not exist,
    // signed with the wrong key.
    for (what, device, key, expiry) in [
        ("expired token (good)", "good", &good_key, 1_000_000),
        (
            "token for an unknown device",
            "ghost",
            &good_key,
            4_102_444_800,
        ),
        (
            "token signed with the wrong key",
            "good",
            &wrong_key,
            4_102_444_800,
        ),
    ] {
        let token = SasToken::sign(&identity_uri(&host, device, None), key, None, expiry);
        secrets.add(format!("signature of the {what}"), signature_of(&token));
        secrets.add_whole(what, &token);
        bad_tokens.push(token);
    }
    for token in &bad_tokens {
        let code = raw_connect(&hub, "good", token).await;
        assert!(
            code.is_some_and(|c| c != ConnectReturnCode::Success),
            "{code:?} for {token}"
        );
    }
    // An unknown device (its own client id), and a huge client id full of control characters.
    let ghost = &bad_tokens[bad_tokens.len() - 2];
    assert_eq!(
        raw_connect(&hub, "ghost", ghost).await,
        Some(ConnectReturnCode::NotAuthorized)
    );
    let forged = format!(
        "x\n2099-01-01T00:00:00Z  INFO forged line\x1b[2J{}",
        "y".repeat(60_000)
    );
    assert_eq!(
        raw_connect(&hub, &forged, &bad_tokens[0]).await,
        Some(ConnectReturnCode::BadClientId)
    );

    // REST calls with bad tokens.
    for token in &bad_tokens {
        let service = token.replace(&sr, &encode_component(&host)) + "&skn=iothubowner";
        assert_eq!(rest(&hub, &service).await, 401, "{service}");
        assert_eq!(rest(&hub, token).await, 401, "{token}");
    }
    let wrong_owner = SasToken::sign(&host, &wrong_key, Some("iothubowner"), 4_102_444_800);
    secrets.add(
        "signature of a wrong owner token",
        signature_of(&wrong_owner),
    );
    assert_eq!(rest(&hub, &wrong_owner).await, 401);
    let bearer = marker();
    secrets.add("garbage Authorization", &bearer);
    assert_eq!(rest(&hub, &format!("Bearer {bearer}")).await, 401);

    // The CLI with bad connection strings.
    let cli_key = random_key();
    secrets.add("key in a bad connection string", cli_key.to_base64());
    let b64 = cli_key.to_base64();
    for cs in [
        format!("HostName={host};SharedAccessKeyName=iothubowner;SharedAccessKey:{b64}"),
        format!("HostName={host};SharedAccessKeyName=iothubowner;SharedAccessKey={b64}"),
        format!("HostName={host};SharedAccessKeyName=iothubowner;SharedAccessKey={b64}!!"),
        format!("HostName={host};SharedAccessKeyName=iothubowner;{b64}"),
        format!("HostName={host};DeviceId=good;SharedAccessKey={b64}"),
        format!("HostName={host};SharedAccessKeyName=iothubowner;SharedAccessKey={b64};{b64}=x"),
    ] {
        let out = adit(&hub, &["device", "list", "--connection-string", &cs], &[]);
        assert!(!out.status.success(), "{cs}");
        written.output(&format!("adit device list with {cs:?}"), &out);
        let out = adit(
            &hub,
            &["connect", "good", "--connect-timeout", "1"],
            &[("ADIT_CONNECTION_STRING", &cs)],
        );
        written.output(&format!("adit connect with {cs:?}"), &out);
        let out = run_for(
            hub.workdir(),
            &["device-proxy", "--target", "127.0.0.1:9"],
            &[
                ("ADIT_DEVICE_CONNECTION_STRING", &cs),
                ("ADIT_CA_FILE", &ca),
            ],
            Duration::from_secs(3),
        );
        written.output(&format!("adit device-proxy with {cs:?}"), &out);
    }

    let out = db_fails.await.expect("task");
    assert!(
        !out.status.success(),
        "the hub cannot start without its database"
    );
    written.output("adit hub with an unreachable database", &out);
    written.output(
        "device-proxy with a wrong key",
        &wrong_proxy.await.expect("task"),
    );
    written.output("device-proxy (good)", &good_proxy.await.expect("task"));

    // The records, as any registryRead holder reads them.
    let read = hub.cli(&["policy", "list", "--show-keys"], &[]);
    let read_cs = String::from_utf8_lossy(&read.stdout)
        .split_whitespace()
        .find(|w| w.contains("SharedAccessKeyName=registryRead"))
        .map(str::to_string)
        .expect("registryRead connection string");
    for category in ["Authentication", "Connections", "DeviceStreams"] {
        let out = adit(
            &hub,
            &[
                "logs",
                "--json",
                "--limit",
                "10000",
                "--category",
                category,
                "--connection-string",
                &read_cs,
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        written.output(&format!("adit logs --category {category}"), &out);
    }
    let auth_records = String::from_utf8_lossy(
        &adit(
            &hub,
            &[
                "logs",
                "--json",
                "--limit",
                "10000",
                "--category",
                "Authentication",
            ],
            &[],
        )
        .stdout,
    )
    .lines()
    .count();
    assert!(
        auth_records >= bad_tokens.len(),
        "the failures were recorded: {auth_records}"
    );

    let mut hub = hub;
    assert!(hub.stop().success());
    written.add("hub stderr", hub.log());
    // The first start prints the owner connection string on purpose (documented); nothing
    // after the banner may.
    let stdout = hub.stdout();
    let after_banner = stdout.strip_prefix(hub.banner.as_str()).unwrap_or(&stdout);
    assert!(!hub.banner.is_empty() && stdout.starts_with(hub.banner.as_str()));
    written.add("hub stdout after the banner", after_banner);
    let mut files = Vec::new();
    files_under(&hub.data_dir().join("logs"), &mut files);
    assert!(!files.is_empty(), "the diagnostics log is on disk");
    for (path, text) in files {
        written.add(path, text);
    }

    // What was scanned holds what the scenarios should have left: the scan is not vacuous.
    let text_of = |source: &str| -> String {
        written
            .0
            .iter()
            .filter(|(s, _)| s.starts_with(source))
            .map(|(_, t)| t.as_str())
            .collect()
    };
    for (source, expected) in [
        ("hub stderr", "CONNECT refused"),
        ("hub stderr", "service authentication failed"),
        ("hub stdout after the banner", "\"Authentication\""),
        ("device-proxy with a wrong key", "refused"),
        ("adit hub with an unreachable database", "error"),
        ("adit hub --help", "ADIT_DATABASE_URL"),
        ("adit logs --category Authentication", "token"),
    ] {
        assert!(
            text_of(source).contains(expected),
            "{source} should mention {expected:?}:\n{}",
            text_of(source)
        );
    }

    // Scan.
    let mut found = Vec::new();
    for (source, text) in &written.0 {
        found.extend(secrets.scan(source, text));
    }
    // The registry holds the registered keys, and nothing else that is secret.
    let mut db = Vec::new();
    files_under(&hub.data_dir(), &mut db);
    for (path, text) in db.iter().filter(|(p, _)| p.contains("registry")) {
        found.extend(secrets.without("registered").scan(path, text));
    }
    assert!(
        found.is_empty(),
        "secrets found in what Adit wrote:\n{}",
        found.join("\n")
    );

    // Log hygiene: remote text escaped and bounded, no Option debris, no panic.
    for (source, text) in &written.0 {
        assert!(!text.contains("panicked"), "{source} panicked:\n{text}");
        assert!(!text.contains('\x1b'), "{source} holds an escape character");
        assert!(
            !text.contains("forged line\n") || !text.contains("\nforged"),
            "{source}"
        );
        for line in text.lines() {
            assert!(
                !line.contains("=None") && !line.contains("=Some("),
                "{source}: {line}"
            );
            assert!(
                !line.starts_with("2099-01-01T00:00:00Z"),
                "{source}: a forged log line: {line}"
            );
            assert!(line.len() < 4096, "{source}: a {}-byte line", line.len());
        }
    }
}

fn owner_token(owner: &ConnectionString) -> String {
    SasToken::sign(
        &owner.host_name(),
        owner.key.as_ref().expect("owner key"),
        owner.key_name.as_deref(),
        adit_hub::auth::unix_now() + 3600,
    )
}

/// async-nats logs the URL it connects to, password included, at debug: with `ADIT_LOG=debug`
/// the hub's log must still not hold the NATS password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_password_stays_out_of_debug_logs() {
    let db = adit_testkit::TestDatabase::create().await;
    // Letters and digits only: it goes into a URL as it is.
    let password: String = marker()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let nats = adit_testkit::nats_url().replacen("nats://", &format!("nats://adit:{password}@"), 1);
    let node = format!("secrets-{}", &password[..12]);
    let mut hub = HubProcess::start_with_env(
        ADIT,
        &[
            "--database-url",
            &db.url,
            "--nats-url",
            &nats,
            "--node-id",
            &node,
        ]
        .into_iter()
        .chain(adit_testkit::FREE_PORTS)
        .collect::<Vec<_>>(),
        &[("ADIT_LOG", "debug")],
    );
    let log = hub.log();
    assert!(log.contains("joined the cluster"), "{log}");
    assert!(log.contains("DEBUG"), "debug logging is on");
    assert!(!log.contains(&password), "the NATS password is in the log");
    hub.stop();
    db.drop_database().await;
}
