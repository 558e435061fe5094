//! SSH sessions that outlive a network outage (issue 15): the real binaries, real OpenSSH, and
//! real links. The device proxy and its sshd live in a network namespace of their own, the
//! service proxy and the ssh client in another; each is joined to the hub's namespace by a
//! veth pair the test makes and takes down. A remote command prints a counter every 100 ms;
//! its output must arrive whole (no gap, no duplicate) across a 10 s outage of either side's
//! link, and an outage past the hub's resume grace must end the session with a clear error.
//!
//! Needs root (network namespaces); without it the tests say why and pass (CI runs as root).
//! Each test takes about 30 s.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, Running, Sshd, VethLink, netns_support};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");
const DEVICE: &str = "roaming";
/// Lines the remote command prints, one per 100 ms.
const COUNT: u32 = 250;
/// Keep-alive of every WebSocket: a ping after 1 s of silence, given up 2 s later, so an
/// outage is noticed within 3 s on both sides (the default 20 s + 20 s would outlast it).
const KEEPALIVE: [&str; 4] = ["--ping-interval", "1", "--pong-timeout", "2"];

struct World {
    // Dropped in order: processes before the links they run behind.
    service_proxy: Running,
    _device_proxy: Running,
    sshd: Sshd,
    hub: HubProcess,
    service_link: VethLink,
    device_link: VethLink,
    service_port: u16,
}

fn skip() -> bool {
    match netns_support() {
        Ok(()) => false,
        Err(e) => {
            eprintln!("skipped: {e}");
            true
        }
    }
}

fn listening_in(link: &VethLink, port: u16) -> bool {
    link.netns()
        .command("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl World {
    fn start(resume_grace: &str) -> Self {
        let device_link = VethLink::create().expect("device link");
        let service_link = VethLink::create().expect("service link");
        let hub_ip = device_link.host_addr().to_string();
        let mut hub_args = vec![
            "--listen-addr",
            &hub_ip,
            "--hostname",
            &hub_ip,
            "--resume-grace",
            resume_grace,
        ];
        hub_args.extend(KEEPALIVE);
        let hub = HubProcess::start_on_free_ports(ADIT, &hub_args);
        let out = hub.cli(&["device", "create", DEVICE], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let device_cs = String::from_utf8_lossy(&out.stdout).trim().to_string();

        let sshd = Sshd::start_in(device_link.netns());
        let device_proxy = device_link
            .netns()
            .command(ADIT)
            .args([
                "device-proxy",
                "--target",
                &format!("127.0.0.1:{}", sshd.port),
            ])
            .args(KEEPALIVE)
            .env("ADIT_DEVICE_CONNECTION_STRING", &device_cs)
            .env("ADIT_CA_FILE", hub.ca_path())
            .env("ADIT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(hub.workdir().join("device-proxy.log")).expect("log file"),
            )
            .spawn()
            .expect("device-proxy starts");
        let device_proxy = Running(device_proxy);

        // Any port is free in a namespace of our own.
        let service_port = 2222;
        let service_proxy = service_link
            .netns()
            .command(ADIT)
            .args([
                "service-proxy",
                "--device",
                DEVICE,
                "--listen",
                &format!("127.0.0.1:{service_port}"),
                "--connect-timeout",
                "30",
            ])
            .args(KEEPALIVE)
            .env("ADIT_CONNECTION_STRING", hub.owner_connection_string())
            .env("ADIT_CA_FILE", hub.ca_path())
            .env("ADIT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("service-proxy starts");
        let service_proxy = Running(service_proxy);
        let world = Self {
            service_proxy,
            _device_proxy: device_proxy,
            sshd,
            hub,
            service_link,
            device_link,
            service_port,
        };
        world.wait_ready();
        world
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.hub.cli(&["device", "show", DEVICE], &[]);
            let device: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if device["connectionState"] == "Connected"
                && listening_in(&self.service_link, self.service_port)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "device-proxy or service-proxy not ready:\n{}",
                self.hub.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn link(&self, side: &str) -> &VethLink {
        match side {
            "device" => &self.device_link,
            _ => &self.service_link,
        }
    }

    fn explain(&mut self, ssh: &mut Child) -> String {
        format!(
            "ssh said:\n{}\nthe service proxy said:\n{}\nthe device proxy said:\n{}\nthe hub said:\n{}",
            stderr_of(ssh),
            stderr_of(&mut self.service_proxy.0),
            std::fs::read_to_string(self.hub.workdir().join("device-proxy.log"))
                .unwrap_or_default(),
            self.hub.log()
        )
    }

    /// `ssh` (in the service's namespace, to the service proxy) running a counter.
    fn counter(&self) -> Child {
        self.service_link
            .netns()
            .command("ssh")
            .args(self.sshd.client_options())
            .args(["-p", &self.service_port.to_string()])
            .arg(format!("{}@127.0.0.1", self.sshd.user))
            .arg(format!(
                "for i in $(seq 1 {COUNT}); do echo $i; sleep 0.1; done"
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh runs")
    }
}

/// The counter's lines as they come, on a channel.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `n` lines of `ssh`'s, returning them; after `within`, or when ssh ends first,
/// panics with what ssh and the proxies said.
fn take(
    world: &mut World,
    ssh: &mut Child,
    rx: &mpsc::Receiver<String>,
    n: usize,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => got.push(line),
            Err(_) => panic!(
                "{} of {n} lines within {within:?}: {got:?}\n{}",
                got.len(),
                world.explain(ssh)
            ),
        }
    }
    got
}

/// Everything the processes of a failed run said: ssh's stderr, then the service proxy's and
/// the hub's logs.
fn stderr_of(child: &mut Child) -> String {
    let _ = child.kill();
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut text);
    }
    text
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "ssh still running after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the counter across a 10 s outage of `link` and checks every line came, once, in order.
fn survives_outage(world: &mut World, side: &str) {
    let mut ssh = world.counter();
    let lines = lines_of(&mut ssh);
    let mut got = take(world, &mut ssh, &lines, 20, Duration::from_secs(30));
    world.link(side).down().expect("link down");
    let down_at = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    world.link(side).up().expect("link up");
    eprintln!("{side} link was down for {:?}", down_at.elapsed());
    let left = COUNT as usize - got.len();
    got.extend(take(world, &mut ssh, &lines, left, Duration::from_secs(90)));
    let status = wait_exit(&mut ssh, Duration::from_secs(30));
    let expected: Vec<String> = (1..=COUNT).map(|i| i.to_string()).collect();
    assert!(
        got == expected,
        "the counter's output across the {side} outage has a gap or a duplicate: {got:?}"
    );
    assert!(status.success(), "ssh exited with {status}");
    let log = world.hub.log();
    assert!(
        log.contains("stream leg resumed"),
        "the hub never resumed a leg:\n{log}"
    );
}

#[test]
fn an_ssh_session_survives_the_devices_link_going_down_for_10_s() {
    if skip() {
        return;
    }
    let mut world = World::start("60");
    survives_outage(&mut world, "device");
}

#[test]
fn an_ssh_session_survives_the_services_link_going_down_for_10_s() {
    if skip() {
        return;
    }
    let mut world = World::start("60");
    survives_outage(&mut world, "service");
}

#[test]
fn an_outage_past_the_grace_ends_the_session_with_a_clear_error() {
    if skip() {
        return;
    }
    let mut world = World::start("3");
    let mut ssh = world.counter();
    let lines = lines_of(&mut ssh);
    take(&mut world, &mut ssh, &lines, 10, Duration::from_secs(30));
    world.device_link.down().expect("link down");
    // Noticed within 3 s, then 3 s of grace: ssh's connection is cut well within 20 s.
    let status = wait_exit(&mut ssh, Duration::from_secs(20));
    world.device_link.up().expect("link up");
    assert!(!status.success(), "ssh cannot finish without its session");
    // The service proxy says why, in words.
    let _ = world.service_proxy.0.kill();
    let mut stderr = String::new();
    if let Some(mut e) = world.service_proxy.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert!(
        stderr.contains("did not come back within 3 s"),
        "the service proxy's log does not say why the session ended:\n{stderr}"
    );
    let log = world.hub.log();
    assert!(
        log.contains("did not come back within the grace"),
        "the hub's log does not say why:\n{log}"
    );
}
