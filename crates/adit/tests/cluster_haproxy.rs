//! Three `adit hub` processes sharing one PostgreSQL registry and one NATS server, behind a
//! real HAProxy (TCP mode) for both the MQTT and the HTTPS port.
//!
//! - Across nodes: a device on node A, a service calling node B, 10 MiB echoed byte-identical;
//!   the record, written by A, is read through node C; a second connection of the device on
//!   node C closes the one on A within 1 s; a key renewed through node B closes the device's
//!   session on node C within 1 s.
//! - Through HAProxy: the node holding a device is killed with SIGKILL: the device is back on
//!   another node within 5 s and a new stream works; the dead node's presence is cleared (a
//!   device only it could hold shows Disconnected) and its open stream gets a `node_lost`
//!   record.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, Running, TestDatabase, echo_server, free_port, nats_url, via_port};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");

struct Cluster {
    nodes: Vec<HubProcess>,
    /// Node names, for the logs.
    names: Vec<String>,
    _dirs: Vec<tempfile::TempDir>,
    _haproxy: Running,
    ca: PathBuf,
    /// The owner connection string pointed at HAProxy's HTTPS frontend.
    owner: String,
    https: u16,
    mqtt: u16,
}

impl Cluster {
    fn start(database_url: &str) -> Self {
        let run = uuid_like();
        let names: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|n| format!("{n}-{run}"))
            .collect();
        let node_flags = |name: &str| {
            vec![
                "--database-url".to_string(),
                database_url.to_string(),
                "--nats-url".to_string(),
                nats_url(),
                "--node-id".to_string(),
                name.to_string(),
            ]
        };
        let mut flags_a = node_flags(&names[0]);
        flags_a.extend(adit_testkit::FREE_PORTS.map(String::from));
        let a = HubProcess::start_with_env(
            ADIT,
            &flags_a.iter().map(String::as_str).collect::<Vec<_>>(),
            &[("ADIT_LOG", "info")],
        );
        let ca = a.ca_path();
        // One CA for every node (as a deployment would), so a client that HAProxy sends to
        // any node trusts it; each node issues its own certificate from it.
        let mut nodes = vec![a];
        let mut dirs = Vec::new();
        for name in &names[1..] {
            let dir = tempfile::tempdir().expect("temp dir");
            let tls = dir.path().join("tls");
            std::fs::create_dir_all(&tls).expect("tls dir");
            for f in ["ca.pem", "ca-key.pem"] {
                std::fs::copy(ca.with_file_name(f), tls.join(f)).expect("copy CA");
            }
            let mut flags = node_flags(name);
            flags.extend(["--data-dir".to_string(), dir.path().display().to_string()]);
            flags.extend(adit_testkit::FREE_PORTS.map(String::from));
            nodes.push(HubProcess::start_with_env(
                ADIT,
                &flags.iter().map(String::as_str).collect::<Vec<_>>(),
                &[("ADIT_LOG", "info")],
            ));
            dirs.push(dir);
        }
        let (https, mqtt) = (free_port(), free_port());
        let cfg = dirs[0].path().join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_config(&nodes, https, mqtt)).expect("haproxy config");
        let haproxy = Running(
            Command::new("haproxy")
                .args(["-db", "-f"])
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("haproxy (Debian package haproxy) starts"),
        );
        wait_for_port(https);
        wait_for_port(mqtt);
        let owner = via_port(&nodes[0].owner_connection_string(), https);
        Self {
            nodes,
            names,
            _dirs: dirs,
            _haproxy: haproxy,
            ca,
            owner,
            https,
            mqtt,
        }
    }

    /// `adit ARGS` as a service through HAProxy.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(ADIT)
            .args(args)
            .env("ADIT_CONNECTION_STRING", &self.owner)
            .env("ADIT_CA_FILE", &self.ca)
            .env_remove("ADIT_DATA_DIR")
            .output()
            .expect("adit runs")
    }

    fn connection_state(&self, device: &str) -> String {
        state_of(&self.cli(&["device", "show", device]))
    }

    fn connection_state_on(&self, i: usize, device: &str) -> String {
        state_of(&self.cli_on(i, &["device", "show", device]))
    }
}

fn state_of(out: &std::process::Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["connectionState"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

impl Cluster {
    /// Which node's log says `device` connected, after `seen[i]` lines of node i's.
    fn holder(&self, device: &str, seen: &[usize]) -> Option<usize> {
        (0..self.nodes.len())
            .find(|&i| logged(&self.nodes[i], seen[i], "device connected peer=", device))
    }

    /// Each node's log length in lines now.
    fn log_lengths(&self) -> Vec<usize> {
        self.nodes.iter().map(|n| n.log().lines().count()).collect()
    }

    /// `adit ARGS` as a service calling node `i` directly.
    fn cli_on(&self, i: usize, args: &[&str]) -> std::process::Output {
        Command::new(ADIT)
            .args(args)
            .env("ADIT_CONNECTION_STRING", self.owner_on(i))
            .env("ADIT_CA_FILE", &self.ca)
            .env_remove("ADIT_DATA_DIR")
            .output()
            .expect("adit runs")
    }

    /// The owner connection string pointed at node `i`'s HTTPS port.
    fn owner_on(&self, i: usize) -> String {
        via_port(&self.owner, self.nodes[i].addr.port())
    }
}

/// Whether `node`'s log, past its first `skip` lines, has a line with `message` about `device`.
fn logged(node: &HubProcess, skip: usize, message: &str, device: &str) -> bool {
    let needle = format!("device={device} ");
    node.log()
        .lines()
        .skip(skip)
        .any(|l| l.contains(message) && l.contains(&needle))
}

/// When `node` logged its first line with `message` about `device` past `skip` lines: the
/// line's own RFC 3339 timestamp, so the time between two nodes' events is measured by the
/// nodes, not by this test's polling.
fn logged_at(node: &HubProcess, skip: usize, message: &str, device: &str) -> time::OffsetDateTime {
    let needle = format!("device={device} ");
    let line = node
        .log()
        .lines()
        .skip(skip)
        .find(|l| l.contains(message) && l.contains(&needle))
        .map(str::to_string)
        .expect("the line is there");
    let stamp = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    time::OffsetDateTime::parse(&stamp, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("no timestamp in {line:?}: {e}"))
}

/// Polls `done` every 10 ms for up to `limit`; returns how long it took.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    )
}

fn haproxy_config(nodes: &[HubProcess], https: u16, mqtt: u16) -> String {
    let servers = |port: fn(&HubProcess) -> u16| {
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "  server n{i} 127.0.0.1:{} check inter 500ms fall 1 rise 1\n",
                    port(n)
                )
            })
            .collect::<String>()
    };
    format!(
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 1h\n  timeout server 1h\n  retries 3\n  option redispatch\n\
         frontend https\n  bind 127.0.0.1:{https}\n  default_backend https_nodes\n\
         backend https_nodes\n  balance roundrobin\n{}\
         frontend mqtt\n  bind 127.0.0.1:{mqtt}\n  default_backend mqtt_nodes\n\
         backend mqtt_nodes\n  balance roundrobin\n{}",
        servers(|n| n.addr.port()),
        servers(|n| n.mqtt_addr.port()),
    )
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `adit connect DEVICE` as the service with `owner` (a connection string naming HAProxy or a
/// node), its stdin and stdout piped.
fn connect(cluster: &Cluster, owner: &str, device: &str) -> Running {
    Running(
        Command::new(ADIT)
            .args(["connect", device])
            .env("ADIT_CONNECTION_STRING", owner)
            .env("ADIT_CA_FILE", &cluster.ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("adit connect starts"),
    )
}

/// One stream: `adit connect DEVICE` through HAProxy, a line sent and its echo read back.
fn echo_once(cluster: &Cluster, device: &str, line: &str) -> Result<(), String> {
    let mut child = connect(cluster, &cluster.owner, device);
    let mut stdin = child.0.stdin.take().expect("stdin");
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut got = String::new();
        let _ = BufReader::new(stdout).read_line(&mut got);
        let _ = tx.send(got);
    });
    stdin
        .write_all(format!("{line}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let got = rx
        .recv_timeout(Duration::from_secs(15))
        .map_err(|_| "no echo within 15 s".to_string())?;
    if got.trim_end() == line {
        Ok(())
    } else {
        Err(format!("echoed {got:?}"))
    }
}

/// `adit device-proxy` to `target`: over MQTT/TLS to port `mqtt` (a node's, or HAProxy's
/// MQTT frontend), or with `None` over WebSocket to the connection string's HostName port
/// (HAProxy's HTTPS frontend).
fn device_proxy(
    cluster: &Cluster,
    connection_string: &str,
    mqtt: Option<u16>,
    target: u16,
    log: &Path,
) -> Running {
    let transport: Vec<String> = match mqtt {
        Some(port) => vec![
            "--transport".into(),
            "mqtt".into(),
            "--mqtt-port".into(),
            port.to_string(),
        ],
        None => Vec::new(),
    };
    Running(
        Command::new(ADIT)
            .args(["device-proxy", "--target", &format!("127.0.0.1:{target}")])
            .args(&transport)
            .env("ADIT_DEVICE_CONNECTION_STRING", connection_string)
            .env("ADIT_CA_FILE", &cluster.ca)
            .env("ADIT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("device-proxy starts"),
    )
}

#[test]
fn three_nodes_behind_haproxy_survive_the_kill_of_the_node_holding_the_device() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(TestDatabase::create());
    let mut cluster = Cluster::start(&db.url);
    let device = format!("dev-{}", uuid_like());
    let out = cluster.cli(&["device", "create", &device]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cs = via_port(String::from_utf8_lossy(&out.stdout).trim(), cluster.https);
    let logs = tempfile::tempdir().expect("temp dir");
    let _proxy = device_proxy(
        &cluster,
        &cs,
        Some(cluster.mqtt),
        echo_server(),
        &logs.path().join("proxy.log"),
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.connection_state(&device) != "Connected" {
        assert!(Instant::now() < deadline, "the device never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Streams through HAProxy: the service's requests land on any node.
    for i in 0..3 {
        echo_once(&cluster, &device, &format!("before-{i}")).expect("stream before the kill");
    }

    let none = vec![0; 3];
    let held_by = cluster
        .holder(&device, &none)
        .expect("a node logged the device");
    // A second device only the doomed node can hold (its proxy dials that node, not
    // HAProxy), and a stream open through that node when it dies.
    let stranded = format!("stranded-{}", uuid_like());
    let out = cluster.cli(&["device", "create", &stranded]);
    assert!(out.status.success());
    let stranded_cs = via_port(String::from_utf8_lossy(&out.stdout).trim(), cluster.https);
    let _stranded_proxy = device_proxy(
        &cluster,
        &stranded_cs,
        Some(cluster.nodes[held_by].mqtt_addr.port()),
        echo_server(),
        &logs.path().join("stranded.log"),
    );
    wait_for(
        Duration::from_secs(30),
        "the stranded device connected",
        || cluster.connection_state(&stranded) == "Connected",
    );
    let mut open = connect(&cluster, &cluster.owner, &device);
    let mut open_in = open.0.stdin.take().expect("stdin");
    let mut open_out = BufReader::new(open.0.stdout.take().expect("stdout"));
    open_in.write_all(b"open\n").expect("write");
    let mut line = String::new();
    open_out.read_line(&mut line).expect("echo");
    assert_eq!(line, "open\n", "the stream is open");

    let seen = cluster.log_lengths();
    let killed_at = Instant::now();
    cluster.nodes[held_by].crash();
    let back = loop {
        if let Some(i) = cluster.holder(&device, &seen)
            && i != held_by
        {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(15),
            "the device did not come back on another node; proxy log:\n{}",
            std::fs::read_to_string(logs.path().join("proxy.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "node {} killed; the device was back on another node after {:.2} s",
        cluster.names[held_by],
        back.as_secs_f64()
    );
    assert!(back < Duration::from_secs(5), "back after {back:?}");
    assert_eq!(cluster.connection_state(&device), "Connected");
    echo_once(&cluster, &device, "after").expect("a new stream after the kill");

    // The dead node's presence is cleared once its lease has gone unrenewed for 6 s (looked
    // at every 2 s): the device only it held shows Disconnected, and the stream it relayed
    // has a node_lost record, readable through any node.
    let cleared = wait_for(
        Duration::from_secs(15),
        "the stranded device cleared",
        || cluster.connection_state(&stranded) == "Disconnected",
    );
    eprintln!(
        "the dead node's device shown Disconnected {:.1} s after the kill",
        (killed_at.elapsed()).as_secs_f64()
    );
    let _ = cleared;
    wait_for(Duration::from_secs(10), "a node_lost record", || {
        let out = cluster.cli(&[
            "logs",
            "--outcome",
            "node_lost",
            "--device",
            &device,
            "--json",
        ]);
        String::from_utf8_lossy(&out.stdout).lines().count() == 1
    });
    drop(open);
    drop(cluster);
    runtime.block_on(db.drop_database());
}

/// `adit connect DEVICE` through node `via`'s HTTPS port: `data` sent, everything echoed back
/// read until the stream ends.
fn echo_bytes(cluster: &Cluster, via: usize, device: &str, data: Vec<u8>) -> Vec<u8> {
    let mut child = connect(cluster, &cluster.owner_on(via), device);
    let mut stdin = child.0.stdin.take().expect("stdin");
    let mut stdout = child.0.stdout.take().expect("stdout");
    let writer = std::thread::spawn(move || {
        stdin.write_all(&data).expect("write");
        // Dropping stdin half-closes the stream; the echo target then closes its side.
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut got);
        let _ = tx.send(got);
    });
    let got = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the stream ended within 60 s");
    writer.join().expect("writer");
    got
}

#[test]
fn three_nodes_stream_across_nodes_take_over_and_renew_keys_across_nodes() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(TestDatabase::create());
    let cluster = Cluster::start(&db.url);
    let (a, b, c) = (0, 1, 2);
    let device = format!("cross-{}", uuid_like());
    let out = cluster.cli_on(b, &["device", "create", &device]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cs = via_port(String::from_utf8_lossy(&out.stdout).trim(), cluster.https);
    let logs = tempfile::tempdir().expect("temp dir");
    let echo = echo_server();

    // The device on node A; the service calls node B.
    let mut on_a = device_proxy(
        &cluster,
        &cs,
        Some(cluster.nodes[a].mqtt_addr.port()),
        echo,
        &logs.path().join("a.log"),
    );
    wait_for(
        Duration::from_secs(30),
        "device connected to node A",
        || logged(&cluster.nodes[a], 0, "device connected peer=", &device),
    );
    const TOTAL: usize = 10 * 1024 * 1024;
    let sent: Vec<u8> = (0..TOTAL).map(|i| (i * 31 % 251) as u8).collect();
    let got = echo_bytes(&cluster, b, &device, sent.clone());
    assert_eq!(got.len(), TOTAL, "all 10 MiB came back");
    assert!(got == sent, "byte-identical");

    // Node A relayed it and wrote its record; node C shows it (it asks the others).
    let record = wait_for(Duration::from_secs(10), "the record through node C", || {
        let out = cluster.cli_on(c, &["logs", "--device", &device, "--json"]);
        String::from_utf8_lossy(&out.stdout).lines().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            let p: serde_json::Value =
                serde_json::from_str(v["properties"].as_str().unwrap_or("{}")).unwrap_or_default();
            p["bytesServiceToDevice"] == TOTAL as u64 && p["bytesDeviceToService"] == TOTAL as u64
        })
    });
    eprintln!("record visible through node C after {record:?}");
    let out = cluster.cli_on(c, &["streams", "show"]);
    let endpoints: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        endpoints["streamingEndpoints"].as_array().map(Vec::len),
        Some(3),
        "every node's endpoint: {endpoints}"
    );

    // A second connection of the device on node C: node A closes its session within 1 s.
    let seen = cluster.log_lengths();
    let _on_c = device_proxy(
        &cluster,
        &cs,
        Some(cluster.nodes[c].mqtt_addr.port()),
        echo,
        &logs.path().join("c.log"),
    );
    wait_for(
        Duration::from_secs(30),
        "device connected to node C",
        || {
            logged(
                &cluster.nodes[c],
                seen[c],
                "device connected peer=",
                &device,
            )
        },
    );
    let closed = wait_for(
        Duration::from_secs(5),
        "node A closed the old session",
        || logged(&cluster.nodes[a], seen[a], "device disconnected", &device),
    );
    // The first proxy would reconnect and take the device back: it is done.
    let _ = on_a.0.kill();
    let _ = closed;
    let took = logged_at(&cluster.nodes[a], seen[a], "device disconnected", &device)
        - logged_at(
            &cluster.nodes[c],
            seen[c],
            "device connected peer=",
            &device,
        );
    eprintln!("takeover: node A closed its session {took} after node C accepted the new one");
    assert!(took < time::Duration::seconds(1), "closed after {took}");
    assert!(
        logged(
            &cluster.nodes[a],
            seen[a],
            "another connection with the same client id took over",
            &device
        ),
        "node A says why"
    );

    // Wait until the device is settled on node C (the killed proxy may have won a last
    // round), then renew its key through node B: node C closes the session within 1 s.
    wait_for(
        Duration::from_secs(30),
        "the device settled on node C",
        || {
            let seen_now = cluster.log_lengths();
            std::thread::sleep(Duration::from_millis(1500));
            let quiet = (0..3).all(|i| {
                !logged(
                    &cluster.nodes[i],
                    seen_now[i],
                    "device connected peer=",
                    &device,
                ) && !logged(
                    &cluster.nodes[i],
                    seen_now[i],
                    "device disconnected",
                    &device,
                )
            });
            quiet && cluster.connection_state_on(b, &device) == "Connected"
        },
    );
    let seen = cluster.log_lengths();
    let out = cluster.cli_on(b, &["device", "renew-key", &device, "--key", "primary"]);
    let renewed = Instant::now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let holder = c;
    wait_for(
        Duration::from_secs(5),
        "the session closed after the renewal",
        || {
            logged(
                &cluster.nodes[holder],
                seen[holder],
                "the key that signed the session's SAS token was replaced",
                &device,
            )
        },
    );
    let took = renewed.elapsed();
    eprintln!("key renewed through node B: node C closed the session after {took:?}");
    assert!(took < Duration::from_secs(1), "closed after {took:?}");
    drop(cluster);
    runtime.block_on(db.drop_database());
}
