//! Every client connection through a real HTTP CONNECT proxy (Debian's tinyproxy): the device
//! proxy over MQTT/WebSocket and MQTT/TLS, the REST commands, and both legs of a stream, with
//! the hub's name (`hub.invalid`) resolvable only at the proxy. Also Basic proxy
//! authentication, `NO_PROXY`, and which setting wins.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use adit_testkit::{HubProcess, Running, Tinyproxy, echo_server, free_port};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");
const HUB_NAME: &str = "hub.invalid";
/// Variables that would otherwise leak into the commands from the test's environment.
const PROXY_VARS: [&str; 6] = [
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A hub whose connection strings and stream URLs name `name` on a port chosen here.
fn hub_named(name: &str) -> HubProcess {
    let port = free_port().to_string();
    HubProcess::start_with_args(
        ADIT,
        &[
            "--https-port",
            &port,
            "--mqtt-port",
            "0",
            "--admin-addr",
            "127.0.0.1:0",
            "--hostname",
            name,
            "--public-url",
            &format!("https://{name}:{port}"),
        ],
    )
}

/// `adit ARGS` beside the hub (which finds its owner string and CA), with only `envs` of the
/// proxy variables set.
fn adit(hub: &HubProcess, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(ADIT);
    cmd.args(args).current_dir(hub.workdir());
    for var in PROXY_VARS
        .iter()
        .chain(&["ADIT_CONNECTION_STRING", "ADIT_CA_FILE", "ADIT_DATA_DIR"])
    {
        cmd.env_remove(var);
    }
    cmd.envs(envs.iter().copied());
    cmd.output().expect("adit runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "adit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "adit succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// `adit device create ID` through the proxy settings `envs` and `args`; the device string.
fn create_device(hub: &HubProcess, id: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut all = vec!["device", "create", id];
    all.extend_from_slice(args);
    ok(&adit(hub, &all, envs))
}

/// `adit device-proxy` for the device `cs`, forwarding to `target`, logging to `log`.
fn device_proxy(
    hub: &HubProcess,
    cs: &str,
    target: u16,
    args: &[&str],
    envs: &[(&str, &str)],
    log: &Path,
) -> Running {
    let mut cmd = Command::new(ADIT);
    cmd.args(["device-proxy", "--target", &format!("127.0.0.1:{target}")])
        .args(args)
        .env("ADIT_DEVICE_CONNECTION_STRING", cs)
        .env("ADIT_CA_FILE", hub.ca_path())
        .env("ADIT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"));
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(envs.iter().copied());
    Running(cmd.spawn().expect("device-proxy starts"))
}

/// Waits until the hub shows `device` connected (asking through `args`/`envs`).
fn wait_connected(
    hub: &HubProcess,
    device: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    log: &Path,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut all = vec!["device", "show", device];
    all.extend_from_slice(args);
    loop {
        let out = adit(hub, &all, envs);
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if shown["connectionState"] == "Connected" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{device} never connected; device-proxy log:\n{}\nlast show: {}",
            std::fs::read_to_string(log).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One stream to `device` with `adit connect`: sends a line, returns what came back.
fn echo_through(hub: &HubProcess, device: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(ADIT);
    cmd.args(["connect", device, "--connect-timeout", "5"])
        .args(args)
        .current_dir(hub.workdir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(envs.iter().copied());
    let mut child = cmd.spawn().expect("adit connect starts");
    let line = format!("hello {device}\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(line.as_bytes())
        .expect("write stdin");
    // stdin is closed: the echo target sees EOF, closes, and the stream ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        line,
        "adit connect {device}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_connection_reaches_a_hub_only_the_proxy_can_resolve() {
    let proxy = Tinyproxy::start(&[(HUB_NAME, "127.0.0.1")], None);
    let hub = hub_named(HUB_NAME);
    let https_port = hub.addr.port();
    let mqtt_port = hub.mqtt_addr.port().to_string();
    let url = proxy.url(None);
    let via_env = [("HTTPS_PROXY", url.as_str())];
    let via_flag = ["--proxy", url.as_str()];

    // Here the name does not resolve: without the proxy nothing reaches the hub.
    let e = failure(&adit(&hub, &["device", "list"], &[]));
    assert!(e.contains("cannot reach the hub"), "{e}");

    // REST through the proxy, from the flag and from the environment.
    let ws_cs = create_device(&hub, "ws-dev", &via_flag, &[]);
    let mqtt_cs = create_device(&hub, "mqtt-dev", &[], &via_env);
    assert!(
        ws_cs.contains(&format!("HostName={HUB_NAME}:{https_port}")),
        "{ws_cs}"
    );

    let echo = echo_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let (ws_log, mqtt_log) = (dir.path().join("ws.log"), dir.path().join("mqtt.log"));
    // MQTT over WebSocket with --proxy; MQTT over TLS with $https_proxy.
    let _ws = device_proxy(&hub, &ws_cs, echo, &via_flag, &[], &ws_log);
    let _mqtt = device_proxy(
        &hub,
        &mqtt_cs,
        echo,
        &["--transport", "mqtt", "--mqtt-port", &mqtt_port],
        &[("https_proxy", url.as_str())],
        &mqtt_log,
    );
    wait_connected(&hub, "ws-dev", &via_flag, &[], &ws_log);
    wait_connected(&hub, "mqtt-dev", &[], &via_env, &mqtt_log);

    // Streams: the REST call and both gateway legs through the proxy.
    echo_through(&hub, "ws-dev", &via_flag, &[]);
    echo_through(&hub, "mqtt-dev", &[], &[("ALL_PROXY", url.as_str())]);

    let connects = proxy.connects();
    let count = |target: String| connects.iter().filter(|c| **c == target).count();
    let https_target = format!("{HUB_NAME}:{https_port}");
    // At least: 2 creates, the WebSocket device, shows, 2 stream requests and 4 legs.
    assert!(
        count(https_target.clone()) >= 9,
        "CONNECTs to {https_target}: {connects:?}"
    );
    assert!(
        count(format!("{HUB_NAME}:{mqtt_port}")) >= 1,
        "no CONNECT to the MQTT port: {connects:?}"
    );
    assert!(
        connects.iter().all(|c| c.starts_with(HUB_NAME)),
        "every CONNECT names the hub as given, unresolved: {connects:?}"
    );
    let ws_log = std::fs::read_to_string(&ws_log).unwrap_or_default();
    assert!(
        ws_log.contains("connecting to the hub through an HTTP proxy"),
        "{ws_log}"
    );
}

#[test]
fn basic_proxy_authentication_and_its_errors() {
    let (user, password) = ("alice", "s3cret-proxy-pw");
    let proxy = Tinyproxy::start(&[(HUB_NAME, "127.0.0.1")], Some((user, password)));
    let hub = hub_named(HUB_NAME);
    let no_credentials = proxy.url(None);
    let wrong = proxy.url(Some((user, "wrong-pw")));
    let right = proxy.url(Some((user, password)));

    let e = failure(&adit(
        &hub,
        &["device", "list", "--proxy", &no_credentials],
        &[],
    ));
    assert!(
        e.contains(&format!(
            "proxy {no_credentials} requires authentication: give user:password in the proxy URL"
        )),
        "{e}"
    );
    // tinyproxy answers wrong credentials with 401 (others with 407): both say the same.
    let e = failure(&adit(&hub, &["device", "list"], &[("HTTPS_PROXY", &wrong)]));
    assert!(
        e.contains(&format!(
            "proxy http://{user}:***@127.0.0.1:{} refused the user name or password in the proxy URL",
            proxy.port
        )),
        "{e}"
    );
    assert!(!e.contains("wrong-pw"), "{e}");

    let cs = create_device(&hub, "dev1", &["--proxy", &right], &[]);
    let echo = echo_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let (bad_log, good_log) = (dir.path().join("bad.log"), dir.path().join("good.log"));
    let bad = device_proxy(&hub, &cs, echo, &["--proxy", &wrong], &[], &bad_log);
    let _good = device_proxy(&hub, &cs, echo, &[], &[("https_proxy", &right)], &good_log);
    wait_connected(&hub, "dev1", &["--proxy", &right], &[], &good_log);
    echo_through(&hub, "dev1", &[], &[("HTTPS_PROXY", &right)]);

    // The device proxy with the wrong password keeps retrying, saying why.
    let deadline = Instant::now() + Duration::from_secs(20);
    let bad_text = loop {
        let text = std::fs::read_to_string(&bad_log).unwrap_or_default();
        if text.contains("refused the user name or password") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(bad);
    assert!(
        bad_text.contains("refused the user name or password in the proxy URL"),
        "{bad_text}"
    );
    for log in [
        bad_text,
        std::fs::read_to_string(&good_log).unwrap_or_default(),
    ] {
        assert!(
            !log.contains(password) && !log.contains("wrong-pw"),
            "{log}"
        );
    }
}

#[test]
fn no_proxy_and_which_setting_wins() {
    let proxy = Tinyproxy::start(&[], None);
    let hub = HubProcess::start_on_free_ports(ADIT, &[]);
    let url = proxy.url(None);
    // A proxy that is not there: whatever goes to it fails.
    let dead = format!("http://u:dead-pw@127.0.0.1:{}", free_port());

    let e = failure(&adit(&hub, &["device", "list"], &[("HTTPS_PROXY", &dead)]));
    assert!(
        e.contains("cannot reach the proxy http://u:***@127.0.0.1:"),
        "{e}"
    );
    assert!(!e.contains("dead-pw"), "{e}");

    // NO_PROXY: the hub's name (a suffix list, as curl reads it), or everything.
    for no_proxy in ["localhost", "example.com, .localhost,localhost", "*"] {
        ok(&adit(
            &hub,
            &["device", "list"],
            &[("HTTPS_PROXY", &dead), ("NO_PROXY", no_proxy)],
        ));
    }
    ok(&adit(
        &hub,
        &["device", "list"],
        &[("https_proxy", &dead), ("no_proxy", "localhost")],
    ));
    // --proxy none: directly, whatever the environment says.
    ok(&adit(
        &hub,
        &["device", "list", "--proxy", "none"],
        &[("HTTPS_PROXY", &dead), ("ALL_PROXY", &dead)],
    ));
    // --proxy wins over the variables.
    assert!(proxy.connects().is_empty());
    ok(&adit(
        &hub,
        &["device", "list", "--proxy", &url],
        &[("HTTPS_PROXY", &dead)],
    ));
    let target = format!("localhost:{}", hub.addr.port());
    assert_eq!(proxy.connects(), vec![target.clone()]);
    // $HTTPS_PROXY wins over $ALL_PROXY.
    ok(&adit(
        &hub,
        &["device", "list"],
        &[("HTTPS_PROXY", &url), ("ALL_PROXY", &dead)],
    ));
    assert_eq!(proxy.connects().len(), 2);

    // The device side follows the same rules.
    let cs = create_device(&hub, "dev1", &["--proxy", "none"], &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("dp.log");
    let _dp = device_proxy(
        &hub,
        &cs,
        echo_server(),
        &[],
        &[("ALL_PROXY", &dead), ("no_proxy", "localhost")],
        &log,
    );
    wait_connected(&hub, "dev1", &[], &[], &log);
    echo_through(&hub, "dev1", &["--proxy", &url], &[]);
    assert!(
        proxy.connects().iter().all(|c| *c == target),
        "{:?}",
        proxy.connects()
    );

    // Other kinds of proxy are refused, saying what to give.
    let e = failure(&adit(
        &hub,
        &[
            "device",
            "list",
            "--proxy",
            "socks5://u:socks-pw@127.0.0.1:1080",
        ],
        &[],
    ));
    assert!(
        e.contains("socks5:// proxies are not supported: give an http:// proxy URL"),
        "{e}"
    );
    let e = failure(&adit(
        &hub,
        &["device", "list"],
        &[("HTTPS_PROXY", "socks5h://u:socks-pw@127.0.0.1:1080")],
    ));
    assert!(
        e.contains("$HTTPS_PROXY") && e.contains("socks5h://"),
        "{e}"
    );
    assert!(!e.contains("socks-pw"), "{e}");
}
