use proptest::prelude::*;

use super::*;

fn request() -> StreamRequest {
    StreamRequest {
        name: "TestStream".into(),
        rid: "1".into(),
        url: "wss://hub.local:8443/bridges/3acd50143144f6b82e0f7299afe911bd/device".into(),
        auth: "ucHqFGN0o9Vh-ojlhELmXyTUol05iuAhigMckeI-vlb".into(),
        ip: Some("127.0.0.1".into()),
    }
}

#[test]
fn request_topic_matches_azure_shape() {
    assert_eq!(
        request().to_topic().expect("valid"),
        "$iothub/streams/POST/TestStream/?$rid=1&$url=wss%3A%2F%2Fhub.local%3A8443%2Fbridges%2F3acd50143144f6b82e0f7299afe911bd%2Fdevice&$auth=ucHqFGN0o9Vh-ojlhELmXyTUol05iuAhigMckeI-vlb&$ip=127.0.0.1"
    );
}

#[test]
fn the_stream_token_is_never_printed() {
    let token = "ucHqFGN0o9Vh-ojlhELmXyTUol05iuAhigMckeI-vlb";
    let topic = request().to_topic().expect("valid");
    let parsed = StreamRequest::parse(&topic).expect("parses");
    assert!(!format!("{parsed:?}").contains(token));
    let redacted = redact_auth(&topic);
    assert!(!redacted.contains(token), "{redacted}");
    assert!(redacted.contains("&$auth=***&$ip=127.0.0.1"), "{redacted}");
    assert_eq!(redact_auth("a/?$AUTH=x"), "a/?$AUTH=***");
    assert_eq!(redact_auth("a/?$auth=x&$auth=y&b=1"), "a/?$auth=***&$auth=***&b=1");
    assert_eq!(redact_auth("no token here"), "no token here");
    // A malformed request topic fails without echoing its properties.
    for bad in [
        format!("$iothub/streams/POST/s/?$rid=1&$auth={token}&junk"),
        format!("$iothub/streams/POST/s/$auth={token}"),
    ] {
        let e = StreamRequest::parse(&bad).expect_err("malformed");
        assert!(!format!("{e} {e:?}").contains(token), "{e}");
    }
}

#[test]
fn parses_the_c_sdk_fixture() {
    // iothubtransport_mqtt_common_ut.c, with its odd $ip.
    let topic = "$iothub/streams/POST/TestStream/?$rid=1&$url=wss%3A%2F%2Fservername.streaming.private.azure-devices-int.net%3A443%2Fbridges%2F3acd50143144f6b82e0f7299afe911bd&$auth=ucHqFGN0o9Vh-ojlhELmXyTUol05iuAhigMckeI-vlb&$ip=111.222.333.444";
    let r = StreamRequest::parse(topic).expect("parses");
    assert_eq!(r.name, "TestStream");
    assert_eq!(r.rid, "1");
    assert_eq!(
        r.url,
        "wss://servername.streaming.private.azure-devices-int.net:443/bridges/3acd50143144f6b82e0f7299afe911bd"
    );
    assert_eq!(r.ip.as_deref(), Some("111.222.333.444"));
}

#[test]
fn refuses_fields_that_break_sdk_parsers() {
    for name in ["", "a/b", "a=b", "a&b", "a?b", "a b", "#", "+"] {
        let r = StreamRequest {
            name: name.into(),
            ..request()
        };
        assert_eq!(r.to_topic(), Err(TopicError::BadStreamName), "{name:?}");
    }
    let r = StreamRequest {
        auth: "a=b".into(),
        ..request()
    };
    assert_eq!(r.to_topic(), Err(TopicError::BadValue("$auth")));
    let r = StreamRequest {
        rid: String::new(),
        ..request()
    };
    assert_eq!(r.to_topic(), Err(TopicError::BadValue("$rid")));
}

#[test]
fn responses_parse_both_statuses() {
    for accepted in [true, false] {
        let r = StreamResponse {
            accepted,
            rid: "42".into(),
        };
        assert_eq!(StreamResponse::parse(&r.to_topic()), Ok(r));
    }
    // The prefix is matched case-insensitively, as the C and C# SDKs do.
    assert!(StreamResponse::parse("$IOTHUB/streams/RES/200/?$rid=1").is_ok());
}

#[test]
fn malformed_responses_are_refused() {
    let cases: &[(&str, TopicError)] = &[
        (
            "$iothub/streams/POST/x/?$rid=1",
            TopicError::WrongPrefix("stream response"),
        ),
        (
            "$iothub/streams/res/204/?$rid=1",
            TopicError::BadStatus("204".into()),
        ),
        (
            "$iothub/streams/res/200",
            TopicError::BadProperties,
        ),
        (
            "$iothub/streams/res/200/?$rid=",
            TopicError::BadProperties,
        ),
        (
            "$iothub/streams/res/200/?$rid=1=2",
            TopicError::BadProperties,
        ),
        (
            "$iothub/streams/res/200/?$ct=x",
            TopicError::MissingProperty("$rid"),
        ),
    ];
    for (topic, want) in cases {
        assert_eq!(StreamResponse::parse(topic).as_ref(), Err(want), "{topic}");
    }
}

#[test]
fn client_ids_and_usernames() {
    let c = ClientId::parse("dev1/mod1").expect("valid");
    assert_eq!(c.device.as_str(), "dev1");
    assert_eq!(c.module.as_ref().map(ModuleId::as_str), Some("mod1"));
    assert_eq!(c.to_string(), "dev1/mod1");
    assert!(ClientId::parse("").is_err());
    assert!(ClientId::parse("a/b/c").is_err());

    // Real usernames from azure-wire.md 2.1.
    let c_sdk = "IoTHubDeviceStreams.azure-devices.net/device1/?api-version=2017-11-08-preview&DeviceClientType=iothubclient%2f1.2.12%20(Darwin%3b%20x86_64)";
    assert_eq!(
        check_username(c_sdk, "device1"),
        Ok("IoTHubDeviceStreams.azure-devices.net")
    );
    let module =
        "ioth.azure-devices.net/bh0vm00001/sink/?api-version=2020-09-30&DeviceClientType=x";
    assert_eq!(
        check_username(module, "bh0vm00001/sink"),
        Ok("ioth.azure-devices.net")
    );
    assert_eq!(check_username("h/dev", "dev"), Ok("h"));
    assert_eq!(
        check_username("h/other/?api-version=1", "dev"),
        Err(TopicError::BadUsername)
    );
    assert_eq!(check_username("dev", "dev"), Err(TopicError::BadUsername));
    assert_eq!(
        check_username("/dev/?x", "dev"),
        Err(TopicError::BadUsername)
    );
}

proptest! {
    #[test]
    fn request_round_trips_and_splits_like_the_c_sdk(
        name in "[A-Za-z0-9_.:-]{1,30}",
        rid in "[A-Za-z0-9]{1,12}",
        path in "[A-Za-z0-9/_=&?%-]{0,40}",
        auth in "[A-Za-z0-9_.-]{1,80}",
    ) {
        let r = StreamRequest { name, rid, url: format!("wss://h:1/{path}"), auth, ip: Some("10.0.0.1".into()) };
        let topic = r.to_topic().expect("valid fields");
        let levels: Vec<&str> = topic.split('/').collect();
        prop_assert_eq!(levels.len(), 5);
        for pair in levels[4].trim_start_matches('?').split('&') {
            let parts: Vec<&str> = pair.split('=').collect();
            prop_assert!(parts.len() == 2 && !parts[0].is_empty() && !parts[1].is_empty(), "{}", pair);
        }
        prop_assert_eq!(StreamRequest::parse(&topic), Ok(r));
    }

    #[test]
    fn redaction_leaves_no_auth_value(s in "[a-z$&=?/]{0,40}", token in "[A-Za-z0-9_.-]{8,40}") {
        let topic = format!("{s}$auth={token}{s}");
        let redacted = redact_auth(&topic);
        prop_assert!(!redacted.contains(&format!("$auth={token}")), "{}", redacted);
    }

    #[test]
    fn parsers_never_panic(s in ".{0,300}") {
        let _ = StreamRequest::parse(&s);
        let _ = StreamResponse::parse(&s);
        let _ = ClientId::parse(&s);
        let _ = check_username(&s, "d");
    }
}
