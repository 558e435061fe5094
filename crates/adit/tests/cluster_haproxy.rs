//! Three `adit hub` processes sharing one PostgreSQL registry and one NATS server, behind a
//! real HAProxy (TCP mode) for both the MQTT and the HTTPS port: a device-proxy and the
//! service reach the nodes only through HAProxy. The node holding the device is killed with
//! SIGKILL: the device is back through HAProxy on another node within 5 s, the registry shows
//! it there, and a new stream works.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, Running, TestDatabase, echo_server};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn nats_url() -> String {
    std::env::var("ADIT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// `connection_string` with its HostName's port replaced by `port`.
fn via_port(connection_string: &str, port: u16) -> String {
    connection_string
        .split(';')
        .map(|part| match part.split_once('=') {
            Some(("HostName", _)) => format!("HostName=localhost:{port}"),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

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
        flags_a.extend(
            [
                "--https-port",
                "0",
                "--mqtt-port",
                "0",
                "--admin-addr",
                "127.0.0.1:0",
            ]
            .map(String::from),
        );
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
            flags.extend(
                [
                    "--https-port",
                    "0",
                    "--mqtt-port",
                    "0",
                    "--admin-addr",
                    "127.0.0.1:0",
                ]
                .map(String::from),
            );
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
        let out = self.cli(&["device", "show", device]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["connectionState"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Which node's log says `device` connected most recently after `skip` lines each.
    fn holder(&self, device: &str, seen: &[usize]) -> Option<usize> {
        let needle = format!("device={device}");
        (0..self.nodes.len()).find(|&i| {
            self.nodes[i]
                .log()
                .lines()
                .skip(seen[i])
                .any(|l| l.contains("device connected") && l.contains(&needle))
        })
    }
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

/// One stream: `adit connect DEVICE` through HAProxy, a line sent and its echo read back.
fn echo_once(cluster: &Cluster, device: &str, line: &str) -> Result<(), String> {
    let mut child = Running(
        Command::new(ADIT)
            .args(["connect", device])
            .env("ADIT_CONNECTION_STRING", &cluster.owner)
            .env("ADIT_CA_FILE", &cluster.ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("adit connect starts"),
    );
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

fn device_proxy(cluster: &Cluster, connection_string: &str, target: u16, log: &Path) -> Running {
    Running(
        Command::new(ADIT)
            .args(["device-proxy", "--target", &format!("127.0.0.1:{target}")])
            .args(["--mqtt-port", &cluster.mqtt.to_string()])
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
    let _proxy = device_proxy(&cluster, &cs, echo_server(), &logs.path().join("proxy.log"));

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
    let seen: Vec<usize> = cluster
        .nodes
        .iter()
        .map(|n| n.log().lines().count())
        .collect();
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
    drop(cluster);
    runtime.block_on(db.drop_database());
}
