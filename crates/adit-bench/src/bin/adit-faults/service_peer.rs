//! The service side as a process that stops where the harness says: it initiates a stream over
//! REST as Azure's service SDKs do, then holds at "accepted" (200 in hand, gateway not yet
//! dialled) or at "connecting" (gateway TCP and TLS up, upgrade request half sent) until a
//! line arrives on stdin, then goes on. Every step and its end are printed, one line each.

use std::sync::Arc;

use adit_service::ServiceCredentials;
use adit_transport::ProxyConfig;
use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// Where the peer holds.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Hold {
    /// After the hub's 200, before dialling the gateway.
    Accepted,
    /// With the gateway's TLS up and the WebSocket upgrade request half written.
    Connecting,
}

/// `adit-faults service-peer`: settings come from the environment the harness sets
/// (`ADIT_CONNECTION_STRING`, `ADIT_CA_FILE`), as for `adit connect`.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// Device to reach.
    device: String,
    /// Stream name.
    #[arg(long, default_value = "ssh")]
    stream_name: String,
    /// Where to hold.
    #[arg(long, value_enum)]
    hold: Hold,
}

/// Runs the peer; prints `ended: WHY` and returns an error when its stream cannot go on.
pub async fn run(args: PeerArgs) -> anyhow::Result<()> {
    let ended = |e: anyhow::Error| {
        println!("ended: {e:#}");
        e
    };
    step(args).await.map_err(ended)
}

async fn step(args: PeerArgs) -> anyhow::Result<()> {
    let cs = std::env::var("ADIT_CONNECTION_STRING").context("ADIT_CONNECTION_STRING")?;
    let ca = std::path::PathBuf::from(std::env::var("ADIT_CA_FILE").context("ADIT_CA_FILE")?);
    let credentials = ServiceCredentials::from_connection_string(&cs)?;
    let response = adit_testkit::https_client(&ca)
        .post(format!(
            "https://{}/twins/{}/streams/{}?api-version=2021-04-12",
            credentials.host_name(),
            args.device,
            args.stream_name
        ))
        .header("Authorization", credentials.authorization())
        .header("iothub-streaming-connect-timeout-in-seconds", "30")
        .send()
        .await
        .context("initiating")?;
    let header = |n: &str| {
        response
            .headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (Some(url), Some(token)) = (
        header("iothub-streaming-url"),
        header("iothub-streaming-auth-token"),
    ) else {
        anyhow::bail!("the hub answered {} without a stream", response.status());
    };
    println!("accepted");
    let tls = Arc::new(adit_testkit::client_tls_config(&ca));
    match args.hold {
        Hold::Accepted => {
            go().await?;
            let mut stream =
                adit_transport::connect_gateway(&url, &token, tls, None, &ProxyConfig::direct())
                    .await
                    .context("joining the gateway")?;
            println!("joined");
            stream.write_all(b"ping\n").await?;
            let mut echoed = [0u8; 5];
            stream
                .read_exact(&mut echoed)
                .await
                .context("reading the echo")?;
            anyhow::bail!("the stream still relays");
        }
        Hold::Connecting => half_upgrade(&url, &token, tls).await,
    }
}

/// Opens the gateway's TCP and TLS, writes the request line and `Host`, holds, then writes the
/// rest of the upgrade and reports the gateway's answer.
async fn half_upgrade(
    url: &str,
    token: &str,
    tls: Arc<rustls::ClientConfig>,
) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(url)?;
    let host = url
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("no host"))?
        .to_string();
    let port = url.port().unwrap_or(443);
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    let name = rustls::pki_types::ServerName::try_from(host.clone())?;
    let mut tls = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?;
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n").as_bytes())
        .await?;
    tls.flush().await?;
    println!("connecting");
    go().await?;
    tls.write_all(
        format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .context("finishing the upgrade")?;
    let mut status = String::new();
    BufReader::new(&mut tls)
        .read_line(&mut status)
        .await
        .context("reading the gateway's answer")?;
    match status.trim() {
        "" => anyhow::bail!("the gateway closed the connection"),
        s if s.contains(" 101 ") => anyhow::bail!("the gateway still upgrades: {s}"),
        s => anyhow::bail!("the gateway answered {s}"),
    }
}

/// Waits for the harness's go-ahead: one line on stdin.
async fn go() -> anyhow::Result<()> {
    let mut line = String::new();
    BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await?;
    Ok(())
}
