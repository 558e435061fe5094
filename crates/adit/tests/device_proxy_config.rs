//! `adit device-proxy --config FILE` as a system service runs it (issue 17): a real hub, the
//! proxy as a child process configured by a TOML file only, and streams opened through the
//! hub. On SIGHUP the proxy reads the file again: an open stream goes on untouched, a name
//! added routes, and a name removed is refused for new streams.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adit_service::{ServiceClient, StreamOptions, TlsOptions};
use adit_testkit::{HubProcess, Running, tcp_server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");
const DEVICE: &str = "configured";

/// Says which server it is, then echoes.
fn serve_as(mut conn: TcpStream, me: &[u8]) {
    if conn.write_all(me).is_err() {
        return;
    }
    let mut buf = [0u8; 1024];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 || conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn server_one(conn: TcpStream) {
    serve_as(conn, b"one\n");
}

fn server_two(conn: TcpStream) {
    serve_as(conn, b"two\n");
}

fn write_config(path: &Path, connection_string: &str, ca: &Path, map: &[String]) {
    let map: Vec<String> = map.iter().map(|m| format!("{m:?}")).collect();
    let text = format!(
        "connection_string = {connection_string:?}\nca_file = {:?}\nmap = [{}]\n",
        ca.display().to_string(),
        map.join(", ")
    );
    std::fs::write(path, text).expect("config written");
}

/// Reads `stream` until its first line; the line.
async fn first_line(stream: &mut adit_service::ServiceStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("the target answers in time")
            .expect("read");
        assert!(n > 0, "ended after {got:?}");
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).trim().to_string()
}

async fn echoes(stream: &mut adit_service::ServiceStream, text: &[u8]) {
    stream.write_all(text).await.expect("write");
    let mut back = vec![0u8; text.len()];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(back, text);
}

/// Waits until the proxy's log (read line by line on a thread) has a line containing `what`.
fn wait_for_log(lines: &std::sync::mpsc::Receiver<String>, seen: &mut Vec<String>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l| l.contains(what)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "no log line with {what:?}; the proxy said:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// `adit device-proxy --config FILE` with `args` and `envs` (and no other ADIT_ variable but
/// the log level); its stdout and stderr lines come through the receiver.
fn start_proxy(
    config: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Running, std::sync::mpsc::Receiver<String>) {
    let mut proxy = Command::new(ADIT)
        .args(["device-proxy", "--config"])
        .arg(config)
        .args(args)
        .env("ADIT_LOG", "info")
        .env_remove("ADIT_DEVICE_CONNECTION_STRING")
        .env_remove("ADIT_CA_FILE")
        .env_remove("ADIT_CONFIG")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("device-proxy starts");
    let stderr = proxy.stderr.take().expect("stderr");
    let stdout = proxy.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    for out in [
        Box::new(stderr) as Box<dyn std::io::Read + Send>,
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (Running(proxy), lines)
}

fn service(hub: &HubProcess) -> ServiceClient {
    ServiceClient::from_connection_string(
        &hub.owner_connection_string(),
        &TlsOptions::with_ca_file(hub.ca_path()),
    )
    .expect("service client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_reloads_the_stream_map_and_open_streams_go_on() {
    let hub = HubProcess::start_on_free_ports(ADIT, &[]);
    let device_cs = hub.create_device(DEVICE);
    let (one, two) = (tcp_server(server_one), tcp_server(server_two));
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("device-proxy.toml");
    let one_map = format!("one=127.0.0.1:{one}");
    let two_map = format!("two=127.0.0.1:{two}");
    write_config(
        &config,
        &device_cs,
        &hub.ca_path(),
        std::slice::from_ref(&one_map),
    );

    // Configured by the file alone: no flag, no ADIT_ variable but the log level.
    let (proxy, lines) = start_proxy(&config, &[], &[]);
    let pid = proxy.0.id();
    let mut seen = Vec::new();
    wait_for_log(&lines, &mut seen, "connected to the hub");

    let service = service(&hub);
    let open = |name: &'static str| {
        let service = service.clone();
        async move {
            service
                .open_stream(DEVICE, name, &StreamOptions::default())
                .await
        }
    };
    let mut kept = open("one").await.expect("stream one");
    assert_eq!(first_line(&mut kept).await, "one");
    echoes(&mut kept, b"before the reload\n").await;
    assert!(open("two").await.is_err(), "two is not mapped yet");

    // Two added, one removed: the file is the whole map.
    write_config(
        &config,
        &device_cs,
        &hub.ca_path(),
        std::slice::from_ref(&two_map),
    );
    let hup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    wait_for_log(&lines, &mut seen, "stream map reloaded");

    let mut new = open("two").await.expect("stream two after the reload");
    assert_eq!(first_line(&mut new).await, "two");
    echoes(&mut new, b"new name\n").await;
    assert!(open("one").await.is_err(), "one is no longer mapped");
    echoes(&mut kept, b"the open stream goes on\n").await;

    // A file gone bad keeps the map in force, and says why.
    std::fs::write(&config, "map = [").expect("written");
    let hup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    wait_for_log(&lines, &mut seen, "cannot reload the stream map");
    let mut again = open("two").await.expect("stream two still routes");
    assert_eq!(first_line(&mut again).await, "two");
    echoes(&mut kept, b"still\n").await;
    assert!(
        !seen.iter().any(|l| l.contains("SharedAccessKey=")),
        "the connection string leaked into the log"
    );
    drop(proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_and_environment_variables_override_the_file() {
    let hub = HubProcess::start_on_free_ports(ADIT, &[]);
    let device_cs = hub.create_device(DEVICE);
    let (one, two) = (tcp_server(server_one), tcp_server(server_two));
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("device-proxy.toml");
    // The file names a hub that does not exist and maps only `one`.
    write_config(
        &config,
        "HostName=nowhere.invalid:1;DeviceId=configured;SharedAccessKey=AAAA",
        &hub.ca_path(),
        &[format!("one=127.0.0.1:{one}")],
    );
    let two_map = format!("two=127.0.0.1:{two}");
    let (_proxy, lines) = start_proxy(
        &config,
        &["--map", &two_map],
        &[("ADIT_DEVICE_CONNECTION_STRING", &device_cs)],
    );
    let mut seen = Vec::new();
    wait_for_log(&lines, &mut seen, "connected to the hub");
    let service = service(&hub);
    let mut two = service
        .open_stream(DEVICE, "two", &StreamOptions::default())
        .await
        .expect("the flag's map");
    assert_eq!(first_line(&mut two).await, "two");
    assert!(
        service
            .open_stream(DEVICE, "one", &StreamOptions::default())
            .await
            .is_err(),
        "the file's map is overridden by the flag's"
    );
}
