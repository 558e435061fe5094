//! Real OpenSSH through Adit: `adit hub`, `adit device-proxy` in front of Debian's sshd, and
//! `ssh`/`scp` through `adit connect` (ProxyCommand) and through `adit service-proxy`.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, Running, Sshd, free_port};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");
const DEVICE: &str = "sshbox";

struct Setup {
    hub: HubProcess,
    sshd: Sshd,
    device_proxy: Running,
}

impl Setup {
    fn start() -> Self {
        let sshd = Sshd::start();
        let hub = HubProcess::start(ADIT);
        let out = hub.cli(&["device", "create", DEVICE], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let device_cs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let device_proxy = Command::new(ADIT)
            .args([
                "device-proxy",
                "--target",
                &format!("127.0.0.1:{}", sshd.port),
            ])
            .env("ADIT_DEVICE_CONNECTION_STRING", &device_cs)
            .env("ADIT_CA_FILE", hub.ca_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("device-proxy starts");
        let setup = Self {
            hub,
            sshd,
            device_proxy: Running(device_proxy),
        };
        setup.wait_connected();
        setup
    }

    fn wait_connected(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.hub.cli(&["device", "show", DEVICE], &[]);
            let device: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if device["connectionState"] == "Connected" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "device-proxy never connected:\n{}",
                self.hub.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn env(&self) -> [(&'static str, String); 2] {
        [
            ("ADIT_CONNECTION_STRING", self.hub.owner_connection_string()),
            ("ADIT_CA_FILE", self.hub.ca_path().display().to_string()),
        ]
    }

    /// `ssh`/`scp` through `adit connect` as the ProxyCommand.
    fn via_proxy_command(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(self.sshd.client_options())
            .arg("-o")
            .arg(format!("ProxyCommand={ADIT} connect %h"))
            .args(args)
            .envs(self.env());
        cmd.output().expect("runs")
    }
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256(path: &Path) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut file = std::fs::File::open(path).expect("open");
    std::io::copy(&mut file, &mut hash).expect("read");
    hash.finalize().into()
}

#[test]
fn ssh_runs_a_command_through_adit_connect() {
    let s = Setup::start();
    let target = format!("{}@{DEVICE}", s.sshd.user);
    let out = s.via_proxy_command("ssh", &[&target, "echo adit-$((6*7))"]);
    assert_eq!(ok(&out, "ssh via ProxyCommand").trim(), "adit-42");
    // stdin is carried too, and its EOF reaches the remote command (half-close).
    let mut child = Command::new("ssh")
        .args(s.sshd.client_options())
        .arg("-o")
        .arg(format!("ProxyCommand={ADIT} connect %h"))
        .args([&target, "wc -c"])
        .envs(s.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&[b'x'; 100_000])
        .expect("write");
    let out = child.wait_with_output().expect("ssh ends");
    assert_eq!(ok(&out, "ssh with stdin").trim(), "100000");
}

#[test]
fn ssh_through_service_proxy() {
    let s = Setup::start();
    let port = free_port();
    let proxy = Command::new(ADIT)
        .args([
            "service-proxy",
            "--device",
            DEVICE,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .envs(s.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("service-proxy starts");
    let _proxy = Running(proxy);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "service-proxy did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new("ssh")
        .args(s.sshd.client_options())
        .args([
            "-p",
            &port.to_string(),
            &format!("{}@127.0.0.1", s.sshd.user),
            "echo via-service-proxy",
        ])
        .output()
        .expect("ssh runs");
    assert_eq!(
        ok(&out, "ssh via service-proxy").trim(),
        "via-service-proxy"
    );
}

#[test]
fn scp_200_mib_up_and_back() {
    let s = Setup::start();
    let dir = s.sshd.scratch();
    let original = dir.join("original.bin");
    {
        let mut f = std::fs::File::create(&original).expect("create");
        let mut chunk = vec![0u8; 1024 * 1024];
        for _ in 0..200 {
            rand::rng().fill_bytes(&mut chunk);
            f.write_all(&chunk).expect("write");
        }
    }
    let remote = dir.join("uploaded.bin");
    let back = dir.join("downloaded.bin");
    let target = |p: &Path| format!("{}@{DEVICE}:{}", s.sshd.user, p.display());
    let up = s.via_proxy_command(
        "scp",
        &["-q", &original.display().to_string(), &target(&remote)],
    );
    ok(&up, "scp up");
    let down = s.via_proxy_command(
        "scp",
        &["-q", &target(&remote), &back.display().to_string()],
    );
    ok(&down, "scp down");
    let want = sha256(&original);
    assert_eq!(sha256(&remote), want, "uploaded copy differs");
    assert_eq!(sha256(&back), want, "downloaded copy differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_device_proxy_ends_the_service_stream_with_an_error() {
    use tokio::io::AsyncReadExt as _;
    let mut s = Setup::start();
    let service = adit_service::ServiceClient::from_connection_string(
        &s.hub.owner_connection_string(),
        &adit_service::TlsOptions::with_ca_file(s.hub.ca_path()),
    )
    .expect("client");
    let mut stream = service
        .open_stream(DEVICE, "ssh", &adit_service::StreamOptions::default())
        .await
        .expect("stream to sshd");
    // sshd speaks first: its banner proves the tunnel is up.
    let mut banner = [0u8; 8];
    stream.read_exact(&mut banner).await.expect("banner");
    assert_eq!(&banner, b"SSH-2.0-");
    let _ = s.device_proxy.0.kill();
    let _ = s.device_proxy.0.wait();
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut rest))
        .await
        .expect("the stream ends promptly instead of hanging");
    assert!(
        read.is_err(),
        "a killed device half is an error, not a clean EOF: {read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn twenty_concurrent_ssh_sessions() {
    let s = Setup::start();
    let target = format!("{}@{DEVICE}", s.sshd.user);
    let children: Vec<_> = (0..20)
        .map(|i| {
            Command::new("ssh")
                .args(s.sshd.client_options())
                .arg("-o")
                .arg(format!("ProxyCommand={ADIT} connect %h"))
                .args([&target, &format!("sleep 1; echo session-{i}")])
                .envs(s.env())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ssh")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("ssh ends");
        assert_eq!(
            ok(&out, &format!("session {i}")).trim(),
            format!("session-{i}")
        );
    }
}
