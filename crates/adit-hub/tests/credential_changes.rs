//! Registry changes end the sessions they invalidate, on a real hub over real TLS: new device
//! keys close the sessions signed with a replaced key (and only those), disabling or deleting
//! closes every session of the device, and a policy's new key holds at once for services and
//! devices alike, without a restart.

use std::time::Duration;

use adit_hub::auth::unix_now;
use adit_proto::resource::identity_uri;
use adit_proto::{Key, SasToken};
use adit_testkit::{RawMqtt, TestHub, https_client};
use reqwest::StatusCode;
use rumqttc::mqttbytes::v4::ConnectReturnCode;
use serde_json::{Value, json};

const V: &str = "api-version=2021-04-12";
const CHANGED: &str = "the key that signed the session's SAS token was replaced";
const REVOKED: &str = "device disabled or deleted";

/// `client_id` (`dev` or `dev/module`) connected over TLS with a token signed by `key`
/// (`policy` names the policy the key belongs to, if any).
async fn connect(
    hub: &TestHub,
    client_id: &str,
    key: &Key,
    policy: Option<&str>,
) -> Option<ConnectReturnCode> {
    let (device, module) = match client_id.split_once('/') {
        Some((d, m)) => (d, Some(m)),
        None => (client_id, None),
    };
    let token = SasToken::sign(
        &identity_uri(&hub.host_name(), device, module),
        key,
        policy,
        unix_now() + 3600,
    );
    let mut c = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path).await;
    c.connect(client_id, &hub.username(client_id), &token, 60)
        .await
}

async fn connected(hub: &TestHub, client_id: &str, key: &Key, policy: Option<&str>) -> RawMqtt {
    let (device, module) = match client_id.split_once('/') {
        Some((d, m)) => (d, Some(m)),
        None => (client_id, None),
    };
    let token = SasToken::sign(
        &identity_uri(&hub.host_name(), device, module),
        key,
        policy,
        unix_now() + 3600,
    );
    let mut c = RawMqtt::tls(hub.mqtt_addr, &hub.ca_path).await;
    assert_eq!(
        c.connect(client_id, &hub.username(client_id), &token, 60)
            .await,
        Some(ConnectReturnCode::Success),
        "{client_id} connects"
    );
    assert!(c.ping().await);
    c
}

async fn owner(
    hub: &TestHub,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = https_client(&hub.ca_path)
        .request(method, format!("{}{path}", hub.base_url()))
        .header("Authorization", hub.owner_token());
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    if path.starts_with("/devices/") {
        req = req.header("If-Match", "*");
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The reason of the last disconnect record of `device`, once there is one.
async fn last_disconnect(hub: &TestHub, device: &str) -> String {
    let is_disconnect = |r: &Value| r["operationName"] == "deviceDisconnect";
    let records = hub
        .connection_records(device, |rs| rs.iter().any(is_disconnect))
        .await;
    records
        .iter()
        .rev()
        .find(|r| is_disconnect(r))
        .and_then(|r| r["resultDescription"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn fresh_key(seed: u8) -> Key {
    Key::from_bytes(&[seed; 32]).expect("32 bytes is a valid key")
}

fn key_of(device: &Value, which: &str) -> Key {
    Key::from_base64(
        device["authentication"]["symmetricKey"][which]
            .as_str()
            .expect("key"),
    )
    .expect("valid key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerating_a_device_key_closes_only_the_sessions_signed_with_it() {
    let hub = TestHub::start().await;
    hub.create_device("dev").await;
    let (_, device) = owner(
        &hub,
        reqwest::Method::GET,
        &format!("/devices/dev?{V}"),
        None,
    )
    .await;
    let (primary, secondary) = (
        key_of(&device, "primaryKey"),
        key_of(&device, "secondaryKey"),
    );
    // The device itself with its primary key; one of its modules with the secondary.
    let mut by_primary = connected(&hub, "dev", &primary, None).await;
    let mut by_secondary = connected(&hub, "dev/mod", &secondary, None).await;

    // A new primary key, as `az iot hub device-identity renew-key` sends it; secondary kept.
    let mut body = device.clone();
    body["authentication"]["symmetricKey"]["primaryKey"] = json!(fresh_key(1).to_base64());
    let (status, updated) = owner(
        &hub,
        reqwest::Method::PUT,
        &format!("/devices/dev?{V}"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new_primary = key_of(&updated, "primaryKey");
    assert_eq!(new_primary, fresh_key(1));
    assert_eq!(key_of(&updated, "secondaryKey"), secondary);

    assert!(
        by_primary.closed_within(Duration::from_secs(5)).await,
        "old primary: closed"
    );
    assert_eq!(last_disconnect(&hub, "dev").await, CHANGED);
    assert!(
        by_secondary.ping().await,
        "the kept secondary key still holds"
    );
    assert_eq!(
        connect(&hub, "dev", &primary, None).await,
        Some(ConnectReturnCode::NotAuthorized),
        "the old key is refused"
    );
    let mut renewed = connected(&hub, "dev", &new_primary, None).await;

    // Now the secondary: its module session goes, the new primary's session stays.
    let mut body = updated.clone();
    body["authentication"]["symmetricKey"]["secondaryKey"] = json!(fresh_key(2).to_base64());
    let (status, _) = owner(
        &hub,
        reqwest::Method::PUT,
        &format!("/devices/dev?{V}"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        by_secondary.closed_within(Duration::from_secs(5)).await,
        "old secondary: closed"
    );
    assert!(renewed.ping().await);

    // An update that changes no key (status reason only) closes nothing.
    let (_, current) = owner(
        &hub,
        reqwest::Method::GET,
        &format!("/devices/dev?{V}"),
        None,
    )
    .await;
    let mut body = current.clone();
    body["statusReason"] = json!("routine edit");
    let (status, _) = owner(
        &hub,
        reqwest::Method::PUT,
        &format!("/devices/dev?{V}"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!renewed.closed_within(Duration::from_millis(500)).await);
    assert!(renewed.ping().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_or_deleting_closes_every_session_of_the_device_with_the_reason() {
    let hub = TestHub::start().await;
    let k1 = hub.create_device("to-disable").await;
    let k2 = hub.create_device("to-delete").await;
    let k3 = hub.create_device("bystander").await;
    let mut d1 = connected(&hub, "to-disable", &k1, None).await;
    let mut m1 = connected(&hub, "to-disable/mod", &k1, None).await;
    let mut d2 = connected(&hub, "to-delete", &k2, None).await;
    let mut d3 = connected(&hub, "bystander", &k3, None).await;

    hub.set_device_status("to-disable", "disabled").await;
    assert!(d1.closed_within(Duration::from_secs(5)).await);
    assert!(
        m1.closed_within(Duration::from_secs(5)).await,
        "its modules too"
    );
    assert_eq!(last_disconnect(&hub, "to-disable").await, REVOKED);
    hub.delete_device("to-delete").await;
    assert!(d2.closed_within(Duration::from_secs(5)).await);
    assert_eq!(last_disconnect(&hub, "to-delete").await, REVOKED);
    assert!(d3.ping().await, "other devices are untouched");
    assert_eq!(
        connect(&hub, "to-disable", &k1, None).await,
        Some(ConnectReturnCode::NotAuthorized)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_key_change_holds_at_once_without_a_restart() {
    let hub = TestHub::start().await;
    let old = hub.policy_key("registryRead").await;
    let list = |key: Key, policy: &'static str| {
        let hub = &hub;
        async move {
            https_client(&hub.ca_path)
                .get(format!("{}/devices?{V}", hub.base_url()))
                .header("Authorization", hub.token(policy, &key, unix_now() + 600))
                .send()
                .await
                .expect("request")
                .status()
        }
    };
    assert_eq!(list(old.clone(), "registryRead").await, StatusCode::OK);

    // Renewing needs every right: registryRead cannot renew its own key.
    let renew = |policy: &'static str, which: &'static str, token: String| {
        let hub = &hub;
        async move {
            let r = https_client(&hub.ca_path)
                .post(format!(
                    "{}/adit/policies/{policy}/renew-key?{V}",
                    hub.base_url()
                ))
                .header("Authorization", token)
                .json(&json!({ "renewKey": which }))
                .send()
                .await
                .expect("request");
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _) = renew(
        "registryRead",
        "primary",
        hub.token("registryRead", &old, unix_now() + 600),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = renew("nonexistent", "primary", hub.owner_token()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = renew("registryRead", "tertiary", hub.owner_token()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, policy) = renew("registryRead", "primary", hub.owner_token()).await;
    assert_eq!(status, StatusCode::OK);
    let new = Key::from_base64(policy["primaryKey"].as_str().expect("key")).expect("valid");
    assert_ne!(new, old);
    assert_eq!(
        list(old.clone(), "registryRead").await,
        StatusCode::UNAUTHORIZED,
        "a request signed with the old key is refused"
    );
    assert_eq!(
        list(new.clone(), "registryRead").await,
        StatusCode::OK,
        "the new key works"
    );
    let secondary = Key::from_base64(policy["secondaryKey"].as_str().expect("key")).expect("valid");
    assert_eq!(
        list(secondary, "registryRead").await,
        StatusCode::OK,
        "the secondary is kept"
    );

    // Devices connected through the `device` policy: a swap keeps both keys valid, so nothing
    // closes; renewing the key a session was signed with closes it.
    let device_key = hub.policy_key("device").await;
    hub.create_device("via-policy").await;
    let mut session = connected(&hub, "via-policy", &device_key, Some("device")).await;
    let (status, _) = renew("device", "swap", hub.owner_token()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!session.closed_within(Duration::from_millis(500)).await);
    assert!(session.ping().await, "swapped keys are still valid");
    // After the swap the session's key is the secondary.
    let (status, _) = renew("device", "secondary", hub.owner_token()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(session.closed_within(Duration::from_secs(5)).await);
    assert_eq!(last_disconnect(&hub, "via-policy").await, CHANGED);
    assert_eq!(
        connect(&hub, "via-policy", &device_key, Some("device")).await,
        Some(ConnectReturnCode::NotAuthorized)
    );
}
