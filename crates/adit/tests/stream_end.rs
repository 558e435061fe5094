//! How a stream's end reaches `adit connect` (ssh's ProxyCommand) and the device proxy: a real
//! `adit hub`, a real `adit device-proxy` child, and `adit connect` with its stdin held open and
//! idle, as ssh holds it while it waits for output.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, Running, echo_server, tcp_server};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");
const DEVICE: &str = "dev1";
/// Generous for a loaded machine; the behaviour under test is "seconds, not forever".
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Says goodbye and closes, as sshd does when the session ends.
fn say_bye(mut conn: std::net::TcpStream) {
    let _ = conn.write_all(b"bye\n");
}

/// A hub with device `dev1` served by `adit device-proxy --target 127.0.0.1:PORT`, its log in
/// `log`.
fn hub_and_device_proxy(target_port: u16, log: &Path) -> (HubProcess, Running) {
    hub_with_flags_and_device_proxy(&[], &[], target_port, log)
}

/// Like [`hub_and_device_proxy`], with `adit hub` flags.
fn hub_with_flags_and_device_proxy(
    hub_flags: &[&str],
    proxy_flags: &[&str],
    target_port: u16,
    log: &Path,
) -> (HubProcess, Running) {
    let hub = HubProcess::start_on_free_ports(ADIT, hub_flags);
    let out = hub.cli(&["device", "create", DEVICE], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let log = std::fs::File::create(log).expect("log file");
    let proxy = Command::new(ADIT)
        .args([
            "device-proxy",
            "--target",
            &format!("127.0.0.1:{target_port}"),
        ])
        .args(proxy_flags)
        .env("ADIT_DEVICE_CONNECTION_STRING", &cs)
        .env("ADIT_CA_FILE", hub.ca_path())
        .env("ADIT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("device-proxy starts");
    let proxy = Running(proxy);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = hub.cli(&["device", "show", DEVICE], &[]);
        let device: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if device["connectionState"] == "Connected" {
            return (hub, proxy);
        }
        assert!(Instant::now() < deadline, "device-proxy never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `adit connect dev1` with piped stdio; stdout is read on a thread, line by line.
struct Connect {
    child: Running,
    /// Held open and idle, as ssh does.
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::process::ChildStderr,
}

impl Connect {
    fn start(hub: &HubProcess) -> Self {
        Self::start_with(hub, &[])
    }

    fn start_with(hub: &HubProcess, flags: &[&str]) -> Self {
        let mut child = Command::new(ADIT)
            .args(["connect", DEVICE])
            .args(flags)
            .env("ADIT_CONNECTION_STRING", hub.owner_connection_string())
            .env("ADIT_CA_FILE", hub.ca_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("adit connect starts");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
                while let Some(i) = all.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = all.drain(..=i).collect();
                    let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                }
            }
        });
        Self {
            child: Running(child),
            stdin,
            lines,
            stderr,
        }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(EXIT_WITHIN)
            .expect("a line from adit connect")
    }

    /// Waits for the exit; `None` if it is still running after [`EXIT_WITHIN`].
    fn exit(&mut self) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        while started.elapsed() < EXIT_WITHIN {
            if let Some(status) = self.child.0.try_wait().expect("try_wait") {
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        let _ = self.stderr.read_to_string(&mut s);
        s
    }
}

/// A process stopped with SIGSTOP: its sockets stay open but nothing answers, as when a
/// network path dies without a FIN. Continued when dropped.
struct Frozen(u32);

impl Frozen {
    fn stop(pid: u32) -> Self {
        signal("-STOP", pid);
        Self(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

fn signal(which: &str, pid: u32) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} {pid}");
}

/// The first line of `log` containing `what`, waiting for it to appear.
fn log_line(log: &Path, what: &str) -> String {
    let deadline = Instant::now() + EXIT_WITHIN;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(what)) {
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "no {what:?} in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connect_exits_with_a_reason_soon_after_the_device_side_dies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (hub, mut proxy) = hub_and_device_proxy(echo_server(), &dir.path().join("dp.log"));
    let mut connect = Connect::start(&hub);
    let stdin = connect.stdin.as_mut().expect("stdin");
    stdin.write_all(b"hi\n").expect("write");
    stdin.flush().expect("flush");
    assert_eq!(connect.line(), "hi\n", "the stream works");

    // The device side goes away; stdin stays open and idle.
    proxy.0.kill().expect("kill the device proxy");
    let (status, after) = connect
        .exit()
        .expect("adit connect exits soon after the device proxy died, stdin still open");
    assert!(!status.success(), "a broken stream is a failure: {status}");
    let stderr = connect.stderr();
    let message = stderr.trim();
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    assert!(
        message.starts_with("error: stream to dev1 ended: stream failed: ")
            && message.contains("device disconnected"),
        "names why: {message}"
    );
    assert!(after < EXIT_WITHIN, "{after:?}");
    drop(hub);
}

#[test]
fn connect_exits_0_when_the_device_ends_the_stream_and_the_proxy_logs_it_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("dp.log");
    let (hub, _proxy) = hub_and_device_proxy(tcp_server(say_bye), &log);
    let mut connect = Connect::start(&hub);
    assert_eq!(connect.line(), "bye\n");
    let (status, _) = connect
        .exit()
        .expect("adit connect exits when the device ends the stream, stdin still open");
    assert!(status.success(), "a clean end is success: {status}");
    assert_eq!(connect.stderr(), "", "nothing to report");
    assert!(connect.stdin.is_some(), "stdin was held open throughout");

    // The device proxy saw a clean end, and counts the bytes it carried.
    let line = log_line(&log, "stream closed");
    assert!(line.contains("to_service=4"), "{line}");
    assert!(line.contains("from_service=0"), "{line}");
    assert!(!line.contains("error"), "{line}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("ended with an error"), "{text}");
    drop(hub);
}

#[test]
fn connect_gives_up_on_a_hub_that_stops_answering_its_pings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (hub, _proxy) = hub_and_device_proxy(echo_server(), &dir.path().join("dp.log"));
    let mut connect = Connect::start_with(&hub, &["--ping-interval", "1", "--pong-timeout", "1"]);
    let stdin = connect.stdin.as_mut().expect("stdin");
    stdin.write_all(b"hi\n").expect("write");
    stdin.flush().expect("flush");
    assert_eq!(connect.line(), "hi\n", "the stream works");

    let frozen = Frozen::stop(hub.pid());
    let (status, after) = connect
        .exit()
        .expect("adit connect gives a silent hub up, stdin still open");
    drop(frozen);
    assert!(
        !status.success(),
        "a dead connection is a failure: {status}"
    );
    assert_eq!(
        connect.stderr().trim(),
        "error: stream to dev1 ended: stream failed: no pong from the peer within 1 s of a ping: connection lost"
    );
    // 1 s of silence, then 1 s for the pong: about 2 s after the echo, not before the ping.
    assert!(after >= Duration::from_millis(900), "{after:?}");
    drop(hub);
}

#[test]
fn service_proxy_logs_the_bytes_of_a_stream_that_broke() {
    // Raw streams (--raw): a multiplexed session would wait out the resume grace for the
    // device to come back (resume_netns.rs covers that).
    let dir = tempfile::tempdir().expect("temp dir");
    let (hub, mut device_proxy) = hub_and_device_proxy(echo_server(), &dir.path().join("dp.log"));
    let listen = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr")
    };
    let log = dir.path().join("sp.log");
    let service_proxy = Command::new(ADIT)
        .args([
            "service-proxy",
            "--raw",
            "--device",
            DEVICE,
            "--listen",
            &listen.to_string(),
        ])
        .env("ADIT_CONNECTION_STRING", hub.owner_connection_string())
        .env("ADIT_CA_FILE", hub.ca_path())
        .env("ADIT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("service-proxy starts");
    let _service_proxy = Running(service_proxy);
    let deadline = Instant::now() + EXIT_WITHIN;
    let mut tcp = loop {
        match std::net::TcpStream::connect(listen) {
            Ok(tcp) => break tcp,
            Err(e) => assert!(
                Instant::now() < deadline,
                "service-proxy never listened: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    tcp.set_read_timeout(Some(EXIT_WITHIN)).expect("timeout");
    tcp.write_all(b"hello\n").expect("write");
    let mut back = [0u8; 6];
    tcp.read_exact(&mut back).expect("echo");
    assert_eq!(&back, b"hello\n");

    device_proxy.0.kill().expect("kill the device proxy");
    let line = log_line(&log, "stream ended with an error");
    assert!(line.contains("to_device=6"), "{line}");
    assert!(line.contains("from_device=6"), "{line}");
    assert!(line.contains("device disconnected"), "{line}");
    drop(hub);
}

#[test]
fn the_hub_closes_a_stream_whose_device_proxy_is_suspended() {
    // The device side goes silent without closing anything (its process suspended, as on a
    // power cut or a dead network path): the hub's pings go unanswered and it closes the
    // stream, so `adit connect` ends with the reason.
    let dir = tempfile::tempdir().expect("temp dir");
    let (hub, proxy) = hub_with_flags_and_device_proxy(
        &["--ping-interval", "1", "--pong-timeout", "1"],
        &[],
        echo_server(),
        &dir.path().join("dp.log"),
    );
    let mut connect = Connect::start(&hub);
    let stdin = connect.stdin.as_mut().expect("stdin");
    stdin.write_all(b"hi\n").expect("write");
    stdin.flush().expect("flush");
    assert_eq!(connect.line(), "hi\n", "the stream works");

    let frozen = Frozen::stop(proxy.0.id());
    let (status, after) = connect
        .exit()
        .expect("the hub closes the stream of a suspended device proxy");
    drop(frozen);
    assert!(!status.success(), "{status}");
    let stderr = connect.stderr();
    assert!(
        stderr.contains("1001 device stopped responding"),
        "names why: {stderr}"
    );
    // 1 s of silence, then 1 s for the pong.
    assert!(after >= Duration::from_millis(1500), "{after:?}");
    drop(hub);
}

#[test]
fn sigterm_lets_a_stream_run_for_the_grace_then_closes_it_with_a_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut hub, _proxy) = hub_with_flags_and_device_proxy(
        &["--shutdown-grace", "3"],
        &[],
        echo_server(),
        &dir.path().join("dp.log"),
    );
    let mut connect = Connect::start(&hub);
    let stdin = connect.stdin.as_mut().expect("stdin");
    stdin.write_all(b"before\n").expect("write");
    stdin.flush().expect("flush");
    assert_eq!(connect.line(), "before\n");

    let sent = Instant::now();
    signal("-TERM", hub.pid());
    std::thread::sleep(Duration::from_millis(500));
    let stdin = connect.stdin.as_mut().expect("stdin");
    stdin.write_all(b"during the drain\n").expect("write");
    stdin.flush().expect("flush");
    assert_eq!(
        connect.line(),
        "during the drain\n",
        "streams run on during the grace"
    );

    let (status, _) = connect.exit().expect("closed when the grace is over");
    let closed_after = sent.elapsed();
    assert!(!status.success(), "{status}");
    let stderr = connect.stderr();
    assert!(stderr.contains("1001 hub shutting down"), "{stderr}");
    assert!(
        closed_after >= Duration::from_secs(3),
        "not before the grace: {closed_after:?}"
    );
    assert!(
        hub.stop().success(),
        "the hub exits cleanly after the drain"
    );

    // The stream's record was written during the drain, and kept.
    let log = std::fs::read_to_string(hub.data_dir().join("logs/diagnostics.jsonl"))
        .expect("diagnostics log");
    let record = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["category"] == "DeviceStreams")
        .filter_map(|r| {
            r["properties"]
                .as_str()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        })
        .find(|p| p["endReason"] == "hub_shutdown")
        .unwrap_or_else(|| panic!("no hub_shutdown record in:\n{log}"));
    assert_eq!(record["closedBy"], "hub");
    assert_eq!(record["bytesServiceToDevice"], 24);
}

/// Accepts and never reads, holding the connection open (a hung local service).
fn never_read(conn: std::net::TcpStream) {
    std::thread::sleep(Duration::from_secs(60));
    drop(conn);
}

#[test]
fn a_device_proxy_ends_a_stream_whose_local_target_stops_reading() {
    // The service keeps sending; the device's target takes nothing. The device proxy cannot
    // pass the bytes on, so it stops reading the stream (and the hub would give it up): it
    // ends the stream itself after its ping interval + pong timeout, rather than holding
    // both sockets until the target goes away.
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("dp.log");
    let (hub, _proxy) = hub_with_flags_and_device_proxy(
        &[],
        &["--ping-interval", "1", "--pong-timeout", "1"],
        tcp_server(never_read),
        &log,
    );
    let mut connect = Connect::start(&hub);
    let mut stdin = connect.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        let chunk = vec![0u8; 64 * 1024];
        while stdin.write_all(&chunk).is_ok() {}
    });
    let line = log_line(&log, "stream ended with an error");
    assert!(
        line.contains("stopped reading (took nothing for 2 s)"),
        "{line}"
    );
    let (status, _) = connect.exit().expect("adit connect ends with the stream");
    assert!(
        !status.success(),
        "a stream broken on the device side is a failure: {status}"
    );
    let stderr = connect.stderr();
    assert!(
        stderr.contains("1011 local side failed: it stopped reading"),
        "the service is told why: {stderr}"
    );
    drop(hub);
}

#[test]
fn a_stream_cut_by_a_hub_kill_is_recorded_as_node_lost_when_the_hub_starts_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (hub, _proxy) = hub_and_device_proxy(echo_server(), &dir.path().join("dp.log"));
    let mut connect = Connect::start(&hub);
    let stdin = connect.stdin.as_mut().expect("stdin");
    stdin.write_all(b"before\n").expect("write");
    stdin.flush().expect("flush");
    assert_eq!(connect.line(), "before\n");

    let hub = hub.crash_and_restart();
    let out = hub.cli(&["logs", "--outcome", "node_lost", "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(records.len(), 1, "one node_lost record: {records:?}");
    assert_eq!(records[0]["resultType"], "NodeLost");
    let props: serde_json::Value =
        serde_json::from_str(records[0]["properties"].as_str().expect("properties")).expect("JSON");
    assert_eq!(props["deviceId"], DEVICE);
    assert_eq!(props["outcome"], "node_lost");
    let _ = connect.exit();

    // Written once: a second start finds nothing left.
    let hub = hub.crash_and_restart();
    let out = hub.cli(&["logs", "--outcome", "node_lost", "--json"], &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}
