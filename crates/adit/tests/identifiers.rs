//! Field case 14 in general form, with the real binaries: a device whose id holds any character
//! Azure allows (`sensor?1`, each special character alone, all of them together) is created
//! with `adit device create`, connects with `adit device-proxy` and the connection string it
//! printed, and carries a stream opened by `adit connect`. Ids and stream names no hub accepts
//! are refused by the CLI with the reason.

use std::io::Write as _;
use std::process::{Command, Stdio};

use adit_proto::id::ID_SPECIALS;
use adit_testkit::{HubProcess, Running, echo_server};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");

fn ids() -> Vec<String> {
    let mut ids = vec![
        "sensor?1".to_string(),
        "a-b.c%d_e*f?g!h(i)j,k:l=m@n$o'p".to_string(),
    ];
    ids.extend(ID_SPECIALS.chars().map(|c| format!("{c}dev{c}{c}1")));
    ids
}

fn device_proxy(hub: &HubProcess, cs: &str, route: &[String]) -> Running {
    Running(
        Command::new(ADIT)
            .arg("device-proxy")
            .args(route)
            .env("ADIT_DEVICE_CONNECTION_STRING", cs)
            .env("ADIT_CA_FILE", hub.ca_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("device-proxy starts"),
    )
}

/// `adit connect ID [--stream-name NAME]` with `input` on stdin; returns stdout.
fn connect(hub: &HubProcess, id: &str, name: Option<&str>, input: &str) -> String {
    let mut args = vec!["connect", "--connect-timeout", "10"];
    if let Some(n) = name {
        args.extend(["--stream-name", n]);
    }
    // '--': an id may start with '-'.
    args.extend(["--", id]);
    let mut child = Command::new(ADIT)
        .args(&args)
        .current_dir(hub.workdir())
        .env_remove("ADIT_CONNECTION_STRING")
        .env_remove("ADIT_CA_FILE")
        .env_remove("ADIT_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("connect starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("connect ends");
    assert!(
        out.status.success(),
        "adit connect {id:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn devices_with_every_special_character_carry_streams_through_the_cli() {
    let hub = HubProcess::start(ADIT);
    let echo = echo_server();
    let target = format!("127.0.0.1:{echo}");
    // A stream name holding every special a name may hold, '=' included: --map splits at the
    // last '='.
    let name = "a-._~!$&'()*,;=:@z";
    let map = format!("{name}={target}");
    let mut proxies = Vec::new();
    for (i, id) in ids().iter().enumerate() {
        let out = hub.cli(&["device", "create", "--", id], &[]);
        assert!(
            out.status.success(),
            "device create {id:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // Half the proxies route by name, half take every stream; half use MQTT over TLS.
        let mut route: Vec<String> = if i % 2 == 0 {
            vec!["--target".into(), target.clone()]
        } else {
            vec!["--map".into(), map.clone()]
        };
        if i % 4 < 2 {
            route.extend([
                "--transport".into(),
                "mqtt".into(),
                "--mqtt-port".into(),
                hub.mqtt_addr.port().to_string(),
            ]);
        }
        proxies.push(device_proxy(&hub, &cs, &route));
    }
    for (i, id) in ids().iter().enumerate() {
        let stream_name = (i % 2 == 1).then_some(name);
        let input = format!("hello {id}\n");
        assert_eq!(connect(&hub, id, stream_name, &input), input, "{id}");
    }
    drop(proxies);
}

#[test]
fn the_cli_refuses_ids_and_stream_names_with_the_reason() {
    let hub = HubProcess::start(ADIT);
    for (id, says) in [
        ("a b", "' ' (a space), which is not allowed"),
        ("über", "'ü': non-ASCII characters are not allowed"),
        ("a+b", "'+', which new ids may not hold"),
        ("a/b", "'/', which is not allowed"),
    ] {
        let out = hub.cli(&["device", "create", id], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} was created");
        assert!(err.contains(says), "{id}: {err}");
        assert!(err.contains(adit_proto::id::ID_ALPHABET), "{id}: {err}");
    }
    assert!(hub.cli(&["device", "create", "d"], &[]).status.success());
    let out = hub.cli(&["connect", "d", "--stream-name", "über"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("'ü': non-ASCII characters are not allowed"),
        "{err}"
    );
    assert!(
        err.contains(adit_proto::stream_name::STREAM_NAME_ALPHABET),
        "{err}"
    );
}
