//! The console's API over real HTTPS (issue 16, `docs/console.md`): signing in with a
//! connection string or a one-time link, the cookie's attributes, the CSRF and Origin checks,
//! permissions as the REST API has them, the security headers, and a session that ends when
//! its policy's key is replaced.

use adit_proto::{ConnectionString, Key};
use adit_testkit::{TestHub, https_client};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

struct Console {
    hub: TestHub,
    http: reqwest::Client,
}

impl Console {
    async fn start() -> Self {
        let hub = TestHub::start().await;
        let http = https_client(&hub.ca_path);
        Self { hub, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hub.base_url())
    }

    fn policy_string(&self, policy: &str, key: Key) -> String {
        ConnectionString::for_policy(&self.hub.owner.host, self.hub.owner.port, policy, key)
            .to_string()
    }

    /// Signs in with `body`; the cookie header to send, or the refusal's status.
    async fn sign_in(&self, body: Value) -> Result<String, StatusCode> {
        let r = self
            .http
            .post(self.url("/console/api/sign-in"))
            .header("X-Adit-Console", "1")
            .json(&body)
            .send()
            .await
            .expect("answer");
        if r.status() != StatusCode::NO_CONTENT {
            return Err(r.status());
        }
        let cookie = r
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("a cookie")
            .to_string();
        assert!(cookie.starts_with("__Host-adit_console="), "{cookie}");
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/;"] {
            assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
        }
        Ok(cookie.split(';').next().expect("name=value").to_string())
    }

    /// Signs out; the hub answers 204.
    async fn sign_out(&self, cookie: &str) {
        let r = self
            .http
            .post(self.url("/console/api/sign-out"))
            .header(COOKIE, cookie)
            .header("X-Adit-Console", "1")
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }

    async fn get(&self, cookie: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .header(COOKIE, cookie)
            .send()
            .await
            .expect("answer")
    }

    async fn create(&self, cookie: &str, id: &str, csrf: bool, origin: Option<&str>) -> StatusCode {
        let mut r = self
            .http
            .post(self.url("/console/api/devices"))
            .header(COOKIE, cookie)
            .json(&json!({ "deviceId": id }));
        if csrf {
            r = r.header("X-Adit-Console", "1");
        }
        if let Some(o) = origin {
            r = r.header(ORIGIN, o);
        }
        r.send().await.expect("answer").status()
    }
}

#[tokio::test]
async fn signing_in_gives_a_strict_cookie_and_a_link_works_once() {
    let c = Console::start().await;
    let owner = c.hub.owner.to_string();
    let cookie = c
        .sign_in(json!({ "connectionString": owner }))
        .await
        .expect("signed in");
    let me: Value = c
        .get(&cookie, "/console/api/me")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["policy"], "iothubowner");
    assert_eq!(
        me["permissions"],
        json!(["registryRead", "registryWrite", "serviceConnect"])
    );
    // A wrong key, and no cookie at all.
    let wrong = c.policy_string("iothubowner", Key::from_bytes(&[9; 32]).expect("key"));
    assert_eq!(
        c.sign_in(json!({ "connectionString": wrong })).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        c.get("__Host-adit_console=forged", "/console/api/me")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // A one-time link, as `adit console` asks for it.
    let link: Value = c
        .http
        .post(c.url("/adit/console/sign-in-links"))
        .header("Authorization", c.hub.owner_token())
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let token = link["signInToken"].as_str().expect("token").to_string();
    assert!(c.sign_in(json!({ "signInToken": token })).await.is_ok());
    assert_eq!(
        c.sign_in(json!({ "signInToken": token })).await,
        Err(StatusCode::UNAUTHORIZED),
        "a link works once"
    );
    // Signing out ends the session.
    c.sign_out(&cookie).await;
    assert_eq!(
        c.get(&cookie, "/console/api/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn changes_need_the_console_header_this_origin_and_the_right_permission() {
    let c = Console::start().await;
    let cookie = c
        .sign_in(json!({ "connectionString": c.hub.owner.to_string() }))
        .await
        .expect("signed in");
    assert_eq!(
        c.create(&cookie, "no-header", false, None).await,
        StatusCode::FORBIDDEN,
        "a form post from anywhere cannot carry the header"
    );
    assert_eq!(
        c.create(&cookie, "foreign", true, Some("https://evil.example"))
            .await,
        StatusCode::FORBIDDEN
    );
    let own = c.hub.base_url();
    assert_eq!(
        c.create(&cookie, "pump-1", true, Some(&own)).await,
        StatusCode::CREATED
    );
    // A sign-in from another site's page is refused too (login CSRF).
    let r = c
        .http
        .post(c.url("/console/api/sign-in"))
        .header("X-Adit-Console", "1")
        .header(ORIGIN, "https://evil.example")
        .json(&json!({ "connectionString": c.hub.owner.to_string() }))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // registryRead sees devices but cannot change them or open a terminal.
    let reader = c.policy_string("registryRead", c.hub.policy_key("registryRead").await);
    let cookie = c
        .sign_in(json!({ "connectionString": reader }))
        .await
        .expect("signed in");
    let list: Value = c
        .get(&cookie, "/console/api/devices")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["devices"][0]["deviceId"], "pump-1");
    assert_eq!(
        c.create(&cookie, "pump-2", true, None).await,
        StatusCode::FORBIDDEN
    );
    let r = c.get(&cookie, "/console/api/devices/pump-1/terminal").await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "refused before any upgrade"
    );
    let body: Value = r.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("ServiceConnect")),
        "{body}"
    );
}

#[tokio::test]
async fn every_console_answer_carries_the_security_headers() {
    let c = Console::start().await;
    for path in ["/console", "/console/api/me"] {
        let r = c.http.get(c.url(path)).send().await.expect("answer");
        let csp = r
            .headers()
            .get(CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(
            r.headers()
                .get("x-content-type-options")
                .map(|v| v.as_bytes()),
            Some(&b"nosniff"[..])
        );
    }
}

#[tokio::test]
async fn a_session_ends_when_its_policys_key_is_replaced() {
    let c = Console::start().await;
    let key = c.hub.policy_key("registryReadWrite").await;
    let cookie = c
        .sign_in(json!({ "connectionString": c.policy_string("registryReadWrite", key) }))
        .await
        .expect("signed in");
    assert_eq!(
        c.get(&cookie, "/console/api/me").await.status(),
        StatusCode::OK
    );
    let r = c
        .http
        .post(c.url("/adit/policies/registryReadWrite/renew-key?api-version=2021-04-12"))
        .header("Authorization", c.hub.owner_token())
        .json(&json!({ "renewKey": "primary" }))
        .send()
        .await
        .expect("answer");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        c.get(&cookie, "/console/api/me").await.status(),
        StatusCode::UNAUTHORIZED,
        "signed in with a key the policy no longer has"
    );
}

#[tokio::test]
async fn signing_out_ends_the_live_feed() {
    let c = Console::start().await;
    let cookie = c
        .sign_in(json!({ "connectionString": c.hub.owner.to_string() }))
        .await
        .expect("signed in");
    let mut feed = c.get(&cookie, "/console/api/events").await;
    assert_eq!(feed.status(), StatusCode::OK);
    // The feed starts by asking the page to fetch the list, and says when it changes.
    async fn until(feed: &mut reqwest::Response, seen: &mut String, what: &str) {
        while !seen.contains(what) {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), feed.chunk())
                .await
                .unwrap_or_else(|_| panic!("{what} within 10 s; so far: {seen:?}"))
                .expect("read")
                .expect("not ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    let mut seen = String::new();
    until(&mut feed, &mut seen, "event: devices").await;
    seen.clear();
    let key = c.hub.create_device("pump-9").await;
    until(&mut feed, &mut seen, "event: devices").await;
    // A device the page knows connects: the feed says so, with its new state.
    let _device = c.hub.mqtt_device("pump-9", &key).await;
    until(&mut feed, &mut seen, "event: presence").await;
    assert!(seen.contains("\"connectionState\":\"Connected\""), "{seen}");
    c.sign_out(&cookie).await;
    // Within one recheck (5 s) the feed ends.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(8), async {
        loop {
            match feed.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the feed outlived its session");
}

#[tokio::test]
async fn the_live_list_shows_each_open_streams_bytes_and_who_opened_it() {
    use adit_testkit::stream_device::{StreamDevice, accepted_pair, exchange, record};
    let c = Console::start().await;
    let key = c.hub.create_device("d1").await;
    let mut device = StreamDevice::connect(&c.hub, "d1", &key).await;
    let cookie = c
        .sign_in(json!({ "connectionString": c.hub.owner.to_string() }))
        .await
        .expect("signed in");
    let (mut device_ws, mut service_ws) = accepted_pair(&c.hub, &mut device, false).await;
    exchange(&mut service_ws, &mut device_ws, b"twelve bytes").await;
    exchange(&mut device_ws, &mut service_ws, b"five!").await;
    exchange(&mut device_ws, &mut service_ws, b"and six").await;

    let live: Value = c
        .get(&cookie, "/console/api/streams")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(live["partial"], false, "{live}");
    let streams = live["streams"].as_array().expect("a list");
    assert_eq!(streams.len(), 1, "{live}");
    let s = &streams[0];
    assert_eq!(
        (&s["deviceId"], &s["streamName"], &s["policy"]),
        (&json!("d1"), &json!("x"), &json!("iothubowner")),
        "{s}"
    );
    assert_eq!(s["bytesServiceToDevice"], 12, "{s}");
    assert_eq!(s["bytesDeviceToService"], 12, "{s}");
    assert_eq!(s["caller"], "127.0.0.1", "{s}");
    // The rates' values are gateway/traffic.rs's unit test's; here: the API carries them.
    for rate in ["rateServiceToDevice", "rateDeviceToService"] {
        assert!(s[rate].as_u64().is_some(), "{rate}: {s}");
    }
    assert!(s["durationMs"].as_i64().is_some_and(|d| d >= 0), "{s}");
    let stream_id = s["streamId"].as_str().expect("id").to_string();

    // The device list counts it from the registry's streams in flight (every node's).
    let devices: Value = c
        .get(&cookie, "/console/api/devices")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(devices["devices"][0]["activeStreams"], 1, "{devices}");

    // Once it ends its record names the policy too, and the live list is empty.
    drop((device_ws, service_ws));
    let ended = record(&c.hub, &stream_id).await;
    assert_eq!(ended.policy.as_deref(), Some("iothubowner"));
    let live: Value = c
        .get(&cookie, "/console/api/streams")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(live["streams"], json!([]), "{live}");
}

#[tokio::test]
async fn malformed_requests_get_the_consoles_error_shape_without_their_text() {
    let c = Console::start().await;
    let cookie = c
        .sign_in(json!({ "connectionString": c.hub.owner.to_string() }))
        .await
        .expect("signed in");
    let send = |body: &'static str, content_type: &'static str| {
        c.http
            .post(c.url("/console/api/devices"))
            .header(COOKIE, &cookie)
            .header("X-Adit-Console", "1")
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    for (body, content_type, status) in [
        ("{not json", "application/json", StatusCode::BAD_REQUEST),
        // serde's message for this quotes the value ("invalid type: integer `...`").
        (
            r#"{"deviceId": 4242424242}"#,
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"deviceId": "a"}"#,
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let r = send(body, content_type).await.expect("answer");
        assert_eq!(r.status(), status, "{body}");
        let answer: Value = r.json().await.expect("a JSON error");
        let message = answer["message"].as_str().expect("a message");
        assert!(!message.contains("4242424242"), "{message}");
    }
    let r = c
        .http
        .put(c.url("/console/api/devices"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers().contains_key(reqwest::header::ALLOW));
    let answer: Value = r.json().await.expect("a JSON error");
    assert!(answer["message"].is_string());
}
