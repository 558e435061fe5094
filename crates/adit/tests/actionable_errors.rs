//! Errors a new user can act on: each failure a user meets first says what went wrong and what
//! to do, on one line, with no secret in it. Real `adit hub` and real commands.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use adit_proto::ConnectionString;
use adit_testkit::{HubProcess, Running};

const ADIT: &str = env!("CARGO_BIN_EXE_adit");

fn created(hub: &HubProcess, args: &[&str]) -> String {
    let out = hub.cli(args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The single `error: ...` line of a failed command.
fn error_line(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    err
}

/// Waits up to `within` for `path` to contain `needle`; the file's text either way.
fn wait_for_text(path: &Path, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() >= deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_client_without_the_hubs_ca_is_told_how_to_trust_it() {
    let hub = HubProcess::start_on_free_ports(ADIT, &[]);
    let device_cs = created(&hub, &["device", "create", "pi"]);
    // An empty data directory: no dev CA to fall back on, so the system roots are used and
    // the hub's dev certificate is refused, as on a machine that was never given ca.pem.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let elsewhere_dir = elsewhere.path().to_str().expect("utf-8 path");
    let owner = hub.owner_connection_string();
    for args in [&["device", "list"][..], &["connect", "pi"][..]] {
        let out = hub.cli(
            args,
            &[
                ("ADIT_DATA_DIR", elsewhere_dir),
                ("ADIT_CONNECTION_STRING", &owner),
            ],
        );
        let err = error_line(&out);
        assert!(err.contains("UnknownIssuer"), "{args:?}: {err}");
        assert!(
            err.contains("--ca-file") && err.contains("ADIT_CA_FILE"),
            "{args:?}: {err}"
        );
    }

    // The device proxy keeps retrying, warns with the fix, and never claims to be waiting
    // for streams while it cannot reach the hub.
    let stdout = elsewhere.path().join("proxy.out");
    let stderr = elsewhere.path().join("proxy.err");
    let spawn = |ca: Option<&Path>| {
        let mut cmd = Command::new(ADIT);
        cmd.args(["device-proxy", "--target", "127.0.0.1:9"])
            .env("ADIT_DEVICE_CONNECTION_STRING", &device_cs)
            .env("ADIT_DATA_DIR", elsewhere.path())
            .env_remove("ADIT_CA_FILE")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        if let Some(ca) = ca {
            cmd.arg("--ca-file").arg(ca);
        }
        Running(cmd.spawn().expect("device-proxy starts"))
    };
    let wrong = spawn(None);
    let log = wait_for_text(&stderr, "--ca-file", Duration::from_secs(15));
    assert!(
        log.contains("WARN") && log.contains("UnknownIssuer") && log.contains("ADIT_CA_FILE"),
        "{log}"
    );
    let said = std::fs::read_to_string(&stdout).unwrap_or_default();
    assert!(!said.contains("waiting for stream requests"), "{said}");
    drop(wrong);

    let _right = spawn(Some(&hub.ca_path()));
    let said = wait_for_text(
        &stdout,
        "waiting for stream requests",
        Duration::from_secs(15),
    );
    assert!(
        said.contains("connected to the hub; waiting for stream requests"),
        "{said}\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
}

#[test]
fn a_device_connection_string_given_to_a_service_command_is_named_as_such() {
    let hub = HubProcess::start_on_free_ports(ADIT, &[]);
    let device_cs = created(&hub, &["device", "create", "pi"]);
    let key = device_cs
        .parse::<ConnectionString>()
        .expect("device string")
        .key
        .expect("a key")
        .to_base64()
        .to_string();
    let out = hub.cli(&["device", "list", "--connection-string", &device_cs], &[]);
    let err = error_line(&out);
    assert!(err.contains("device connection string"), "{err}");
    assert!(err.contains("SharedAccessKeyName"), "{err}");
    assert!(!err.contains(&key), "the device key leaked: {err}");
}

#[test]
fn a_stream_to_a_disabled_or_absent_device_says_which_and_what_to_do() {
    let hub = HubProcess::start_on_free_ports(ADIT, &[]);
    created(&hub, &["device", "create", "never-started"]);
    created(&hub, &["device", "create", "switched-off", "--disabled"]);

    let out = hub.cli(
        &["connect", "never-started", "--connect-timeout", "0.5"],
        &[],
    );
    let err = error_line(&out);
    assert!(
        err.contains("not connected to this hub") && err.contains("device-proxy"),
        "{err}"
    );

    // Answered at once: a disabled device cannot connect, so there is nothing to wait for.
    let started = Instant::now();
    let out = hub.cli(&["connect", "switched-off", "--connect-timeout", "30"], &[]);
    let err = error_line(&out);
    assert!(
        err.contains("disabled") && err.contains("adit device set-status switched-off enabled"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for a disabled device"
    );
}

#[test]
fn connection_strings_written_to_a_file_are_readable_only_by_their_owner() {
    let hub = HubProcess::start_on_free_ports(ADIT, &[]);
    let file = hub.workdir().join("pi.connection-string");
    let said = created(
        &hub,
        &["device", "create", "pi", "--output", "pi.connection-string"],
    );
    let cs: ConnectionString = std::fs::read_to_string(&file)
        .expect("written")
        .trim()
        .parse()
        .expect("a device connection string");
    let key = cs.key.as_ref().expect("a key").to_base64();
    assert!(!said.contains(key), "the key went to stdout: {said}");
    assert!(said.contains("pi.connection-string"), "{said}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Overwriting a file someone made world-readable tightens it.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    created(
        &hub,
        &[
            "device",
            "connection-string",
            "pi",
            "-o",
            "pi.connection-string",
        ],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn help_describes_what_exists_now() {
    let mut commands: Vec<Vec<&str>> = vec![vec![]];
    for sub in [
        "hub",
        "device",
        "policy",
        "device-proxy",
        "service-proxy",
        "connect",
        "logs",
        "streams",
    ] {
        commands.push(vec![sub]);
    }
    for args in commands {
        let out = Command::new(ADIT)
            .args(&args)
            .arg("--help")
            .output()
            .expect("adit runs");
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(
            !help.contains("(later)") && !help.contains("later,") && !help.contains("and later"),
            "stale text in `adit {} --help`:\n{help}",
            args.join(" ")
        );
    }
}
