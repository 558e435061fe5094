//! The web console in a real browser (issue 16): Debian's Chromium driven by Playwright
//! (`web/console/e2e/console.mjs`, from npm) against a real hub and a real device proxy. The
//! script signs in with `adit console`'s one-time URL, watches a device come online without
//! a reload, opens a terminal to the device's real OpenSSH sshd (through `adit device-proxy`),
//! trusts the host key it shows (the one sshd has), types `echo hello` and reads `hello`,
//! finds the terminal's stream on the Streams page with its policy and bytes, resizes it
//! (`stty size` sees the new size), closes it, and checks that a read-only policy gets no
//! terminal. Screenshots are kept in
//! `target/console-screenshots/`.
//!
//! Needs Node.js, npm and Chromium (`.ci/run` installs Chromium; the hub's build runs
//! `npm ci`). Without them the test fails and says what is missing.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, Running, Sshd};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");
const DEVICE: &str = "console-pump";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_browser_signs_in_watches_a_device_come_online_runs_a_terminal_and_a_reader_gets_none() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium not found at {chromium}: install Debian's chromium (.ci/run does)"
    );
    let web = repo().join("web/console");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/console/node_modules is missing: building the hub runs `npm ci` there when npm is installed"
    );
    let hub = HubProcess::start_on_free_ports(ADIT, &[]);
    let device_cs = ok(hub.cli(&["device", "create", DEVICE], &[]));
    let keys = ok(hub.cli(&["policy", "list", "--show-keys"], &[]));
    let reader = keys
        .lines()
        .map(str::trim)
        .find(|l| l.contains("SharedAccessKeyName=registryRead;"))
        .expect("registryRead connection string")
        .to_string();
    let sign_in_url = ok(hub.cli(&["console"], &[]));
    assert!(sign_in_url.contains("/console/#sign-in="), "{sign_in_url}");
    let shots = repo().join("target/console-screenshots");
    let sshd = Sshd::start();
    let ssh_key = std::fs::read_to_string(&sshd.key).expect("the client key");

    let mut script = Command::new("node")
        .arg("e2e/console.mjs")
        .current_dir(&web)
        .env("ADIT_SIGN_IN_URL", &sign_in_url)
        .env("ADIT_DEVICE", DEVICE)
        .env("ADIT_READONLY_CONNECTION_STRING", &reader)
        .env("ADIT_SCREENSHOTS", &shots)
        .env("ADIT_SSH_USER", &sshd.user)
        .env("ADIT_SSH_KEY", &ssh_key)
        .env("ADIT_SSH_HOST_KEY", sshd.host_key_fingerprint())
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = script.stdout.take().expect("stdout");
    let mut stdin = script.stdin.take().expect("stdin");
    let mut steps = Vec::new();
    let mut device_proxy = None;
    let deadline = Instant::now() + Duration::from_secs(180);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Some(step) = line.strip_prefix("STEP ") else {
            continue;
        };
        steps.push(step.to_string());
        if step == "device-offline-seen" {
            // The page shows the device offline: now it connects.
            let proxy = Command::new(ADIT)
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
            device_proxy = Some(Running(proxy));
            writeln!(stdin, "device-started").expect("tell the script");
        }
        assert!(Instant::now() < deadline, "the browser test ran over 180 s");
    }
    let out = script.wait_with_output().expect("script ends");
    drop(device_proxy);
    assert!(
        out.status.success() && steps.last().map(String::as_str) == Some("done"),
        "the browser test failed after steps {steps:?}:\n{}\nhub log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        hub.log()
    );
    for step in [
        "signed-in",
        "device-offline-seen",
        "device-online-seen",
        "terminal-ready",
        "terminal-hello",
        "terminal-stream-listed",
        "terminal-resized",
        "terminal-closed",
        "read-only-refused",
    ] {
        assert!(steps.iter().any(|s| s == step), "{step} missing: {steps:?}");
    }
    for shot in [
        "devices.png",
        "device-online.png",
        "host-key.png",
        "terminal.png",
        "streams.png",
    ] {
        assert!(shots.join(shot).is_file(), "no screenshot {shot}");
    }
    // The one-time URL works once.
    let log = hub.log();
    assert!(log.contains("console sign-in"), "{log}");
    assert!(log.contains("console terminal ended"), "{log}");
    assert!(
        !log.contains(ssh_key.trim()),
        "the SSH key is in the hub's log"
    );
    assert!(
        !log.contains(sign_in_url.rsplit('=').next().unwrap_or("-")),
        "the sign-in token is in the hub's log"
    );
}
