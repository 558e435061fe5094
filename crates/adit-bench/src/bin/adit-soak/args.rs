//! The command line: run length, sampling period and the traffic mix, with the defaults of
//! the published run.

use std::path::PathBuf;
use std::time::Duration;

/// `adit-soak`: one real hub under an hour of mixed traffic, sampled.
#[derive(Debug, clap::Parser)]
pub struct Args {
    /// How long the traffic runs (`90s`, `3m`, `1h`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub duration: Duration,
    /// Sampling period.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// The `adit` binary run as the hub and the device proxies; default: the one next to
    /// this program (the same build).
    #[arg(long)]
    pub adit: Option<PathBuf>,
    /// Where the CSV, the report and the logs go.
    #[arg(long, default_value = "target/soak")]
    pub out: PathBuf,
    /// Stable devices running the device SDK in this process (half over MQTT/WebSocket,
    /// half over MQTT/TLS), echoing every stream.
    #[arg(long, default_value_t = 4)]
    pub sdk_devices: usize,
    /// Stable devices served by `adit device-proxy` processes, forwarding to a TCP echo server.
    #[arg(long, default_value_t = 2)]
    pub proxy_devices: usize,
    /// Devices that connect and disconnect over and over (device SDK).
    #[arg(long, default_value_t = 6)]
    pub flapping_devices: usize,
    /// Time a flapping device stays connected in each cycle.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub flap_up: Duration,
    /// Time a flapping device stays away in each cycle.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub flap_down: Duration,
    /// A new interactive stream every this often.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interactive_every: Duration,
    /// 64-byte messages per interactive stream.
    #[arg(long, default_value_t = 120)]
    pub interactive_messages: u64,
    /// Pause between an echo and the next message.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub message_every: Duration,
    /// A new bulk stream every this often.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub bulk_every: Duration,
    /// MiB each bulk stream sends (and gets back).
    #[arg(long, default_value_t = 4)]
    pub bulk_mib: u64,
}

/// `250ms`, `90s`, `3m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("{s:?}: give a unit (ms, s, m or h)"))?;
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?}: not a number before the unit"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: the unit is ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
