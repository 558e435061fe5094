//! The legitimate load that must keep working during every attack, from 127.0.0.1: REST GETs
//! on fresh HTTPS connections, device SDK connects (MQTT over TLS and over WebSocket, in
//! turn), and one long-lived stream echoing 64 bytes every 100 ms through the gateway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use adit_device::{DeviceClient, DeviceOptions, Transport};
use adit_service::{ServiceClient, ServiceStream, StreamOptions, TlsOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::fleet::Fleet;
use crate::row::Latencies;

/// The echo device's id and stream name.
const ECHO_DEVICE: &str = "legit-echo";
/// Devices the connect probe cycles through.
const CONNECTORS: usize = 8;
/// A probe that takes longer than this counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The legitimate clients, set up once per hub.
pub struct Legit {
    https: std::net::SocketAddr,
    ca: std::path::PathBuf,
    authorization: String,
    mqtt_port: u16,
    connectors: Vec<String>,
    service: ServiceClient,
    stream: Arc<Mutex<Option<ServiceStream>>>,
    _device: JoinHandle<()>,
}

impl std::fmt::Debug for Legit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Legit").finish_non_exhaustive()
    }
}

/// What the legitimate clients saw over one period.
#[derive(Debug, Default, Clone)]
pub struct LegitReport {
    /// `GET /devices/{id}` on a fresh connection each time.
    pub rest: Latencies,
    /// Device SDK: client created to connected and subscribed.
    pub connect: Latencies,
    /// 64-byte echo round trips on the long-lived stream.
    pub echo: Latencies,
}

impl LegitReport {
    /// Failed legitimate attempts of any kind.
    pub fn failures(&self) -> u64 {
        self.rest.failures + self.connect.failures + self.echo.failures
    }

    /// One line: REST, SDK connect and echo p50/p99.
    pub fn summary(&self) -> String {
        format!(
            "REST {}; SDK connect {}; echo {}",
            self.rest.summary(),
            self.connect.summary(),
            self.echo.summary()
        )
    }
}

fn device_options(fleet: &Fleet, transport: Transport) -> DeviceOptions {
    let mut o = DeviceOptions::default();
    o.transport = transport;
    o.mqtt_port = fleet.mqtt.port();
    o.tls = TlsOptions::with_ca_file(&fleet.ca);
    o
}

/// Accepts every stream request and echoes what it reads.
async fn echo_device(mut client: DeviceClient) {
    while let Some(request) = client.next_request().await {
        tokio::spawn(async move {
            if let Ok(mut stream) = request.accept().await {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
    }
}

impl Legit {
    /// Creates the legitimate devices, connects the echo device and opens its stream.
    pub async fn start(fleet: &Fleet) -> anyhow::Result<Self> {
        let echo = fleet.create_devices(ECHO_DEVICE, 1).await?;
        let echo = echo
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no echo device"))?;
        let connectors = fleet.create_devices("legit-conn", CONNECTORS).await?;
        let mut client = DeviceClient::new(
            &fleet.device_cs(&echo)?,
            device_options(fleet, Transport::WebSocket),
        )?;
        tokio::time::timeout(PROBE_TIMEOUT, client.connected()).await?;
        let device = tokio::spawn(echo_device(client));
        let service = ServiceClient::from_connection_string(
            &fleet.owner,
            &TlsOptions::with_ca_file(&fleet.ca),
        )?;
        let stream = open_echo(&service, &echo.id).await?;
        let connectors = connectors
            .iter()
            .map(|c| fleet.device_cs(c))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            https: fleet.https,
            ca: fleet.ca.clone(),
            authorization: fleet.owner_token(adit_hub::auth::unix_now() + 24 * 3600)?,
            mqtt_port: fleet.mqtt.port(),
            connectors,
            service,
            stream: Arc::new(Mutex::new(Some(stream))),
            _device: device,
        })
    }

    /// Runs the three probes until `work` completes; returns its output and what they saw.
    pub async fn during<F: std::future::Future>(&self, work: F) -> (F::Output, LegitReport) {
        let stop = Arc::new(AtomicBool::new(false));
        let rest = tokio::spawn(rest_probe(
            self.https,
            self.ca.clone(),
            self.authorization.clone(),
            stop.clone(),
        ));
        let connect = tokio::spawn(connect_probe(
            self.connectors.clone(),
            self.ca.clone(),
            self.mqtt_port,
            stop.clone(),
        ));
        let echo = tokio::spawn(echo_probe(
            self.service.clone(),
            self.stream.clone(),
            stop.clone(),
        ));
        let out = work.await;
        stop.store(true, Ordering::Relaxed);
        let report = LegitReport {
            rest: rest.await.unwrap_or_default(),
            connect: connect.await.unwrap_or_default(),
            echo: echo.await.unwrap_or_default(),
        };
        (out, report)
    }

    /// The probes alone for `period` (the quiet baseline).
    pub async fn quiet(&self, period: Duration) -> LegitReport {
        self.during(tokio::time::sleep(period)).await.1
    }
}

async fn open_echo(service: &ServiceClient, device: &str) -> anyhow::Result<ServiceStream> {
    Ok(service
        .open_stream(device, "echo", &StreamOptions::default())
        .await?)
}

async fn rest_probe(
    https: std::net::SocketAddr,
    ca: std::path::PathBuf,
    authorization: String,
    stop: Arc<AtomicBool>,
) -> Latencies {
    let mut out = Latencies::default();
    let url = format!(
        "https://localhost:{}/devices/{ECHO_DEVICE}-0?api-version=2021-04-12",
        https.port()
    );
    while !stop.load(Ordering::Relaxed) {
        // A new client each time: a new TCP and TLS connection, as a new caller would make.
        let client = adit_testkit::https_client(&ca);
        let started = Instant::now();
        let sent = tokio::time::timeout(
            PROBE_TIMEOUT,
            client
                .get(&url)
                .header("Authorization", &authorization)
                .send(),
        )
        .await;
        match sent {
            Ok(Ok(r)) if r.status().is_success() => out.add(started.elapsed()),
            _ => out.failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

async fn connect_probe(
    connectors: Vec<String>,
    ca: std::path::PathBuf,
    mqtt_port: u16,
    stop: Arc<AtomicBool>,
) -> Latencies {
    let mut out = Latencies::default();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let cs = &connectors[n % connectors.len()];
        let transport = if n.is_multiple_of(2) {
            Transport::Tls
        } else {
            Transport::WebSocket
        };
        n += 1;
        let mut o = DeviceOptions::default();
        o.transport = transport;
        o.mqtt_port = mqtt_port;
        o.tls = TlsOptions::with_ca_file(&ca);
        let started = Instant::now();
        match DeviceClient::new(cs, o) {
            Ok(mut client) => {
                match tokio::time::timeout(PROBE_TIMEOUT, client.connected()).await {
                    Ok(()) => out.add(started.elapsed()),
                    Err(_) => out.failures += 1,
                }
                client.shutdown().await;
            }
            Err(_) => out.failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    out
}

async fn echo_probe(
    service: ServiceClient,
    stream: Arc<Mutex<Option<ServiceStream>>>,
    stop: Arc<AtomicBool>,
) -> Latencies {
    let mut out = Latencies::default();
    let mut stream = stream.lock().await;
    let payload = [0x5au8; 64];
    let mut back = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        if stream.is_none() {
            // Counted as a failure already; reopen so the probe goes on.
            *stream = open_echo(&service, &format!("{ECHO_DEVICE}-0")).await.ok();
        }
        if let Some(s) = stream.as_mut() {
            let started = Instant::now();
            let round = tokio::time::timeout(PROBE_TIMEOUT, async {
                s.write_all(&payload).await?;
                s.read_exact(&mut back).await?;
                anyhow::Ok(())
            })
            .await;
            match round {
                Ok(Ok(())) if back == payload => out.add(started.elapsed()),
                _ => {
                    out.failures += 1;
                    *stream = None;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out
}
