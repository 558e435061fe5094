//! Third-party MQTT clients against `adit hub`: paho-mqtt as a raw device over both
//! transports, and Azure's own device SDK on its fixed ports.

use adit_proto::ConnectionString;
use adit_testkit::{HubProcess, python_env};

fn create_device(hub: &HubProcess, id: &str) -> String {
    let out = hub.cli(&["device", "create", id], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn paho_device_subscribes_and_answers_over_tls_and_websocket() {
    let python = python_env();
    let hub = HubProcess::start(env!("CARGO_BIN_EXE_adit"));
    let cs = create_device(&hub, "paho-1");
    for (transport, rid) in [("tcp", "pahotcp1"), ("websockets", "pahows1")] {
        let out = python.run(
            "paho_device.py",
            &[
                ("DEVICE_CONNECTION_STRING", cs.clone()),
                ("CA_FILE", hub.ca_path().display().to_string()),
                ("MQTT_PORT", hub.mqtt_addr.port().to_string()),
                ("HTTPS_PORT", hub.addr.port().to_string()),
                ("TRANSPORT", transport.to_string()),
                ("RID", rid.to_string()),
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("PASS"),
            "paho over {transport}:\n{stdout}\n{}\nhub log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            hub.log()
        );
        // The hub parsed the stream response (no request was pending for it).
        let log = hub.log();
        assert!(
            log.lines()
                .any(|l| l.contains("stream response for no pending request")
                    && l.contains("device=paho-1")
                    && l.contains(&format!("rid={rid}"))),
            "hub did not parse the response over {transport}:\n{log}"
        );
        // The filter is remote text, logged through the escaper without quotes.
        assert!(
            log.contains(
                "subscription refused device=paho-1 filter=devices/paho-1/messages/devicebound/#"
            ),
            "{log}"
        );
    }
}

/// Azure's SDK connects to 8883 and 443 only, so this hub takes those ports (CI runs as root).
#[test]
fn azure_iot_device_sdk_connects_on_its_fixed_ports() {
    let python = python_env();
    let hub = HubProcess::start_with_args(
        env!("CARGO_BIN_EXE_adit"),
        &[
            "--https-port",
            "443",
            "--mqtt-port",
            "8883",
            "--admin-addr",
            "127.0.0.1:0",
        ],
    );
    let cs = create_device(&hub, "azure-sdk-1");
    let parsed: ConnectionString = cs.parse().expect("valid");
    assert_eq!(
        parsed.port, None,
        "a hub on 443 hands out connection strings without a port"
    );
    let mut wrong = parsed.clone();
    wrong.key = Some(adit_proto::Key::from_bytes(&[7u8; 32]).expect("valid"));
    let out = python.run(
        "azure_device.py",
        &[
            ("DEVICE_CONNECTION_STRING", cs.clone()),
            ("WRONG_CONNECTION_STRING", wrong.to_string()),
            ("CA_FILE", hub.ca_path().display().to_string()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "azure-iot-device:\n{stdout}\n{}\nhub log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        hub.log()
    );
    let log = hub.log();
    for transport in ["mqtts", "mqtt-ws"] {
        assert!(
            log.lines().any(|l| l.contains("device connected")
                && l.contains(&format!("transport=\"{transport}\""))
                && l.contains("device=azure-sdk-1")),
            "no {transport} connection in the hub log:\n{log}"
        );
    }
    assert!(log.contains("CONNECT refused"), "{log}");
}
