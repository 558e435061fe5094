//! The `adit` binary as a new user runs it: `adit hub` in one directory, commands beside it.

use std::process::Output;

use adit_proto::ConnectionString;
use adit_testkit::HubProcess;

fn start() -> HubProcess {
    HubProcess::start(env!("CARGO_BIN_EXE_adit"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// A failure is exactly one `error: ...` line on stderr and a non-zero exit.
fn one_line_error(out: Output) -> String {
    assert!(
        !out.status.success(),
        "should have failed: {}",
        stdout(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    err
}

#[test]
fn first_start_prints_owner_string_and_ca_once() {
    let hub = start();
    assert!(hub.banner.contains("New hub created"), "{}", hub.banner);
    assert!(
        hub.banner.contains(&hub.owner_connection_string()),
        "{}",
        hub.banner
    );
    assert!(hub.banner.contains("tls/ca.pem"), "{}", hub.banner);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let file = hub.data_dir().join("iothubowner.connection-string");
        let mode = std::fs::metadata(file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cs: ConnectionString = hub.owner_connection_string().parse().expect("valid");
    assert_eq!(cs.host, "localhost");
    assert_eq!(cs.port, Some(hub.addr.port()));
    assert_eq!(cs.key_name.as_deref(), Some("iothubowner"));
}

#[test]
fn device_commands_work_with_no_flags_beside_the_hub() {
    let hub = start();
    let created = ok(hub.cli(&["device", "create", "dev-1"], &[]));
    let cs: ConnectionString = created.trim().parse().expect("device connection string");
    assert_eq!(cs.device_id.as_ref().map(|d| d.as_str()), Some("dev-1"));
    assert_eq!(cs.host_name(), format!("localhost:{}", hub.addr.port()));
    assert!(cs.key.is_some());

    let again = ok(hub.cli(&["device", "connection-string", "dev-1"], &[]));
    assert_eq!(again, created);

    ok(hub.cli(&["device", "create", "dev-2", "--disabled"], &[]));
    let table = ok(hub.cli(&["device", "list"], &[]));
    let rows: Vec<_> = table.lines().collect();
    assert!(rows[0].starts_with("DEVICE ID"), "{table}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("dev-1 ") && r.contains("enabled")),
        "{table}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("dev-2 ") && r.contains("disabled")),
        "{table}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&ok(hub.cli(&["device", "list", "--json"], &[]))).expect("JSON");
    assert_eq!(json.as_array().map(Vec::len), Some(2));

    ok(hub.cli(&["device", "set-status", "dev-1", "disabled"], &[]));
    let shown: serde_json::Value =
        serde_json::from_str(&ok(hub.cli(&["device", "show", "dev-1"], &[]))).expect("JSON");
    assert_eq!(shown["status"], "disabled");
    assert_eq!(shown["deviceId"], "dev-1");

    ok(hub.cli(&["device", "delete", "dev-1"], &[]));
    let err = one_line_error(hub.cli(&["device", "show", "dev-1"], &[]));
    assert!(
        err.contains("404") && err.contains("DeviceNotFound"),
        "{err}"
    );
    let err = one_line_error(hub.cli(&["device", "create", "dev-2"], &[]));
    assert!(err.contains("DeviceAlreadyExists"), "{err}");
    let err = one_line_error(hub.cli(&["device", "create", "bad/id"], &[]));
    assert!(err.contains("invalid device id"), "{err}");
}

#[test]
fn policy_list_shows_rights_and_keys() {
    let hub = start();
    let out = ok(hub.cli(&["policy", "list"], &[]));
    for (name, rights) in [
        (
            "iothubowner",
            "RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect",
        ),
        ("service", "ServiceConnect"),
        ("device", "DeviceConnect"),
        ("registryRead", "RegistryRead"),
        ("registryReadWrite", "RegistryRead, RegistryWrite"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.trim_end().ends_with(rights)),
            "{name}: {out}"
        );
    }
    let keys = ok(hub.cli(&["policy", "list", "--show-keys"], &[]));
    let reader = keys
        .lines()
        .map(str::trim)
        .find(|l| l.contains("SharedAccessKeyName=registryRead;"))
        .expect("registryRead connection string");
    // That string works, and is refused what it may not do.
    let list = ok(hub.cli(&["device", "list", "--connection-string", reader], &[]));
    assert!(list.starts_with("DEVICE ID"));
    let err = one_line_error(hub.cli(
        &["device", "create", "x", "--connection-string", reader],
        &[],
    ));
    assert!(
        err.contains("401") && err.contains("IotHubUnauthorizedAccess"),
        "{err}"
    );
    let err = one_line_error(hub.cli(&["policy", "list", "--connection-string", reader], &[]));
    assert!(err.contains("401"), "{err}");
}

#[test]
fn policy_renew_key_takes_effect_without_a_restart() {
    let hub = start();
    let keys = ok(hub.cli(&["policy", "list", "--show-keys"], &[]));
    let old = keys
        .lines()
        .map(str::trim)
        .find(|l| l.contains("SharedAccessKeyName=registryRead;"))
        .expect("registryRead connection string")
        .to_string();
    ok(hub.cli(&["device", "list", "--connection-string", &old], &[]));
    let new = ok(hub.cli(
        &["policy", "renew-key", "registryRead", "--key", "primary"],
        &[],
    ));
    let new = new.trim();
    let (old_cs, new_cs): (ConnectionString, ConnectionString) =
        (old.parse().expect("valid"), new.parse().expect("valid"));
    assert_eq!(new_cs.key_name.as_deref(), Some("registryRead"));
    assert_ne!(new_cs.key, old_cs.key, "a new primary key");
    // The same hub process: the old string is refused at once, the new one works.
    let err = one_line_error(hub.cli(&["device", "list", "--connection-string", &old], &[]));
    assert!(err.contains("401"), "{err}");
    ok(hub.cli(&["device", "list", "--connection-string", new], &[]));
    let err = one_line_error(hub.cli(
        &[
            "policy",
            "renew-key",
            "registryRead",
            "--key",
            "primary",
            "--connection-string",
            new,
        ],
        &[],
    ));
    assert!(err.contains("401"), "only the owner may renew keys: {err}");
}

/// The device's keys as `adit device show` prints them: (primary, secondary).
fn device_keys(hub: &HubProcess, id: &str) -> (String, String) {
    let device: serde_json::Value =
        serde_json::from_str(&ok(hub.cli(&["device", "show", id], &[]))).expect("json");
    let key = |k: &str| {
        device["authentication"]["symmetricKey"][k]
            .as_str()
            .expect("a key")
            .to_string()
    };
    (key("primaryKey"), key("secondaryKey"))
}

#[test]
fn device_renew_key_replaces_or_swaps_one_key() {
    let hub = start();
    ok(hub.cli(&["device", "create", "dev-r"], &[]));
    let (p0, s0) = device_keys(&hub, "dev-r");
    let printed = ok(hub.cli(&["device", "renew-key", "dev-r", "--key", "primary"], &[]));
    let (p1, s1) = device_keys(&hub, "dev-r");
    assert_ne!(p1, p0, "a new primary key");
    assert_eq!(s1, s0, "the secondary kept");
    let cs: ConnectionString = printed.trim().parse().expect("a connection string");
    assert_eq!(
        cs.key.expect("a key").to_base64(),
        p1,
        "prints the new primary's string"
    );

    ok(hub.cli(&["device", "renew-key", "dev-r", "--key", "secondary"], &[]));
    let (p2, s2) = device_keys(&hub, "dev-r");
    assert_eq!(p2, p1);
    assert_ne!(s2, s1, "a new secondary key");

    ok(hub.cli(&["device", "renew-key", "dev-r", "--key", "swap"], &[]));
    assert_eq!(device_keys(&hub, "dev-r"), (s2, p2), "swapped");

    let err = one_line_error(hub.cli(&["device", "renew-key", "nobody", "--key", "swap"], &[]));
    assert!(err.contains("404") || err.contains("not found"), "{err}");
}

#[test]
fn flags_and_env_work_from_anywhere() {
    let hub = start();
    let elsewhere = tempfile::tempdir().expect("dir");
    let cs = hub.owner_connection_string();
    let ca = hub.ca_path().display().to_string();
    let bin = env!("CARGO_BIN_EXE_adit");
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(args).current_dir(elsewhere.path());
        for var in ["ADIT_CONNECTION_STRING", "ADIT_CA_FILE", "ADIT_DATA_DIR"] {
            cmd.env_remove(var);
        }
        cmd.envs(envs.iter().copied());
        cmd.output().expect("runs")
    };
    ok(run(
        &[
            "device",
            "create",
            "by-flag",
            "--connection-string",
            &cs,
            "--ca-file",
            &ca,
        ],
        &[],
    ));
    ok(run(
        &["device", "create", "by-env"],
        &[("ADIT_CONNECTION_STRING", &cs), ("ADIT_CA_FILE", &ca)],
    ));
    let data_dir = hub.data_dir().display().to_string();
    let list = ok(run(&["device", "list"], &[("ADIT_DATA_DIR", &data_dir)]));
    assert!(
        list.contains("by-flag") && list.contains("by-env"),
        "{list}"
    );

    // Without settings, or with wrong ones, the error is one clear line.
    let err = one_line_error(run(&["device", "list"], &[]));
    assert!(err.contains("no connection string"), "{err}");
    let err = one_line_error(run(
        &["device", "list", "--connection-string", "HostName=x"],
        &[],
    ));
    assert!(err.contains("invalid connection string"), "{err}");
    let err = one_line_error(run(&["device", "list", "--connection-string", &cs], &[]));
    assert!(
        err.contains("cannot reach the hub"),
        "untrusted certificate: {err}"
    );
    let err = one_line_error(run(
        &[
            "device",
            "list",
            "--connection-string",
            &cs,
            "--ca-file",
            "/nonexistent.pem",
        ],
        &[],
    ));
    assert!(err.contains("cannot read CA file"), "{err}");
    let closed = cs.replace(&format!(":{}", hub.addr.port()), ":1");
    let err = one_line_error(run(
        &[
            "device",
            "list",
            "--connection-string",
            &closed,
            "--ca-file",
            &ca,
        ],
        &[],
    ));
    assert!(err.contains("cannot reach the hub"), "{err}");
}

#[test]
fn sigterm_stops_cleanly_and_restart_keeps_everything() {
    let hub = start();
    let device_cs = ok(hub.cli(&["device", "create", "keeper"], &[]));
    let owner = hub.owner_connection_string();
    let ca_before = std::fs::read(hub.ca_path()).expect("CA");
    let hub = hub.restart();
    assert!(!hub.banner.contains("New hub created"), "{}", hub.banner);
    assert!(
        !hub.banner.contains("SharedAccessKey="),
        "restart must not print the key: {}",
        hub.banner
    );
    assert_eq!(
        std::fs::read(hub.ca_path()).expect("CA"),
        ca_before,
        "dev CA kept"
    );
    let owner_after: ConnectionString = hub.owner_connection_string().parse().expect("valid");
    let owner_before: ConnectionString = owner.parse().expect("valid");
    assert_eq!(owner_after.key, owner_before.key);
    let again = ok(hub.cli(&["device", "connection-string", "keeper"], &[]));
    let (a, b): (ConnectionString, ConnectionString) = (
        again.trim().parse().expect("valid"),
        device_cs.trim().parse().expect("valid"),
    );
    assert_eq!(a.key, b.key);
    let mut hub = hub;
    assert!(hub.stop().success());
    assert!(hub.log().contains("hub stopped"), "{}", hub.log());
}

#[test]
fn logs_refuses_unknown_filters_and_stops_quietly_when_its_reader_leaves() {
    let hub = start();
    ok(hub.cli(&["device", "create", "d"], &[]));
    // A typo is refused, naming what is allowed, instead of printing an empty table.
    for bad in [["--outcome", "timedout"], ["--category", "Bogus"]] {
        let out = hub.cli(&["logs", bad[0], bad[1]], &[]);
        assert!(!out.status.success(), "{bad:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("possible values"), "{stderr}");
    }
    ok(hub.cli(&["logs", "--category", "connections"], &[]));
    ok(hub.cli(&["logs", "--outcome", "cancelled"], &[]));

    // `adit logs | head -0`: the reader is gone before the first line; no panic, exit 0.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_adit"))
        .args(["logs", "--category", "all"])
        .current_dir(hub.workdir())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("adit logs runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}
