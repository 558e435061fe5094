//! A flood of CONNECTs with bad SAS signatures from attacker addresses (half naming real
//! devices with a wrong key, half naming devices that do not exist), while valid devices
//! connect from 127.0.0.1: their connect latency beside a quiet run, none refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adit_proto::Key;
use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Login, Packet};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::attacker;
use crate::fleet::{DeviceCreds, Fleet};
use crate::row::{Latencies, Row};
use crate::slowloris::Target;

/// CONNACK codes the flood got back.
#[derive(Debug, Default)]
struct Codes {
    attempts: AtomicU64,
    not_authorized: AtomicU64,
    throttled: AtomicU64,
    other: AtomicU64,
    no_answer: AtomicU64,
}

fn connect_packet(fleet: &Fleet, id: &str, password: &str) -> Vec<u8> {
    let mut c = Connect::new(id);
    c.keep_alive = 60;
    c.login = Some(Login::new(fleet.username(id), password));
    let mut out = BytesMut::new();
    let _ = Packet::Connect(c).write(&mut out, 1 << 20);
    out.to_vec()
}

async fn connack<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    packet: &[u8],
) -> Option<ConnectReturnCode> {
    io.write_all(packet).await.ok()?;
    io.flush().await.ok()?;
    let mut buf = BytesMut::new();
    loop {
        if let Ok(Packet::ConnAck(ConnAck { code, .. })) = Packet::read(&mut buf, 1 << 20) {
            return Some(code);
        }
        if io.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}

/// One valid device: TCP, TLS, CONNECT to CONNACK; its latency, or why it failed.
async fn valid_connect(
    fleet: &Fleet,
    tls: &tokio_rustls::TlsConnector,
    d: &DeviceCreds,
) -> Result<Duration, String> {
    let started = Instant::now();
    let tcp = attacker::tcp_from(std::net::Ipv4Addr::LOCALHOST, fleet.mqtt)
        .await
        .map_err(|e| e.to_string())?;
    let mut io = attacker::tls_over(tls, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let token = fleet.device_token(&d.id, &d.key, adit_hub::auth::unix_now() + 3600);
    let code = tokio::time::timeout(
        Duration::from_secs(30),
        connack(&mut io, &connect_packet(fleet, &d.id, &token)),
    )
    .await
    .map_err(|_| "no CONNACK in 30 s".to_string())?;
    let took = started.elapsed();
    match code {
        Some(ConnectReturnCode::Success) => {
            let _ = io.write_all(&[0xe0, 0x00]).await;
            Ok(took)
        }
        other => Err(format!("{other:?}")),
    }
}

/// All valid devices at once; latencies, refusals counted as failures.
async fn connect_all(fleet: &Fleet, devices: &[DeviceCreds]) -> (Latencies, Vec<String>) {
    let tls = attacker::connector(&fleet.ca);
    let results =
        futures_util::future::join_all(devices.iter().map(|d| valid_connect(fleet, &tls, d))).await;
    let mut out = Latencies::default();
    let mut refusals = Vec::new();
    for r in results {
        match r {
            Ok(d) => out.add(d),
            Err(e) => {
                out.failures += 1;
                refusals.push(e);
            }
        }
    }
    (out, refusals)
}

/// Scenario (c).
pub async fn run(
    fleet: &Fleet,
    target: &Target,
    valid: usize,
    attempts: u64,
    concurrency: usize,
) -> anyhow::Result<Vec<Row>> {
    let devices = fleet.create_devices("valid", valid).await?;
    let mut quiet = Latencies::default();
    for _ in 0..3 {
        let (l, r) = connect_all(fleet, &devices).await;
        anyhow::ensure!(r.is_empty(), "valid devices refused on a quiet hub: {r:?}");
        quiet = merge(quiet, l);
    }
    let codes = Arc::new(Codes::default());
    let done = Arc::new(AtomicBool::new(false));
    let wrong = Key::from_bytes(&[0x42; 32])?;
    let started = Instant::now();
    let mut flood = Vec::new();
    for w in 0..concurrency {
        let (t, codes, done, wrong) = (target.clone(), codes.clone(), done.clone(), wrong.clone());
        let ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
        let host = fleet.host_name();
        let username = |id: &str| format!("{host}/{id}/?api-version=2021-04-12");
        let packets: Vec<Vec<u8>> = (0..8usize)
            .map(|k| {
                // Even: a real device with a signature by the wrong key. Odd: no such device.
                let id = if k.is_multiple_of(2) {
                    ids[(w * 8 + k) % ids.len()].clone()
                } else {
                    format!("ghost-{w}-{k}")
                };
                let token = adit_proto::SasToken::sign(
                    &adit_proto::resource::identity_uri(&host, &id, None),
                    &wrong,
                    None,
                    adit_hub::auth::unix_now() + 3600,
                );
                let mut c = Connect::new(id.as_str());
                c.keep_alive = 60;
                c.login = Some(Login::new(username(&id), token));
                let mut out = BytesMut::new();
                let _ = Packet::Connect(c).write(&mut out, 1 << 20);
                out.to_vec()
            })
            .collect();
        flood.push(tokio::spawn(async move {
            let mut k = 0;
            loop {
                if codes.attempts.fetch_add(1, Ordering::Relaxed) >= attempts {
                    codes.attempts.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
                k += 1;
                let answer = async {
                    let tcp = attacker::tcp_from(t.sources.pick(), t.mqtt).await.ok()?;
                    let mut io = attacker::tls_over(&t.tls, tcp).await.ok()?;
                    connack(&mut io, &packets[k % packets.len()]).await
                };
                let counter = match tokio::time::timeout(Duration::from_secs(30), answer).await {
                    Ok(Some(ConnectReturnCode::NotAuthorized)) => &codes.not_authorized,
                    Ok(Some(ConnectReturnCode::ServiceUnavailable)) => &codes.throttled,
                    Ok(Some(_)) => &codes.other,
                    _ => &codes.no_answer,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            done.store(true, Ordering::Relaxed);
        }));
    }
    // Valid devices connect in rounds for as long as the flood lasts.
    let mut during = Latencies::default();
    let mut refusals = Vec::new();
    let mut rounds = 0;
    // At least one round, even when the flood is over first (as in --smoke).
    while rounds == 0 || !done.load(Ordering::Relaxed) {
        let (l, r) = connect_all(fleet, &devices).await;
        during = merge(during, l);
        refusals.extend(r);
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for f in flood {
        let _ = f.await;
    }
    let took = started.elapsed();
    let n = codes.attempts.load(Ordering::Relaxed);
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(vec![
        Row {
            scenario: "bad-sas",
            load: format!(
                "{concurrency} attacker connections at a time from {} addresses",
                target.sources_count()
            ),
            tried: format!("{n} CONNECTs with bad signatures (half real devices, half unknown)"),
            outcome: format!(
                "CONNACK 5 {}, CONNACK 3 (throttled) {}, other {}, no answer {}",
                get(&codes.not_authorized),
                get(&codes.throttled),
                get(&codes.other),
                get(&codes.no_answer)
            ),
            figure: format!(
                "{:.0} attempts/s over {:.1} s",
                n as f64 / took.as_secs_f64(),
                took.as_secs_f64()
            ),
            pass: get(&codes.other) == 0,
        },
        Row {
            scenario: "bad-sas",
            load: format!("the flood above; {rounds} rounds of {valid} valid devices at once"),
            tried: "valid CONNECTs from 127.0.0.1".into(),
            outcome: format!(
                "refused {} {}",
                refusals.len(),
                refusals.first().cloned().unwrap_or_default()
            ),
            figure: format!(
                "connect p50/p99 during {}; quiet {}",
                during.summary(),
                quiet.summary()
            ),
            pass: refusals.is_empty(),
        },
    ])
}

fn merge(mut a: Latencies, b: Latencies) -> Latencies {
    a.absorb(b);
    a
}
