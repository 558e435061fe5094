//! Token replay and wrong-role tokens at the gateway, and SAS tokens for another identity or
//! expired at the MQTT and REST endpoints: each refused with the right status, and no refused
//! attempt ever relays a byte (the stream it aimed at still carries exactly its own bytes).

use std::time::Duration;

use adit_testkit::{gateway_connect, gateway_status};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_websockets::Message;

use crate::fleet::Fleet;
use crate::oversize::initiate;
use crate::row::Row;

fn device_url(service_url: &str) -> String {
    match service_url.strip_suffix("/service") {
        Some(base) => format!("{base}/device"),
        None => service_url.to_string(),
    }
}

/// The echo device answers what the service half sends, and nothing else arrives.
async fn echoes_exactly(fleet: &Fleet, url: &str, token: &str) -> Result<(), String> {
    let mut ws = gateway_connect(url, token, &fleet.ca, None).await?;
    ws.send(Message::binary(b"only-mine".to_vec()))
        .await
        .map_err(|e| e.to_string())?;
    let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .map_err(|_| "no echo in 10 s".to_string())?;
    let _ = ws.close().await;
    match got {
        Some(Ok(m)) if m.as_payload()[..] == b"only-mine"[..] => Ok(()),
        other => Err(format!("unexpected: {other:?}")),
    }
}

async fn mqtt_code(fleet: &Fleet, id: &str, password: &str) -> String {
    let mut c = adit_testkit::RawMqtt::tls(fleet.mqtt, &fleet.ca).await;
    match c.connect(id, &fleet.username(id), password, 60).await {
        Some(code) => format!("CONNACK {code:?}"),
        None => "closed without CONNACK".into(),
    }
}

async fn rest_status(fleet: &Fleet, authorization: &str) -> String {
    let r = adit_testkit::https_client(&fleet.ca)
        .get(format!(
            "https://localhost:{}/devices?api-version=2021-04-12",
            fleet.https.port()
        ))
        .header("Authorization", authorization)
        .send()
        .await;
    match r {
        Ok(r) => format!("HTTP {}", r.status().as_u16()),
        Err(e) => format!("error {e}"),
    }
}

/// Scenario (d). `expired` waits out a stream's 60-s handshake deadline.
pub async fn run(fleet: &Fleet, expired: bool) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut row = |tried: &str, got: String, want: &str, relayed: Option<Result<(), String>>| {
        let relay_ok = relayed.as_ref().is_none_or(|r| r.is_ok());
        rows.push(Row {
            scenario: "replay",
            load: "legitimate echo stream open".into(),
            tried: tried.into(),
            outcome: got.clone(),
            figure: match &relayed {
                None => format!("expect {want}; refused before any relay"),
                Some(Ok(())) => {
                    format!("expect {want}; the real halves then echoed exactly their own bytes")
                }
                Some(Err(e)) => format!("expect {want}; the real stream failed: {e}"),
            },
            pass: got.starts_with(want) && relay_ok,
        });
    };
    let status =
        |(s, code): (u16, Option<String>)| format!("HTTP {s} {}", code.unwrap_or_default());

    // A: the service token on the device path, then the token for stream A on stream B,
    // then the real service half of A, then A's service token again.
    let (url_a, token_a) = initiate(fleet).await?;
    let (url_b, token_b) = initiate(fleet).await?;
    let got = status(gateway_status(&device_url(&url_a), Some(&token_a), &fleet.ca).await);
    row(
        "gateway: service token on the device path",
        got,
        "HTTP 401",
        None,
    );
    let got = status(gateway_status(&url_b, Some(&token_a), &fleet.ca).await);
    row(
        "gateway: stream A's token on stream B",
        got,
        "HTTP 401",
        None,
    );
    let got = status(
        gateway_status(
            &url_a,
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            &fleet.ca,
        )
        .await,
    );
    row("gateway: a made-up token", got, "HTTP 401", None);
    let got = status(gateway_status(&url_a, None, &fleet.ca).await);
    row("gateway: no token", got, "HTTP 401", None);
    let relayed = echoes_exactly(fleet, &url_a, &token_a).await;
    let got = status(gateway_status(&url_a, Some(&token_a), &fleet.ca).await);
    row(
        "gateway: a used token again (stream A after its pairing)",
        got,
        "HTTP 401",
        Some(relayed),
    );
    let relayed = echoes_exactly(fleet, &url_b, &token_b).await;
    let got = status(gateway_status(&url_b, Some(&token_b), &fleet.ca).await);
    row(
        "gateway: stream B's token again after B ended",
        got,
        "HTTP 401",
        Some(relayed),
    );

    if expired {
        let (url_c, token_c) = initiate(fleet).await?;
        tokio::time::sleep(Duration::from_secs(62)).await;
        let got = status(gateway_status(&url_c, Some(&token_c), &fleet.ca).await);
        row(
            "gateway: a token past its stream's 60-s handshake deadline",
            got,
            "HTTP 401",
            None,
        );
    }

    let devices = fleet.create_devices("replay", 2).await?;
    let (a, b) = (&devices[0], &devices[1]);
    let now = adit_hub::auth::unix_now();
    let for_b = fleet.device_token(&b.id, &b.key, now + 3600);
    row(
        "MQTT: device A presents device B's valid token",
        mqtt_code(fleet, &a.id, &for_b).await,
        "CONNACK NotAuthorized",
        None,
    );
    let expired_a = fleet.device_token(&a.id, &a.key, now.saturating_sub(3600));
    row(
        "MQTT: device A's own token, expired an hour ago",
        mqtt_code(fleet, &a.id, &expired_a).await,
        "CONNACK NotAuthorized",
        None,
    );
    let b_key_for_a = fleet.device_token(&a.id, &b.key, now + 3600);
    row(
        "MQTT: A's resource signed with B's key",
        mqtt_code(fleet, &a.id, &b_key_for_a).await,
        "CONNACK NotAuthorized",
        None,
    );
    let good = fleet.device_token(&a.id, &a.key, now + 3600);
    row(
        "MQTT: A's valid token (control)",
        mqtt_code(fleet, &a.id, &good).await,
        "CONNACK Success",
        None,
    );
    row(
        "REST: an owner token expired an hour ago",
        rest_status(fleet, &fleet.owner_token(now.saturating_sub(3600))?).await,
        "HTTP 401",
        None,
    );
    row(
        "REST: a device's SAS token",
        rest_status(fleet, &good).await,
        "HTTP 401",
        None,
    );
    Ok(rows)
}
