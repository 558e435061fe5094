//! The registry REST API against a real hub on 127.0.0.1:0, over real TLS, with raw HTTP
//! requests: every path, every permission boundary, bad tokens and bad bodies.

use adit_hub::auth::unix_now;
use adit_proto::{ConnectionString, ErrorBody, ErrorCode, Key, SasToken};
use adit_testkit::{TestDatabase, TestHub, https_client};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const V: &str = "api-version=2021-04-12";

struct Api {
    client: reqwest::Client,
    hub: TestHub,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    async fn from(resp: reqwest::Response) -> Self {
        Self {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.expect("body").to_vec(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts an Azure error: status, header name and body number all agree with `code`.
    fn assert_error(&self, code: ErrorCode) {
        assert_eq!(
            self.status.as_u16(),
            code.http_status(),
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.headers
                .get("iothub-errorcode")
                .and_then(|v| v.to_str().ok()),
            Some(code.name())
        );
        let body = ErrorBody::parse(&self.body).expect("Azure error body");
        assert_eq!(body.code(), Some(code));
        assert!(!body.tracking_id.is_empty());
        assert!(!body.message.is_empty());
    }
}

impl Api {
    async fn start() -> Self {
        Self::on(TestHub::start().await)
    }

    fn on(hub: TestHub) -> Self {
        Self {
            client: https_client(&hub.ca_path),
            hub,
        }
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        token: Option<&str>,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path_and_query}", self.hub.base_url()));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json; charset=utf-8")
                .body(b.to_string());
        }
        if let Some(m) = if_match {
            req = req.header("If-Match", m);
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    async fn raw_put(&self, path_and_query: &str, body: &'static str) -> Reply {
        let req = self
            .client
            .put(format!("{}{path_and_query}", self.hub.base_url()))
            .header("Authorization", self.hub.owner_token())
            .body(body);
        Reply::from(req.send().await.expect("request sent")).await
    }

    async fn owner(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Reply {
        let token = self.hub.owner_token();
        self.send(method, path_and_query, Some(&token), body, if_match)
            .await
    }

    async fn create(&self, id: &str) -> Value {
        let r = self
            .owner(
                Method::PUT,
                &format!("/devices/{id}?{V}"),
                Some(json!({"deviceId": id})),
                None,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }
}

fn key_of(device: &Value, which: &str) -> String {
    device["authentication"]["symmetricKey"][which]
        .as_str()
        .expect("key present")
        .to_string()
}

#[tokio::test]
async fn crud_round_trip_with_generated_keys() {
    let api = Api::start().await;
    let created = api.create("dev-1").await;
    assert_eq!(created["deviceId"], "dev-1");
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["connectionState"], "Disconnected");
    assert_eq!(created["authentication"]["type"], "sas");
    let primary = key_of(&created, "primaryKey");
    let secondary = key_of(&created, "secondaryKey");
    assert_ne!(primary, secondary);
    assert_eq!(
        Key::from_base64(&primary)
            .expect("valid key")
            .as_bytes()
            .len(),
        32
    );

    let got = api
        .owner(Method::GET, &format!("/devices/dev-1?{V}"), None, None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json(), created);
    let etag = created["etag"].as_str().expect("etag").to_string();
    assert_eq!(
        got.headers.get("etag").and_then(|v| v.to_str().ok()),
        Some(format!("\"{etag}\"").as_str())
    );

    // Update with the current etag: status changes, keys are kept, the etag moves on.
    let mut body = created.clone();
    body["status"] = json!("disabled");
    body["authentication"]["symmetricKey"] = json!({"primaryKey": null, "secondaryKey": ""});
    let quoted = format!("\"{etag}\"");
    let updated = api
        .owner(
            Method::PUT,
            &format!("/devices/dev-1?{V}"),
            Some(body.clone()),
            Some(&quoted),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    let updated = updated.json();
    assert_eq!(updated["status"], "disabled");
    assert_eq!(key_of(&updated, "primaryKey"), primary);
    assert_eq!(key_of(&updated, "secondaryKey"), secondary);
    assert_ne!(updated["etag"], created["etag"]);
    assert_ne!(updated["statusUpdatedTime"], "0001-01-01T00:00:00Z");

    // The old etag is stale now.
    api.owner(
        Method::PUT,
        &format!("/devices/dev-1?{V}"),
        Some(body.clone()),
        Some(&quoted),
    )
    .await
    .assert_error(ErrorCode::PreconditionFailed);
    api.owner(
        Method::DELETE,
        &format!("/devices/dev-1?{V}"),
        None,
        Some(&quoted),
    )
    .await
    .assert_error(ErrorCode::PreconditionFailed);

    // Both spellings of "any version" work.
    for star in ["*", "\"*\""] {
        let r = api
            .owner(
                Method::PUT,
                &format!("/devices/dev-1?{V}"),
                Some(body.clone()),
                Some(star),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "If-Match {star}");
    }

    let list = api
        .owner(Method::GET, &format!("/devices?top=10&{V}"), None, None)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json().as_array().map(Vec::len), Some(1));

    let del = api
        .owner(
            Method::DELETE,
            &format!("/devices/dev-1?{V}"),
            None,
            Some("\"*\""),
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    api.owner(Method::GET, &format!("/devices/dev-1?{V}"), None, None)
        .await
        .assert_error(ErrorCode::DeviceNotFound);
    api.owner(
        Method::DELETE,
        &format!("/devices/dev-1?{V}"),
        None,
        Some("*"),
    )
    .await
    .assert_error(ErrorCode::DeviceNotFound);
    api.owner(
        Method::PUT,
        &format!("/devices/dev-1?{V}"),
        Some(body),
        Some("*"),
    )
    .await
    .assert_error(ErrorCode::DeviceNotFound);
}

#[tokio::test]
async fn given_keys_are_kept_and_duplicates_refused() {
    let api = Api::start().await;
    let pk = Key::from_bytes(&[1u8; 32])
        .expect("valid")
        .to_base64()
        .to_string();
    let sk = Key::from_bytes(&[2u8; 16])
        .expect("valid")
        .to_base64()
        .to_string();
    let body = json!({"deviceId": "k", "authentication": {"type": "sas", "symmetricKey": {"primaryKey": pk, "secondaryKey": sk}}});
    let r = api
        .owner(
            Method::PUT,
            &format!("/devices/k?{V}"),
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(key_of(&r.json(), "primaryKey"), pk);
    assert_eq!(key_of(&r.json(), "secondaryKey"), sk);
    api.owner(Method::PUT, &format!("/devices/k?{V}"), Some(body), None)
        .await
        .assert_error(ErrorCode::DeviceAlreadyExists);
}

#[tokio::test]
async fn list_orders_and_limits() {
    let api = Api::start().await;
    for id in ["c", "a", "b"] {
        api.create(id).await;
    }
    let all = api
        .owner(Method::GET, &format!("/devices?{V}"), None, None)
        .await
        .json();
    let ids: Vec<_> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["deviceId"].clone())
        .collect();
    assert_eq!(ids, vec![json!("a"), json!("b"), json!("c")]);
    let two = api
        .owner(Method::GET, &format!("/devices?top=2&{V}"), None, None)
        .await
        .json();
    assert_eq!(two.as_array().map(Vec::len), Some(2));
    for bad in ["0", "1001", "-1", "x"] {
        api.owner(Method::GET, &format!("/devices?top={bad}&{V}"), None, None)
            .await
            .assert_error(ErrorCode::ArgumentInvalid);
    }
}

#[tokio::test]
async fn bad_bodies_and_ids_get_argument_invalid() {
    let api = Api::start().await;
    let path = format!("/devices/d?{V}");
    for raw in ["{not json", "", "[1,2]", "{\"deviceId\": 5}"] {
        api.raw_put(&path, raw)
            .await
            .assert_error(ErrorCode::ArgumentInvalid);
    }
    for body in [
        json!({"deviceId": "other"}),
        json!({"deviceId": "d", "status": "sleeping"}),
        json!({"deviceId": "d", "authentication": {"type": "sas", "symmetricKey": {"primaryKey": "not base64!"}}}),
        json!({"deviceId": "d", "authentication": {"type": "sas", "symmetricKey": {"primaryKey": "AAAA"}}}),
        json!({"deviceId": "d", "authentication": {"type": "magic"}}),
        json!({"deviceId": "d", "authentication": {"type": "selfSigned"}}),
        json!({"deviceId": "d", "statusReason": "x".repeat(200)}),
    ] {
        api.owner(Method::PUT, &path, Some(body.clone()), None)
            .await
            .assert_error(ErrorCode::ArgumentInvalid);
    }
    // Ids outside Azure's character set, percent-encoded into the path.
    for id in ["a%20b", "a%2Fb", "%C3%A9"] {
        api.owner(Method::GET, &format!("/devices/{id}?{V}"), None, None)
            .await
            .assert_error(ErrorCode::ArgumentInvalid);
    }
    let huge = json!({"deviceId": "d", "deviceScope": "x".repeat(100_000)});
    api.owner(Method::PUT, &path, Some(huge), None)
        .await
        .assert_error(ErrorCode::MessageTooLarge);
    // None of that created anything.
    api.owner(Method::GET, &path, None, None)
        .await
        .assert_error(ErrorCode::DeviceNotFound);
}

#[tokio::test]
async fn special_character_ids_round_trip() {
    let api = Api::start().await;
    // Every special character Azure allows, percent-encoded in the path; the id stays literal.
    let id = "a-b.c%d_e*f?g!h(i)j,k:l=m@n$o'p";
    let encoded = adit_proto::resource::encode_component(id);
    let r = api
        .owner(
            Method::PUT,
            &format!("/devices/{encoded}?{V}"),
            Some(json!({"deviceId": id})),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let got = api
        .owner(Method::GET, &format!("/devices/{encoded}?{V}"), None, None)
        .await;
    assert_eq!(got.json()["deviceId"], id);
}

/// What Azure forbids is refused at creation, with a message that says why and lists the
/// allowed set; an identity created before the rule (here written straight into the
/// registry) can still be read, connect and be deleted.
#[tokio::test]
async fn creation_follows_azures_current_rule_and_older_ids_still_work() {
    let api = Api::start().await;
    let cases: &[(&str, &str)] = &[
        ("a+b", "'+', which new ids may not hold"),
        ("a#b", "'#', which new ids may not hold"),
        ("a;b", "';', which new ids may not hold"),
        ("a b", "' ' (a space), which is not allowed"),
        ("über", "'ü': non-ASCII characters are not allowed"),
    ];
    for (id, says) in cases {
        let path = format!(
            "/devices/{}?{V}",
            adit_proto::resource::encode_component(id)
        );
        let r = api
            .owner(Method::PUT, &path, Some(json!({"deviceId": id})), None)
            .await;
        r.assert_error(ErrorCode::ArgumentInvalid);
        let message = ErrorBody::parse(&r.body).expect("body").message;
        assert!(message.contains(says), "{id}: {message}");
        assert!(message.contains(adit_proto::id::ID_ALPHABET), "{message}");
    }
    let long = "a".repeat(129);
    let r = api
        .owner(
            Method::PUT,
            &format!("/devices/{long}?{V}"),
            Some(json!({"deviceId": long})),
            None,
        )
        .await;
    r.assert_error(ErrorCode::ArgumentInvalid);
    let message = ErrorBody::parse(&r.body).expect("body").message;
    assert!(message.contains("129 characters long"), "{message}");

    let old = "old+id#1";
    let registry = adit_hub::registry::Registry::open_in_dir(api.hub.data_dir())
        .await
        .expect("registry opens");
    let record = registry
        .create_device(&adit_hub::registry::NewDevice::enabled_sas(
            adit_proto::DeviceId::new(old).expect("an older id still parses"),
        ))
        .await
        .expect("written");
    registry.close().await;
    let path = format!(
        "/devices/{}?{V}",
        adit_proto::resource::encode_component(old)
    );
    let got = api.owner(Method::GET, &path, None, None).await;
    assert_eq!(got.json()["deviceId"], old);
    let key = record.keys().first().map(|k| (*k).clone()).expect("a key");
    drop(api.hub.mqtt_device(old, &key).await);
    let r = api.owner(Method::DELETE, &path, None, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn protocol_errors() {
    let api = Api::start().await;
    api.owner(Method::GET, "/devices", None, None)
        .await
        .assert_error(ErrorCode::ArgumentInvalid);
    api.owner(Method::GET, &format!("/nothing-here?{V}"), None, None)
        .await
        .assert_error(ErrorCode::NotFound);
    api.owner(Method::POST, &format!("/devices/x?{V}"), None, None)
        .await
        .assert_error(ErrorCode::MethodNotAllowed);
}

#[tokio::test]
async fn tokens_are_checked() {
    let api = Api::start().await;
    api.create("d").await;
    let path = format!("/devices/d?{V}");
    let owner_key = api.hub.owner.key.clone().expect("key");
    let now = unix_now();
    let host = api.hub.host_name();
    let wrong_key = Key::from_bytes(&[3u8; 32]).expect("valid");
    let good = SasToken::sign(&host, &owner_key, Some("iothubowner"), now + 600);
    let bad_tokens: Vec<(&str, String)> = vec![
        ("garbage", "hello".into()),
        ("bearer", "Bearer abc".into()),
        (
            "missing se",
            format!("SharedAccessSignature sr={host}&sig=abc&skn=iothubowner"),
        ),
        (
            "wrong key",
            SasToken::sign(&host, &wrong_key, Some("iothubowner"), now + 600),
        ),
        (
            "expired past skew",
            SasToken::sign(&host, &owner_key, Some("iothubowner"), now - 301),
        ),
        (
            "other hub",
            SasToken::sign(
                "evil.example.com",
                &owner_key,
                Some("iothubowner"),
                now + 600,
            ),
        ),
        (
            "unknown policy",
            SasToken::sign(&host, &owner_key, Some("nobody"), now + 600),
        ),
        (
            "device token, no skn",
            SasToken::sign(&format!("{host}/devices/d"), &owner_key, None, now + 600),
        ),
        (
            "tampered expiry",
            good.replace(&format!("se={}", now + 600), &format!("se={}", now + 6000)),
        ),
    ];
    for (what, token) in &bad_tokens {
        let r = api.send(Method::GET, &path, Some(token), None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        r.assert_error(ErrorCode::IotHubUnauthorizedAccess);
    }
    api.send(Method::GET, &path, None, None, None)
        .await
        .assert_error(ErrorCode::IotHubUnauthorizedAccess);

    assert_eq!(
        api.send(Method::GET, &path, Some(&good), None, None)
            .await
            .status,
        StatusCode::OK
    );
    // Within the five-minute skew a just-expired token still works.
    let skewed = SasToken::sign(&host, &owner_key, Some("iothubowner"), now - 60);
    assert_eq!(
        api.send(Method::GET, &path, Some(&skewed), None, None)
            .await
            .status,
        StatusCode::OK
    );
    // An audience without the port names the same hub.
    let plain_host = SasToken::sign("localhost", &owner_key, Some("iothubowner"), now + 600);
    assert_eq!(
        api.send(Method::GET, &path, Some(&plain_host), None, None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn permissions_follow_policies() {
    let api = Api::start().await;
    api.create("d").await;
    let expiry = unix_now() + 600;
    // (policy, may read, may write, may list policies)
    let table = [
        ("iothubowner", true, true, true),
        ("registryReadWrite", true, true, false),
        ("registryRead", true, false, false),
        ("service", false, false, false),
        ("device", false, false, false),
    ];
    for (policy, read, write, admin) in table {
        let key = api.hub.policy_key(policy).await;
        let token = api.hub.token(policy, &key, expiry);
        let expect = |allowed: bool, r: Reply, what: &str| {
            if allowed {
                assert!(r.status.is_success(), "{policy} {what}: {}", r.status);
            } else {
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{policy} {what}");
                r.assert_error(ErrorCode::IotHubUnauthorizedAccess);
            }
        };
        let t = Some(token.as_str());
        let id = format!("new-{policy}");
        expect(
            read,
            api.send(Method::GET, &format!("/devices/d?{V}"), t, None, None)
                .await,
            "get",
        );
        expect(
            read,
            api.send(Method::GET, &format!("/devices?{V}"), t, None, None)
                .await,
            "list",
        );
        let body = Some(json!({ "deviceId": id }));
        expect(
            write,
            api.send(Method::PUT, &format!("/devices/{id}?{V}"), t, body, None)
                .await,
            "create",
        );
        expect(
            write,
            api.send(
                Method::DELETE,
                &format!("/devices/{id}?{V}"),
                t,
                None,
                Some("*"),
            )
            .await,
            "delete",
        );
        expect(
            admin,
            api.send(Method::GET, &format!("/adit/policies?{V}"), t, None, None)
                .await,
            "policies",
        );
    }
    // A policy's secondary key works too.
    let policies = api
        .owner(Method::GET, &format!("/adit/policies?{V}"), None, None)
        .await
        .json();
    let reader = policies
        .as_array()
        .expect("array")
        .iter()
        .find(|p| p["keyName"] == "registryRead")
        .expect("registryRead listed")
        .clone();
    assert_eq!(reader["rights"], "RegistryRead");
    let secondary = Key::from_base64(reader["secondaryKey"].as_str().expect("key")).expect("valid");
    let token = api.hub.token("registryRead", &secondary, expiry);
    let r = api
        .send(
            Method::GET,
            &format!("/devices/d?{V}"),
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn repeated_failures_are_throttled_but_valid_tokens_pass() {
    let api = Api::on(
        TestHub::start_with(|c| {
            c.auth_throttle.max_unknown = 3;
            c.auth_throttle.penalty = std::time::Duration::from_millis(10);
        })
        .await,
    );
    let path = format!("/devices?{V}");
    for _ in 0..3 {
        api.send(Method::GET, &path, Some("bad"), None, None)
            .await
            .assert_error(ErrorCode::IotHubUnauthorizedAccess);
    }
    api.send(Method::GET, &path, Some("bad"), None, None)
        .await
        .assert_error(ErrorCode::ThrottlingException);
    // A valid token from the same address is never refused for the others' failures.
    let r = api.owner(Method::GET, &path, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn restart_keeps_registry_and_keys() {
    let api = Api::start().await;
    let created = api.create("persist").await;
    let key_before = api.hub.owner.key.clone();
    let api = Api::on(api.hub.restart().await);
    assert_eq!(api.hub.owner.key, key_before);
    let got = api
        .owner(Method::GET, &format!("/devices/persist?{V}"), None, None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json()["authentication"], created["authentication"]);
    assert_eq!(got.json()["etag"], created["etag"]);
    // The owner connection string file names the new port.
    let file = api
        .hub
        .data_dir()
        .join(adit_hub::hub::OWNER_CONNECTION_STRING_FILE);
    let saved: ConnectionString = std::fs::read_to_string(file)
        .expect("file")
        .trim()
        .parse()
        .expect("valid");
    assert_eq!(saved.port, Some(api.hub.addr.port()));
}

#[tokio::test]
async fn postgres_registry_round_trip_and_restart() {
    let db = TestDatabase::create().await;
    let url = db.url.clone();
    let api = Api::on(TestHub::start_with(|c| c.database_url = Some(url)).await);
    let created = api.create("pg-1").await;
    api.owner(
        Method::PUT,
        &format!("/devices/pg-1?{V}"),
        Some(json!({"deviceId": "pg-1"})),
        None,
    )
    .await
    .assert_error(ErrorCode::DeviceAlreadyExists);
    let mut body = created.clone();
    body["status"] = json!("disabled");
    let r = api
        .owner(
            Method::PUT,
            &format!("/devices/pg-1?{V}"),
            Some(body),
            Some("\"*\""),
        )
        .await;
    assert_eq!(r.json()["status"], "disabled");

    let api = Api::on(api.hub.restart().await);
    let got = api
        .owner(Method::GET, &format!("/devices/pg-1?{V}"), None, None)
        .await;
    assert_eq!(got.json()["status"], "disabled");
    assert_eq!(
        key_of(&got.json(), "primaryKey"),
        key_of(&created, "primaryKey")
    );
    let del = api
        .owner(
            Method::DELETE,
            &format!("/devices/pg-1?{V}"),
            None,
            Some("*"),
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let mut hub = api.hub;
    hub.stop().await;
    db.drop_database().await;
}

/// The registry holds every key: its PostgreSQL connections can be TLS (`sslmode=require`, or
/// `verify-full` with `sslrootcert=`), and are whenever the server offers it.
#[tokio::test]
async fn postgres_registry_connects_over_tls_when_asked() {
    use sqlx::Row as _;
    let db = TestDatabase::create().await;
    let registry = adit_hub::registry::Registry::open(&format!("{}?sslmode=require", db.url))
        .await
        .expect("the registry connects with sslmode=require");
    registry.ping().await.expect("ping");
    let mut checker =
        <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{}?sslmode=disable", db.url))
            .await
            .expect("checker");
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE datname = current_database() AND ssl",
    )
    .fetch_one(&mut checker)
    .await
    .expect("query");
    let tls: i64 = row.try_get("n").expect("n");
    assert!(tls >= 1, "the registry's connections use TLS");
    drop(checker);
    registry.close().await;
    db.drop_database().await;
}
