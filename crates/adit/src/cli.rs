//! Command-line syntax. What the user typed, validated by clap; resolution of defaults that
//! need the environment or the file system happens in `hub_access`.

#[cfg(feature = "full")]
use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Adit: reach any TCP port on a device behind a firewall, by device ID.
#[derive(Debug, Parser)]
#[command(name = "adit", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Logging for a long-running hub is informative; one-shot commands stay quiet.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::DeviceProxy(_) => "info",
            #[cfg(feature = "full")]
            Command::Hub(_) | Command::ServiceProxy(_) => "info",
            // The log itself goes to stdout; keep stderr quiet while following.
            #[cfg(feature = "full")]
            _ => "warn",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a hub (embedded SQLite and generated dev TLS by default: no setup needed).
    #[cfg(feature = "full")]
    Hub(HubArgs),
    /// Manage device identities.
    #[cfg(feature = "full")]
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Show shared access policies, or renew their keys.
    #[cfg(feature = "full")]
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Device side: serve stream requests by connecting each to a local TCP target (e.g. sshd).
    DeviceProxy(DeviceProxyArgs),
    /// Service side: every TCP connection on a local port becomes a stream to a device.
    #[cfg(feature = "full")]
    ServiceProxy(ServiceProxyArgs),
    /// One stream on stdin/stdout (for `ssh -o ProxyCommand='adit connect %h'`).
    #[cfg(feature = "full")]
    Connect(ConnectArgs),
    /// Query the hub's diagnostics log (DeviceStreams, Connections, Authentication).
    #[cfg(feature = "full")]
    Logs(LogsArgs),
    /// Device streams settings of the hub.
    #[cfg(feature = "full")]
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Print a one-time sign-in URL for the hub's web console (good once, for 5 minutes).
    #[cfg(feature = "full")]
    Console(ConsoleArgs),
}

impl Command {
    /// The device proxy's arguments, when it is `adit device-proxy`.
    pub fn into_device_proxy(self) -> Option<DeviceProxyArgs> {
        match self {
            Self::DeviceProxy(args) => Some(args),
            #[cfg(feature = "full")]
            _ => None,
        }
    }

    /// Whether it may be left blocked reading stdin when it ends (`adit connect`).
    pub fn reads_stdin(&self) -> bool {
        #[cfg(feature = "full")]
        if matches!(self, Self::Connect(_)) {
            return true;
        }
        false
    }
}

#[cfg(feature = "full")]
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub access: HubAccess,
}

#[cfg(feature = "full")]
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// DeviceStreams (default), Connections, Authentication, or all.
    #[arg(long, default_value = "DeviceStreams", ignore_case = true,
          value_parser = ["DeviceStreams", "Connections", "Authentication", "all"])]
    pub category: String,
    /// Only this device.
    #[arg(long)]
    pub device: Option<String>,
    /// Only streams with this outcome.
    #[arg(long, value_parser = ["closed", "rejected", "timed_out", "device_offline",
          "device_not_found", "handshake_expired", "cancelled", "server_error", "node_lost"])]
    pub outcome: Option<String>,
    /// From this time: RFC 3339 (2026-11-26T08:00:00Z) or an age (30s, 10m, 2h, 1d).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (same forms).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many records (the newest).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON lines (the records as stored) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep printing new records as they arrive.
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub access: HubAccess,
}

#[cfg(feature = "full")]
#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Print the streaming endpoints, as `az iot hub devicestream show` does.
    Show {
        #[command(flatten)]
        access: HubAccess,
    },
}

#[derive(Debug, Args)]
pub struct DeviceProxyArgs {
    /// TOML file of these flags' values: each key is a flag's long name (e.g. mqtt_port =
    /// 8883), and flags and environment variables override it (see packaging/config/).
    #[arg(long, env = "ADIT_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Device connection string.
    #[arg(long, env = "ADIT_DEVICE_CONNECTION_STRING", hide_env_values = true)]
    pub connection_string: String,
    /// Forward every stream to HOST:PORT.
    #[arg(long, conflicts_with = "map", required_unless_present = "map")]
    pub target: Option<String>,
    /// Forward streams named NAME to HOST:PORT (repeatable); other names are rejected.
    #[arg(long, value_name = "NAME=HOST:PORT")]
    pub map: Vec<String>,
    /// CA certificate to trust [default: ./adit-data/tls/ca.pem when present, else system roots].
    #[arg(long, env = "ADIT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// How to reach the hub: websocket (HTTPS port) or mqtt (MQTT over TLS).
    #[arg(long, default_value = "websocket", value_parser = ["websocket", "mqtt"])]
    pub transport: String,
    /// MQTT over TLS port, with --transport mqtt.
    #[arg(long, default_value_t = 8883)]
    pub mqtt_port: u16,
    /// Lifetime in seconds of the SAS tokens the proxy signs. The hub closes a session when its
    /// token expires, so the proxy reconnects with a fresh one at 85 % of this; open streams
    /// are not affected. Short values are for tests.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub token_ttl: u64,
    #[command(flatten)]
    pub keepalive: KeepaliveArgs,
    #[command(flatten)]
    pub proxy: ProxyArgs,
}

/// The HTTP proxy between a client command and the hub. Its environment variables are read
/// in `hub_access`, not by clap, so `--help` never prints their values (a proxy URL may hold
/// a password).
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// HTTP CONNECT proxy for every connection to the hub (TLS stays end to end through it):
    /// http://[USER:PASSWORD@]HOST[:PORT], or `none` to connect directly whatever the
    /// environment says [default: $https_proxy, $HTTPS_PROXY, $all_proxy or $ALL_PROXY, the
    /// first set; hosts listed in $no_proxy or $NO_PROXY are reached directly].
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
}

/// WebSocket keep-alive of the connections to the hub (stream legs, MQTT over WebSocket).
#[derive(Debug, Args)]
pub struct KeepaliveArgs {
    /// Seconds without receiving anything from the hub after which a WebSocket ping is sent
    /// (keeps idle streams open through load balancers); 0 turns pings off.
    #[arg(long, default_value_t = 20.0, value_name = "SECS")]
    pub ping_interval: f64,
    /// Seconds the hub has to answer a ping before the connection is given up as dead.
    #[arg(long, default_value_t = 20.0, value_name = "SECS")]
    pub pong_timeout: f64,
}

#[cfg(feature = "full")]
#[derive(Debug, Args)]
pub struct ServiceProxyArgs {
    /// Device to reach.
    #[arg(long)]
    pub device: String,
    /// Local address to listen on.
    #[arg(long, default_value = "127.0.0.1:2222")]
    pub listen: std::net::SocketAddr,
    /// One raw stream per connection, as Azure's samples do, instead of one multiplexed,
    /// resumable session (adit.stream.v1) for all of them. Devices that do not speak the
    /// Adit stream protocol get raw streams anyway.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub stream: StreamArgs,
}

#[cfg(feature = "full")]
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Device to reach.
    pub device: String,
    #[command(flatten)]
    pub stream: StreamArgs,
}

/// How a service-side command opens its streams.
#[cfg(feature = "full")]
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Stream name the device proxy routes by (1 to 128 of A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * , ; = : @).
    #[arg(long, default_value = "ssh", value_parser = stream_name)]
    pub stream_name: String,
    /// Seconds the hub waits for the device if it is offline (e.g. reconnecting).
    #[arg(long, default_value_t = 5.0)]
    pub connect_timeout: f64,
    #[command(flatten)]
    pub keepalive: KeepaliveArgs,
    #[command(flatten)]
    pub access: HubAccess,
}

#[cfg(feature = "full")]
#[derive(Debug, Args)]
pub struct HubArgs {
    /// TOML file of these flags' values: each key is a flag's long name (e.g. mqtt_port =
    /// 8883), and flags and environment variables override it (see packaging/config/).
    #[arg(long, env = "ADIT_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Directory for the registry, dev TLS material and the owner connection string.
    #[arg(long, env = "ADIT_DATA_DIR", default_value = "adit-data")]
    pub data_dir: PathBuf,
    /// Keep the registry in PostgreSQL instead (postgres://user@host/db).
    #[arg(long, env = "ADIT_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Host name clients use to reach the hub (connection strings, certificate, token audience);
    /// an IPv6 address as ::1 or [::1].
    #[arg(long, env = "ADIT_HOSTNAME", default_value = "localhost")]
    pub hostname: String,
    /// Address to listen on (:: for IPv6 and IPv4; [::1] or ::1 for IPv6 loopback).
    #[arg(long, env = "ADIT_LISTEN_ADDR", default_value = "0.0.0.0", value_parser = listen_addr)]
    pub listen_addr: IpAddr,
    /// HTTPS port: service API, MQTT over WebSocket and the streaming gateway.
    #[arg(long, env = "ADIT_HTTPS_PORT", default_value_t = 8443)]
    pub https_port: u16,
    /// Device port: MQTT 3.1.1 over TLS (devices may also use MQTT over WebSocket on the HTTPS port).
    #[arg(long, env = "ADIT_MQTT_PORT", default_value_t = 8883)]
    pub mqtt_port: u16,
    /// Loopback admin listener: Prometheus /metrics and /healthz (plain HTTP).
    #[arg(long, env = "ADIT_ADMIN_ADDR", default_value = "127.0.0.1:9090")]
    pub admin_addr: std::net::SocketAddr,
    /// URL devices and services use to reach the HTTPS port when it differs from
    /// https://HOSTNAME:PORT (behind a load balancer or NAT), e.g. https://hub.example.com.
    #[arg(long, env = "ADIT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Also print diagnostics records (DeviceStreams, Connections, Authentication) to stdout.
    #[arg(long)]
    pub log_stdout: bool,
    /// Rotate the diagnostics log past this many MiB.
    #[arg(long, default_value_t = 64)]
    pub log_max_mib: u64,
    /// Most device connections at once (MQTT over TLS and over WebSocket together).
    #[arg(long, default_value_t = 20_000)]
    pub max_devices: usize,
    /// PEM certificate chain to serve instead of a generated dev certificate.
    #[arg(long, env = "ADIT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "ADIT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Most HTTPS connections served at once (each open stream uses two; a device on MQTT
    /// over WebSocket counts under --max-devices once connected).
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most streams in progress on this hub; more get 429 ThrottlingException.
    #[arg(long, default_value_t = 10_000)]
    pub max_streams: usize,
    /// Most streams in progress to one device.
    #[arg(long, default_value_t = 200)]
    pub max_streams_per_device: usize,
    /// Most new streams per second on this hub.
    #[arg(long, default_value_t = 1_000)]
    pub max_stream_rate: u32,
    /// Seconds of silence on a stream leg before the hub pings it (keeps idle streams alive
    /// through load balancers' idle timeouts, commonly 60 s).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ping_interval: u64,
    /// Seconds after a ping for any sign of life before a stream leg counts as dead and the
    /// stream is closed (1001).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub pong_timeout: u64,
    /// Seconds a stream that carries the Adit stream protocol (adit service-proxy to adit
    /// device-proxy) waits for a side whose network dropped to come back, before it ends.
    /// Raw streams (Azure's SDKs) end when either side drops.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub resume_grace: u64,
    /// On SIGTERM or SIGINT, seconds that open streams and requests get to finish before they
    /// are closed (streams with 1001 Going Away).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub shutdown_grace: u64,
    /// This node's id, recorded with the device connections it holds; at start the node marks
    /// the devices it held as Disconnected (after a crash they would stay Connected). Must stay
    /// the same across restarts and differ between nodes sharing a registry [default: the host
    /// name].
    #[arg(long, env = "ADIT_NODE_ID")]
    pub node_id: Option<String>,
    /// NATS server linking the hub nodes that share one --database-url (PostgreSQL), e.g.
    /// nats://10.0.0.5:4222: stream requests reach the node holding the device, and a device
    /// connecting to another node closes its old session. Without it the hub is one node.
    #[arg(long, env = "ADIT_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
}

/// How a command reaches the hub.
#[cfg(feature = "full")]
#[derive(Debug, Args)]
pub struct HubAccess {
    /// Service connection string [default: the owner string in $ADIT_DATA_DIR or ./adit-data].
    #[arg(long, env = "ADIT_CONNECTION_STRING", hide_env_values = true)]
    pub connection_string: Option<String>,
    /// CA certificate to trust [default: $ADIT_DATA_DIR/tls/ca.pem or ./adit-data/tls/ca.pem when present, else system roots].
    #[arg(long, env = "ADIT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub proxy: ProxyArgs,
}

#[cfg(feature = "full")]
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Create a device with generated keys and print its connection string (or write it to
    /// --output).
    Create {
        /// Device id.
        id: String,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        output: SecretOutput,
        #[command(flatten)]
        access: HubAccess,
    },
    /// List devices.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
        top: u32,
        #[command(flatten)]
        access: HubAccess,
    },
    /// Show one device as JSON.
    Show {
        /// Device id.
        id: String,
        #[command(flatten)]
        access: HubAccess,
    },
    /// Delete a device.
    Delete {
        /// Device id.
        id: String,
        #[command(flatten)]
        access: HubAccess,
    },
    /// Print a device's connection string (or write it to --output).
    ConnectionString {
        /// Device id.
        id: String,
        #[command(flatten)]
        output: SecretOutput,
        #[command(flatten)]
        access: HubAccess,
    },
    /// Replace a device's primary or secondary key, or swap them, and print its connection
    /// string (the primary key's) or write it to --output. Holds at once, on every hub node:
    /// the device's sessions signed with a replaced key are disconnected.
    RenewKey {
        /// Device id.
        id: String,
        /// Which key to replace, or swap the two.
        #[arg(long, value_parser = ["primary", "secondary", "swap"])]
        key: String,
        #[command(flatten)]
        output: SecretOutput,
        #[command(flatten)]
        access: HubAccess,
    },
    /// Enable or disable a device.
    SetStatus {
        /// Device id.
        id: String,
        /// enabled or disabled.
        #[arg(value_parser = ["enabled", "disabled"])]
        status: String,
        #[command(flatten)]
        access: HubAccess,
    },
}

/// Where a command puts a secret it prints.
#[cfg(feature = "full")]
#[derive(Debug, Args)]
pub struct SecretOutput {
    /// Write it to FILE, readable only by you (mode 0600), instead of printing it. Prefer this
    /// to `> FILE`, which leaves the secret as readable as your umask allows.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[cfg(feature = "full")]
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List shared access policies and their rights (needs the owner connection string).
    List {
        /// Also print each policy's service connection string.
        #[arg(long)]
        show_keys: bool,
        #[command(flatten)]
        access: HubAccess,
    },
    /// Replace a policy's primary or secondary key, or swap them (needs the owner connection
    /// string). Holds at once: tokens signed with a replaced key are refused and devices that
    /// connected with one are disconnected.
    RenewKey {
        /// Policy name (iothubowner, service, device, registryRead, registryReadWrite).
        name: String,
        /// Which key to replace, or swap the two.
        #[arg(long, value_parser = ["primary", "secondary", "swap"])]
        key: String,
        #[command(flatten)]
        access: HubAccess,
    },
}

/// `--stream-name`: refused at once, with the reason, when no hub would accept it.
#[cfg(feature = "full")]
fn stream_name(s: &str) -> Result<String, adit_proto::StreamNameError> {
    adit_proto::stream_name::check_stream_name(s).map(|()| s.to_string())
}

/// An IP address, an IPv6 one with or without brackets (`::`, `[::1]`).
#[cfg(feature = "full")]
fn listen_addr(s: &str) -> Result<IpAddr, String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse()
        .map_err(|_| format!("{s:?} is not an IP address (e.g. 0.0.0.0, ::, [::1])"))
}
