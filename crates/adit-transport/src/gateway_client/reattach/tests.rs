use tokio_websockets::upgrade::Error as Upgrade;

use super::*;

fn tls() -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(Arc::new(crate::crypto::provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Arc::new(config)
}

fn grant(token: &str) -> ResumeGrant {
    ResumeGrant {
        token: token.into(),
        grace: Duration::from_secs(60),
    }
}

fn reattach_to(url: &str) -> GatewayReattach {
    GatewayReattach::new(url, grant("t1"), tls(), None, ProxyConfig::direct())
}

fn response(headers: &[(&'static str, &'static str)]) -> http::Response<()> {
    let mut b = http::Response::builder().status(101);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    b.body(()).expect("response")
}

fn refused(status: u16) -> GatewayError {
    GatewayError::Upgrade(tokio_websockets::Error::Upgrade(
        Upgrade::DidNotSwitchProtocols(status),
    ))
}

#[test]
fn a_refusal_of_401_or_404_is_gone_and_other_trouble_is_retried() {
    for status in [401, 404] {
        let ReattachError::Gone(why) = classify(&refused(status)) else {
            panic!("{status} is not the end");
        };
        assert!(why.contains(&status.to_string()), "{why}");
    }
    for status in [500, 502, 503, 429] {
        let ReattachError::Retry(why) = classify(&refused(status)) else {
            panic!("{status} is worth another try");
        };
        assert!(why.contains(&status.to_string()), "{why}");
    }
    assert!(matches!(
        classify(&GatewayError::Timeout),
        ReattachError::Retry(_)
    ));
    let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    assert!(matches!(
        classify(&GatewayError::Connect(io)),
        ReattachError::Retry(why) if why.contains("refused")
    ));
    assert!(matches!(
        classify(&GatewayError::BadUrl("x".into())),
        ReattachError::Gone(_)
    ));
}

#[test]
fn each_join_replaces_the_used_token_with_the_new_one() {
    let mut r = reattach_to("wss://hub.example/bridges/1");
    let joined = r.joined(Ok((
        (),
        response(&[
            ("sec-websocket-protocol", "adit.stream.v1"),
            ("adit-resume-token", "t2"),
            ("adit-resume-grace", "30"),
        ]),
    )));
    assert_eq!(joined, Ok(()));
    assert_eq!(r.grant.as_ref().map(ResumeGrant::token), Some("t2"));
    assert_eq!(r.grace(), Some(Duration::from_secs(30)));
    // A failure before the hub answered leaves the token for the next attempt.
    assert!(matches!(
        r.joined::<()>(Err(GatewayError::Timeout)),
        Err(ReattachError::Retry(_))
    ));
    assert_eq!(r.grant.as_ref().map(ResumeGrant::token), Some("t2"));
    // A join without a new token leaves nothing for the one after.
    assert_eq!(
        r.joined(Ok((
            (),
            response(&[("sec-websocket-protocol", "adit.stream.v1")])
        ))),
        Ok(())
    );
    assert!(r.grant.is_none());
}

#[test]
fn a_join_that_is_no_longer_multiplexed_is_gone() {
    let mut r = reattach_to("wss://hub.example/bridges/1");
    assert!(matches!(
        r.joined(Ok(((), response(&[("adit-resume-token", "t2")])))),
        Err(ReattachError::Gone(_))
    ));
}

#[tokio::test]
async fn without_a_credential_reattaching_is_gone_at_once() {
    let mut r = reattach_to("wss://hub.example/bridges/1");
    r.grant = None;
    assert!(matches!(r.reattach().await, Err(ReattachError::Gone(_))));
}

#[tokio::test]
async fn an_unreachable_gateway_is_retried_with_the_token_kept() {
    // A port nobody listens on: bound, then let go.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut r = reattach_to(&format!("wss://127.0.0.1:{port}/bridges/1"));
    let err = r.reattach().await.expect_err("refused");
    assert!(matches!(&err, ReattachError::Retry(_)), "{err:?}");
    assert!(!err.to_string().contains("t1"));
    assert_eq!(r.grant.as_ref().map(ResumeGrant::token), Some("t1"));
}

#[test]
fn debug_hides_the_tokens() {
    let r = reattach_to("wss://hub.example/bridges/1");
    let shown = format!("{r:?} {:?}", grant("s3cr3t"));
    assert!(
        !shown.contains("t1") && !shown.contains("s3cr3t"),
        "{shown}"
    );
}

#[test]
fn the_grace_header_is_whole_seconds_with_the_hubs_default_otherwise() {
    let g = |grace: &'static str| {
        ResumeGrant::from_response(&response(&[
            ("adit-resume-token", "t"),
            ("adit-resume-grace", grace),
        ]))
        .expect("grant")
        .grace()
    };
    assert_eq!(g("5"), Duration::from_secs(5));
    assert_eq!(g("soon"), DEFAULT_GRACE);
    assert!(ResumeGrant::from_response(&response(&[("adit-resume-token", "")])).is_none());
}
