//! Azure's own registry client (PyPI azure-iot-hub 2.7.0) against `adit hub`.

use adit_testkit::{HubProcess, python_env};

#[test]
fn azure_iot_hub_sdk_manages_devices() {
    let python = python_env();
    let hub = HubProcess::start(env!("CARGO_BIN_EXE_adit"));
    let out = python.run(
        "azure_registry.py",
        &[
            ("IOTHUB_CONNECTION_STRING", hub.owner_connection_string()),
            ("REQUESTS_CA_BUNDLE", hub.ca_path().display().to_string()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "azure-iot-hub script failed\n{stdout}\n{stderr}\nhub log:\n{}",
        hub.log()
    );
    assert!(stdout.lines().any(|l| l == "PASS"), "{stdout}");
}
