//! The identifier policy end to end, through a real hub: ids drawn from the whole allowed
//! alphabet are created through the REST registry, connect over MQTT (both transports) with the
//! connection string the registry hands out, and carry a stream whose name is drawn from the
//! whole stream-name alphabet, data round-tripping through the gateway. Ids Azure forbids are
//! refused at creation with a message that says why.
//!
//! The cases: a fixed set that puts every allowed character in an id, a module id and a stream
//! name (at the start, in the middle and at the end, and at full length), then a seeded random
//! sample from proptest's strategies. About 10 devices, a few seconds.

use std::time::Duration;

use adit_device::{DeviceClient, DeviceOptions, Transport};
use adit_proto::id::{ID_SPECIALS, MAX_ID_LEN};
use adit_proto::stream_name::{MAX_STREAM_NAME_LEN, STREAM_NAME_SPECIALS};
use adit_proto::{ConnectionString, DeviceId, ErrorCode, ModuleId};
use adit_service::{
    Error as ServiceError, RegistryClient, ServiceClient, StreamOptions, TlsOptions,
};
use adit_testkit::TestHub;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Random cases on top of the fixed ones.
const SAMPLED: usize = 4;

#[derive(Debug, Clone)]
struct Case {
    device: String,
    module: Option<String>,
    stream: String,
}

fn alphabet(specials: &str) -> Vec<char> {
    ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(specials.chars())
        .collect()
}

/// `len` characters cycling through `chars` from `start`.
fn cycle(chars: &[char], start: usize, len: usize) -> String {
    chars.iter().cycle().skip(start).take(len).collect()
}

fn fixed_cases() -> Vec<Case> {
    let ids = alphabet(ID_SPECIALS);
    let names = alphabet(STREAM_NAME_SPECIALS);
    let specials: Vec<char> = ID_SPECIALS.chars().collect();
    let name_specials: Vec<char> = STREAM_NAME_SPECIALS.chars().collect();
    vec![
        // Field case 14.
        Case {
            device: "sensor?1".into(),
            module: None,
            stream: "ssh".into(),
        },
        // Every special, each between letters.
        Case {
            device: "a-b.c%d_e*f?g!h(i)j,k:l=m@n$o'p".into(),
            module: None,
            stream: STREAM_NAME_SPECIALS.into(),
        },
        // Specials only, starting with '?' and '%' (a raw '%41' that is not an escape).
        Case {
            device: format!("?%41{}", ID_SPECIALS),
            module: Some(format!(
                "{}?",
                ID_SPECIALS.chars().rev().collect::<String>()
            )),
            stream: format!("{}x", name_specials.iter().rev().collect::<String>()),
        },
        // Full length, the whole alphabet.
        Case {
            device: cycle(&ids, 0, MAX_ID_LEN),
            module: Some(cycle(&specials, 3, MAX_ID_LEN)),
            stream: cycle(&names, 0, MAX_STREAM_NAME_LEN),
        },
        Case {
            device: cycle(&ids, 62, MAX_ID_LEN),
            module: None,
            stream: cycle(&names, 62, MAX_STREAM_NAME_LEN),
        },
    ]
}

fn sampled_cases() -> Vec<Case> {
    let id = proptest::collection::vec(
        proptest::sample::select(alphabet(ID_SPECIALS)),
        1..=MAX_ID_LEN,
    )
    .prop_map(|c| c.into_iter().collect::<String>());
    let name = proptest::collection::vec(
        proptest::sample::select(alphabet(STREAM_NAME_SPECIALS)),
        1..=MAX_STREAM_NAME_LEN,
    )
    .prop_map(|c| c.into_iter().collect::<String>());
    let case =
        (id.clone(), proptest::option::of(id), name).prop_map(|(device, module, stream)| Case {
            device,
            module,
            stream,
        });
    // Deterministic: the same sample on every run, so a failure reproduces.
    let mut runner = TestRunner::deterministic();
    (0..SAMPLED)
        .map(|_| case.new_tree(&mut runner).expect("a value").current())
        .collect()
}

fn tls(hub: &TestHub) -> TlsOptions {
    TlsOptions::with_ca_file(&hub.ca_path)
}

fn options(hub: &TestHub, transport: Transport) -> DeviceOptions {
    let mut o = DeviceOptions::default();
    o.tls = tls(hub);
    o.transport = transport;
    o.mqtt_port = hub.mqtt_addr.port();
    o.min_backoff = Duration::from_millis(100);
    o.max_backoff = Duration::from_millis(500);
    o
}

/// Accepts the one stream named `name` and echoes it until EOF.
fn serve(mut client: DeviceClient, name: String) -> tokio::task::JoinHandle<Result<(), String>> {
    tokio::spawn(async move {
        let request = client.next_request().await.ok_or("no request")?;
        if request.name() != name {
            let got = request.name().to_string();
            let _ = request.reject().await;
            return Err(format!("stream name arrived as {got:?}, sent {name:?}"));
        }
        let mut stream = request.accept().await.map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        stream
            .read_to_end(&mut got)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(&got).await.map_err(|e| e.to_string())?;
        stream.shutdown().await.map_err(|e| e.to_string())?;
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        client.shutdown().await;
        Ok(())
    })
}

async fn run_case(
    hub: &TestHub,
    registry: &RegistryClient,
    service: &ServiceClient,
    i: usize,
    case: &Case,
) {
    let device = registry
        .create_device(&case.device)
        .await
        .unwrap_or_else(|e| panic!("{case:?}: create: {e}"));
    assert_eq!(device.device_id, case.device);
    // The registry hands the id back intact, and so does a lookup by it.
    let looked_up = registry.get_device(&case.device).await.expect("get");
    assert_eq!(looked_up.device_id, case.device);
    let cs = registry
        .device_connection_string(&device)
        .expect("connection string");
    let mut parsed: ConnectionString = cs.parse().expect("the string the registry gave parses");
    assert_eq!(
        parsed.device_id.as_ref().map(DeviceId::as_str),
        Some(case.device.as_str())
    );
    // A module connects with its device's key.
    parsed.module_id = case
        .module
        .as_deref()
        .map(|m| ModuleId::new(m).expect("valid module id"));
    let transport = if i.is_multiple_of(2) {
        Transport::Tls
    } else {
        Transport::WebSocket
    };
    let mut client = DeviceClient::new(&parsed.to_string(), options(hub, transport))
        .unwrap_or_else(|e| panic!("{case:?}: client: {e}"));
    tokio::time::timeout(Duration::from_secs(10), client.connected())
        .await
        .unwrap_or_else(|_| panic!("{case:?}: never connected over {transport:?}"));
    let device_task = serve(client, case.stream.clone());

    let mut o = StreamOptions::default();
    o.module = case.module.clone();
    o.connect_timeout = Duration::from_secs(5);
    let mut stream = service
        .open_stream(&case.device, &case.stream, &o)
        .await
        .unwrap_or_else(|e| panic!("{case:?}: open_stream: {e}"));
    let payload = format!("through the gateway for {} / {}", case.device, case.stream);
    stream.write_all(payload.as_bytes()).await.expect("write");
    stream.shutdown().await.expect("half-close");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.expect("reply");
    let _ = stream.close().await;
    assert_eq!(reply, payload.as_bytes(), "{case:?}");
    device_task
        .await
        .expect("device task")
        .unwrap_or_else(|e| panic!("{case:?}: {e}"));
    registry.delete_device(&case.device).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_allowed_character_round_trips_end_to_end() {
    let hub = TestHub::start().await;
    let owner = hub.owner.to_string();
    let registry = RegistryClient::from_connection_string(&owner, &tls(&hub)).expect("registry");
    let service = ServiceClient::from_connection_string(&owner, &tls(&hub)).expect("service");

    let cases: Vec<Case> = fixed_cases().into_iter().chain(sampled_cases()).collect();
    // Every allowed character is in some id and some stream name.
    let ids: String = cases
        .iter()
        .flat_map(|c| [c.device.clone(), c.module.clone().unwrap_or_default()])
        .collect();
    for c in alphabet(ID_SPECIALS) {
        assert!(ids.contains(c), "no case puts {c:?} in an id");
    }
    let names: String = cases.iter().map(|c| c.stream.as_str()).collect();
    for c in alphabet(STREAM_NAME_SPECIALS) {
        assert!(names.contains(c), "no case puts {c:?} in a stream name");
    }

    for (i, case) in cases.iter().enumerate() {
        run_case(&hub, &registry, &service, i, case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_ids_and_names_are_refused_with_the_reason() {
    let hub = TestHub::start().await;
    let owner = hub.owner.to_string();
    let registry = RegistryClient::from_connection_string(&owner, &tls(&hub)).expect("registry");
    let long = "a".repeat(MAX_ID_LEN + 1);
    let cases: &[(&str, &str)] = &[
        ("a/b", "'/', which is not allowed"),
        ("a b", "' ' (a space), which is not allowed"),
        ("über", "'ü': non-ASCII characters are not allowed"),
        (&long, "129 characters long; the limit is 128"),
        ("a+b", "'+', which new ids may not hold"),
        ("a#b", "'#', which new ids may not hold"),
        ("a;b", "';', which new ids may not hold"),
    ];
    for (id, says) in cases {
        match registry.create_device(id).await {
            Err(ServiceError::Config(message)) => {
                assert!(message.contains(says), "{id}: {message}")
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    // The hub refuses too, for a client that does not check first.
    for id in ["a+b", "a#b", "a;b"] {
        let id = DeviceId::new(id).expect("parses as an older id");
        let body = adit_service::Device {
            device_id: id.to_string(),
            ..Default::default()
        };
        match registry.put_device(&id, &body, None).await {
            Err(e @ ServiceError::Hub { .. }) => {
                assert_eq!(e.code(), Some(ErrorCode::ArgumentInvalid));
                assert!(e.to_string().contains("which new ids may not hold"), "{e}");
            }
            other => panic!("{id}: {other:?}"),
        }
    }

    let service = ServiceClient::from_connection_string(&owner, &tls(&hub)).expect("service");
    registry.create_device("d").await.expect("created");
    for (name, says) in [
        ("über", "'ü': non-ASCII characters are not allowed"),
        ("a/b", "'/', which is not allowed"),
        ("a+b", "MQTT topic wildcard"),
        ("", "stream name is empty"),
    ] {
        match service
            .open_stream("d", name, &StreamOptions::default())
            .await
        {
            Err(ServiceError::Config(message)) => {
                assert!(message.contains(says), "{name}: {message}");
                assert!(
                    name.is_empty()
                        || message.contains(adit_proto::stream_name::STREAM_NAME_ALPHABET),
                    "{message}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}
