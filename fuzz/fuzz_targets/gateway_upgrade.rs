//! The gateway upgrade, `GET /bridges/{streamId}/{role}`, through the hub's real router
//! (`adit_hub::gateway::router`): path and role, `Authorization: Bearer` (checked in constant
//! time against a live rendezvous), the WebSocket handshake headers and the subprotocol echo.
//!
//! Input: first line `[METHOD ]target`, then `Name: value` header lines. `{device}` and
//! `{service}` in the text stand for the live rendezvous' tokens (256 random bits each, which
//! the fuzzer could never guess), so the admitted path is reached too.
//! Invariants: never panics; never a 5xx; 101 only for the right token of the role in the
//! path, on the rendezvous' stream, with a valid handshake.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use adit_fuzz::runtime::block_on;
use adit_fuzz::seeds;
use adit_hub::gateway::{self, Gateway, GatewayConfig};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

const STREAM: &str = "fuzz-stream";

fn seeds() -> Vec<Vec<u8>> {
    let ws = "Connection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    [
        // Adit's SDKs and Azure's C# (no subprotocol), C (MQTT/AMQP offered).
        format!("/bridges/{STREAM}/device\nAuthorization: Bearer {{device}}\n{ws}"),
        format!("/bridges/{STREAM}/service\nAuthorization: Bearer {{service}}\n{ws}\nSec-WebSocket-Protocol: MQTT, AMQP"),
        format!("GET /bridges/{STREAM}/service\nauthorization: bearer {{device}}\n{ws}"),
        format!("/bridges/other/device\nAuthorization: Bearer {{device}}\n{ws}"),
        format!("POST /bridges/{STREAM}/device?x=1\nAuthorization: Bearer  {{device}} \nConnection: keep-alive, Upgrade\nUpgrade: WebSocket\nSec-WebSocket-Version: 8"),
        format!("/bridges/{STREAM}/admin\n{ws}"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

struct Fixture {
    gateway: Gateway,
    router: Router,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let gateway = Gateway::new(
            GatewayConfig::default(),
            TaskTracker::new(),
            CancellationToken::new(),
            adit_hub::metrics::Metrics::default(),
        );
        let router = gateway::router(gateway.clone());
        Fixture { gateway, router }
    })
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let f = fixture();
        block_on(async {
            f.gateway.cancel(STREAM);
            let rendezvous = f.gateway.open(
                STREAM,
                gateway::deadline_in(Duration::from_secs(60)),
                CancellationToken::new(),
                // An input that offers Adit's subprotocol gets a stream whose service asked
                // for it, so the resume-token path is fuzzed too.
                text.contains("adit.stream.v1"),
            );
            let text = text
                .replace("{device}", &rendezvous.device_token)
                .replace("{service}", &rendezvous.service_token);
            let mut lines = text.split('\n');
            let first = lines.next().unwrap_or_default();
            let (method, target) = first.split_once(' ').unwrap_or(("GET", first));
            let Ok(method) = Method::from_bytes(method.as_bytes()) else { return };
            let mut builder = Request::builder().method(method).uri(target);
            for line in lines {
                let Some((name, value)) = line.split_once(':') else { continue };
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.trim().as_bytes()),
                    HeaderValue::from_str(value.trim_start()),
                ) else {
                    continue;
                };
                builder = builder.header(name, value);
            }
            let Ok(mut request) = builder.body(Body::empty()) else { return };
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
            // What hyper attaches to a request on a real connection (here one that never
            // upgrades, so the spawned half ends at once).
            let on_upgrade = hyper::upgrade::on(&mut request);
            request.extensions_mut().insert(on_upgrade);
            // The route matches the percent-decoded path, as axum does.
            let path = adit_proto::resource::decode_component(request.uri().path())
                .unwrap_or_default();
            let auth = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.get(7..).unwrap_or_default().trim().to_string());
            let Ok(response) = f.router.clone().oneshot(request).await;
            let status = response.status();
            assert!(!status.is_server_error(), "{status} for {path}");
            if status == StatusCode::SWITCHING_PROTOCOLS {
                let token = match path.as_str() {
                    p if p == format!("/bridges/{STREAM}/device") => &rendezvous.device_token,
                    p if p == format!("/bridges/{STREAM}/service") => &rendezvous.service_token,
                    other => panic!("101 on {other}"),
                };
                assert_eq!(auth.as_deref(), Some(token.as_str()), "101 without the token");
            }
            drop(rendezvous);
            // Let the spawned half see its failed upgrade and end.
            tokio::task::yield_now().await;
        });
    }
);
