//! `--config PATH`: a TOML file of flag values for the long-running commands (`adit hub`,
//! `adit device-proxy`), as a system service keeps its settings in `/etc/adit/`.
//!
//! Every flag of the command is a key, by its long name (`mqtt-port` or `mqtt_port`): a string,
//! a number or a boolean (a switch), or an array for a repeatable flag (`map`). Flags on the
//! command line and environment variables override the file. The file's values become flags
//! appended to the command line before clap parses it, so a file value is checked exactly as
//! the flag would be, and clap stays the one place that knows the syntax.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::{ArgAction, CommandFactory as _, Parser as _};

use crate::cli::Cli;

/// The commands that read a config file.
pub const CONFIGURABLE: [&str; 2] = ["hub", "device-proxy"];
/// The environment variable naming the file when `--config` is not given.
pub const CONFIG_ENV: &str = "ADIT_CONFIG";
/// A config file larger than this is refused (a real one is a few KiB).
const MAX_FILE: u64 = 1024 * 1024;

/// Why the command line and config file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// clap's own error (bad flags, including values that came from the file).
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML, or not the shape this command takes. The text never quotes the
    /// file (its values may be secrets): it gives the line and what is wrong.
    #[error("config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}

/// Parses `argv` (the program name first) as `adit` does, with the config file's values for
/// flags that neither `argv` nor the environment (`env`, looked up by variable name) gives.
pub fn load(argv: &[OsString], env: impl Fn(&str) -> Option<OsString>) -> Result<Cli, ConfigError> {
    let command = Cli::command();
    // The subcommand: the first word after the program name that is not an option.
    let Some((at, sub)) = argv
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, a)| !a.to_string_lossy().starts_with('-'))
        .and_then(|(i, a)| a.to_str().map(|s| (i, s.to_string())))
    else {
        return Ok(Cli::try_parse_from(argv)?);
    };
    let Some(sub_command) = command
        .get_subcommands()
        .find(|c| c.get_name() == sub && CONFIGURABLE.contains(&c.get_name()))
    else {
        return Ok(Cli::try_parse_from(argv)?);
    };
    let given = &argv[at + 1..];
    let Some(path) = option_value(given, "config").or_else(|| env(CONFIG_ENV).map(PathBuf::from))
    else {
        return Ok(Cli::try_parse_from(argv)?);
    };
    let table = read_table(&path)?;
    let invalid = |message: String| ConfigError::Invalid {
        path: path.clone(),
        message,
    };
    let mut extra: Vec<OsString> = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = sub_command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config");
        let Some(arg) = arg else {
            let keys: Vec<&str> = sub_command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|l| !matches!(*l, "config" | "help" | "version"))
                .collect();
            return Err(invalid(format!(
                "no key {key:?} for `adit {sub}`; its keys are: {}",
                keys.join(", ")
            )));
        };
        let on_command_line = given.iter().any(|a| names_flag(a, &long, arg.get_short()));
        let in_environment = arg
            .get_env()
            .and_then(OsStr::to_str)
            .is_some_and(|var| env(var).is_some());
        if on_command_line || in_environment {
            continue;
        }
        let flag = format!("--{long}");
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(on)) => {
                if *on {
                    extra.push(flag.into());
                }
            }
            (ArgAction::SetTrue, _) => {
                return Err(invalid(format!("{key} is a switch: true or false")));
            }
            (ArgAction::Append, toml::Value::Array(items)) => {
                for item in items {
                    let text = scalar(item).ok_or_else(|| {
                        invalid(format!("{key}: each item is a string or a number"))
                    })?;
                    extra.push(format!("{flag}={text}").into());
                }
            }
            (_, v) => {
                let text =
                    scalar(v).ok_or_else(|| invalid(format!("{key} is a string or a number")))?;
                extra.push(format!("{flag}={text}").into());
            }
        }
    }
    let mut full = argv.to_vec();
    full.extend(extra);
    Ok(Cli::try_parse_from(full)?)
}

/// The value of `--name VALUE` or `--name=VALUE` in `args`, the last one given.
fn option_value(args: &[OsString], name: &str) -> Option<PathBuf> {
    let flag = format!("--{name}");
    let prefix = format!("--{name}=");
    let mut found = None;
    let mut args = args.iter();
    while let Some(a) = args.next() {
        let text = a.to_string_lossy();
        if text == flag {
            found = args.next().map(PathBuf::from);
        } else if let Some(v) = text.strip_prefix(&prefix) {
            found = Some(PathBuf::from(v));
        }
    }
    found
}

/// Whether the command-line word `a` is the flag `--long` (alone or `--long=...`) or `-s`.
fn names_flag(a: &OsStr, long: &str, short: Option<char>) -> bool {
    let text = a.to_string_lossy();
    let Some(rest) = text.strip_prefix("--") else {
        return short.is_some_and(|s| text.strip_prefix('-') == Some(&s.to_string()));
    };
    rest == long || rest.strip_prefix(long).is_some_and(|r| r.starts_with('='))
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_FILE {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!("{size} bytes; a config file is at most {MAX_FILE}"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    text.parse::<toml::Table>().map_err(|e| {
        // The error's own Display quotes the line, which may hold a secret: only where.
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            message: match line {
                Some(n) => format!("not valid TOML at line {n}: {}", e.message()),
                None => format!("not valid TOML: {}", e.message()),
            },
        }
    })
}

#[cfg(test)]
mod tests;
