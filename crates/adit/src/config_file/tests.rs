use std::io::Write as _;

use super::*;
use crate::cli::DeviceProxyArgs;

const DEVICE_EXAMPLE: &str = include_str!("../../../../packaging/config/device-proxy.toml");
#[cfg(feature = "full")]
const HUB_EXAMPLE: &str = include_str!("../../../../packaging/config/hub.toml");

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn argv(words: &[&str]) -> Vec<OsString> {
    std::iter::once("adit")
        .chain(words.iter().copied())
        .map(OsString::from)
        .collect()
}

fn no_env(_: &str) -> Option<OsString> {
    None
}

fn device_proxy(cli: Cli) -> DeviceProxyArgs {
    let command = format!("{:?}", cli.command);
    cli.command
        .into_device_proxy()
        .unwrap_or_else(|| panic!("not device-proxy: {command}"))
}

#[test]
fn the_files_values_fill_the_flags_not_given() {
    let f = file(
        r#"
connection_string = "HostName=h:8443;DeviceId=d;SharedAccessKey=a2V5"
map = ["ssh=127.0.0.1:22", "web=127.0.0.1:80"]
transport = "mqtt"
mqtt_port = 9883
ping-interval = 7.5
"#,
    );
    let path = f.path().to_str().expect("utf-8");
    let args =
        device_proxy(load(&argv(&["device-proxy", "--config", path]), no_env).expect("loads"));
    assert_eq!(
        args.connection_string,
        "HostName=h:8443;DeviceId=d;SharedAccessKey=a2V5"
    );
    assert_eq!(args.map, ["ssh=127.0.0.1:22", "web=127.0.0.1:80"]);
    assert_eq!((args.transport.as_str(), args.mqtt_port), ("mqtt", 9883));
    assert_eq!(args.keepalive.ping_interval, 7.5);
    assert_eq!(args.token_ttl, 3600, "a key left out keeps its default");
}

#[test]
fn flags_and_environment_variables_override_the_file() {
    let f = file(
        r#"
connection_string = "from-the-file"
map = ["ssh=127.0.0.1:22"]
mqtt_port = 1
ca_file = "/from/the/file.pem"
"#,
    );
    let path = f.path().to_str().expect("utf-8");
    // Whether a variable is set decides whether the file's value is used; clap then reads the
    // variable itself (from the real environment, which this test leaves alone: the end to end
    // test in tests/device_proxy_config.rs sets it for a real process).
    let env = |var: &str| (var == "ADIT_CA_FILE").then(|| OsString::from("/from/the/env.pem"));
    let args = device_proxy(
        load(
            &argv(&[
                "device-proxy",
                "--mqtt-port=2",
                "--map",
                "web=127.0.0.1:80",
                "--connection-string",
                "from-the-command-line",
                "--config",
                path,
            ]),
            env,
        )
        .expect("loads"),
    );
    assert_eq!(args.mqtt_port, 2, "the flag, not the file");
    assert_eq!(
        args.map,
        ["web=127.0.0.1:80"],
        "a repeatable flag replaces the file's list"
    );
    assert_eq!(args.connection_string, "from-the-command-line");
    assert_ne!(
        args.ca_file.as_deref(),
        Some(std::path::Path::new("/from/the/file.pem")),
        "a variable that is set leaves the file's value out"
    );
}

#[test]
fn the_config_file_may_be_named_by_the_environment() {
    let f = file("connection_string = \"x\"\ntarget = \"127.0.0.1:22\"\n");
    let path = f.path().as_os_str().to_owned();
    let args = device_proxy(
        load(&argv(&["device-proxy"]), |v| {
            (v == CONFIG_ENV).then(|| path.clone())
        })
        .expect("loads"),
    );
    assert_eq!(args.target.as_deref(), Some("127.0.0.1:22"));
}

#[test]
fn mistakes_in_the_file_are_named_without_quoting_it() {
    let secret = "SharedAccessKey=c2VjcmV0LWtleQ==";
    for (text, says) in [
        (
            format!("connection_string = \"{secret}\nmap = [\"ssh=127.0.0.1:22\"]\n"),
            "not valid TOML at line",
        ),
        (
            format!("connection_string = \"{secret}\"\ntarget = \"a:1\"\nnot_a_flag = 1\n"),
            "no key \"not_a_flag\" for `adit device-proxy`; its keys are: connection-string",
        ),
        (
            format!("connection_string = \"{secret}\"\ntarget = \"a:1\"\nproxy = [1]\n"),
            "proxy is a string or a number",
        ),
        (
            format!("connection_string = \"{secret}\"\ntarget = \"a:1\"\nconfig = \"/x\"\n"),
            "no key \"config\"",
        ),
    ] {
        let f = file(&text);
        let path = f.path().to_str().expect("utf-8");
        let e = load(&argv(&["device-proxy", "--config", path]), no_env)
            .expect_err("refused")
            .to_string();
        assert!(e.contains(says), "{e}");
        assert!(!e.contains("c2VjcmV0"), "the secret leaked: {e}");
    }
}

#[cfg(feature = "full")]
#[test]
fn values_of_the_wrong_kind_are_refused_as_the_flags_would_be() {
    let f = file("log_stdout = \"yes\"\n");
    let path = f.path().to_str().expect("utf-8");
    let e = load(&argv(&["hub", "--config", path]), no_env)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("log_stdout is a switch: true or false"), "{e}");
    // A value of the wrong kind is clap's to refuse, as the flag's would be.
    let f = file("https_port = \"eighty\"\n");
    let path = f.path().to_str().expect("utf-8");
    let e = load(&argv(&["hub", "--config", path]), no_env)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("--https-port"), "{e}");
}

#[test]
fn a_missing_file_is_an_error_and_no_file_is_no_change() {
    let e = load(
        &argv(&["device-proxy", "--config", "/nonexistent/adit.toml"]),
        no_env,
    )
    .expect_err("refused");
    assert!(
        e.to_string()
            .starts_with("cannot read the config file /nonexistent/adit.toml")
    );
    let args = device_proxy(
        load(
            &argv(&[
                "device-proxy",
                "--target",
                "a:1",
                "--connection-string",
                "x",
            ]),
            no_env,
        )
        .expect("loads"),
    );
    assert_eq!(args.mqtt_port, 8883);
}

/// Every flag of the command, as the example file must mention it (set or commented out).
fn keys_of(command: &str) -> Vec<String> {
    Cli::command()
        .find_subcommand(command)
        .expect("subcommand")
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !matches!(*l, "config" | "help" | "version"))
        .map(|l| l.replace('-', "_"))
        .collect()
}

#[test]
fn the_example_files_mention_every_flag_and_load() {
    let examples = [("device-proxy", DEVICE_EXAMPLE)];
    #[cfg(feature = "full")]
    let examples = [examples[0], ("hub", HUB_EXAMPLE)];
    for (command, example) in examples {
        for key in keys_of(command) {
            let set = format!("\n{key} = ");
            let commented = format!("\n#{key} = ");
            assert!(
                example.contains(&set) || example.contains(&commented),
                "packaging/config for {command} does not mention {key}"
            );
        }
        // Every commented key, uncommented, is a valid one too.
        let all: String = example
            .lines()
            .map(|l| {
                l.strip_prefix('#')
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let all = all.replace("\ntarget = \"127.0.0.1:22\"\n", "\n");
        let all = all.replace("\ndatabase_url = ", "\n#database_url = ");
        let all = all.replace("\nnats_url = ", "\n#nats_url = ");
        for text in [example.to_string(), all] {
            let f = file(&text);
            let path = f.path().to_str().expect("utf-8");
            load(&argv(&[command, "--config", path]), no_env)
                .unwrap_or_else(|e| panic!("{command}'s example: {e}\n{text}"));
        }
    }
}
