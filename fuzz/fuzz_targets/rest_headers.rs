//! The REST API's header parsers: the stream initiation timeouts
//! (`iothub-streaming-connect-timeout-in-seconds`, `...-response-timeout-in-seconds`, through
//! `adit_hub::api::stream_timeout_header`), `If-Match` (`adit_hub::api::if_match`) and the
//! policy a failed `Authorization` token claims (`adit_hub::auth::claimed_policy`).
//!
//! Input: up to four lines, the header values in that order (any bytes a header may hold).
//! Invariants: never panics; a timeout is finite, non-negative and at most a day; a value
//! that is not text is refused, not read.
#![no_main]

use std::time::Duration;

use adit_fuzz::seeds;
use adit_hub::api::{if_match, stream_timeout_header};
use adit_hub::auth::claimed_policy;
use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

const CONNECT: &str = "iothub-streaming-connect-timeout-in-seconds";
const RESPONSE: &str = "iothub-streaming-response-timeout-in-seconds";

fn seeds() -> Vec<Vec<u8>> {
    [
        // C# formats TimeSpan.TotalSeconds; Python and Node send integers.
        &[
            "60",
            "30",
            "\"AAAAAAAAAAE=\"",
            "SharedAccessSignature sr=hub.example&sig=YWJj&se=1&skn=service",
        ][..],
        &[
            "1.5",
            "0.001",
            "*",
            "SharedAccessSignature sr=h&sig=x&skn=iothubowner&se=9",
        ][..],
        &[" 86400 ", "1e3", "W/\"etag\"", "Bearer x"][..],
        &["NaN", "-0", "\"*\"", ""][..],
    ]
    .iter()
    .map(|l| seeds::lines(l))
    .collect()
}

fn check_timeout(headers: &HeaderMap, name: &str) {
    if let Ok(Some(d)) = stream_timeout_header(headers, name) {
        assert!(d <= Duration::from_secs(86_400), "{name}: {d:?}");
    }
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let mut values = data.split(|&b| b == b'\n');
        let mut headers = HeaderMap::new();
        for name in [CONNECT, RESPONSE, header::IF_MATCH.as_str(), header::AUTHORIZATION.as_str()] {
            let Some(raw) = values.next() else { break };
            if let Ok(v) = HeaderValue::from_bytes(raw) {
                headers.insert(name, v);
            }
        }
        check_timeout(&headers, CONNECT);
        check_timeout(&headers, RESPONSE);
        let parsed = if_match(&headers);
        if let Some(v) = headers.get(header::IF_MATCH) {
            assert_eq!(v.to_str().is_ok(), parsed.is_ok());
        }
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let _ = claimed_policy(auth);
    }
);
