//! The diagnostics query parameters of `GET /adit/logs` (`category`, `device`, `outcome`,
//! `since`, `until`, `limit`), decoded by axum's `Query` as the route does, turned into a
//! filter (`adit_hub::api::LogQuery::into_filter`) and run by `adit_hub::diagnostics::query`
//! over a log the hub's own writer made.
//!
//! Input: the query string (what follows `?`).
//! Invariants: never panics; at most `limit` records (1..=10,000) come back, each of the
//! asked category, inside `[since, until)`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::OnceLock;

use adit_fuzz::runtime::block_on;
use adit_fuzz::seeds;
use adit_hub::api::LogQuery;
use adit_hub::diagnostics::{Diagnostics, DiagnosticsConfig, query};
use axum::extract::Query;
use axum::http::Uri;
use libfuzzer_sys::fuzz_target;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn seeds() -> Vec<Vec<u8>> {
    [
        "category=DeviceStreams&device=fuzz-device&limit=10",
        "category=connections&since=2026-01-01T00:00:00Z&until=2100-01-01T00:00:00.000Z",
        "category=Authentication&outcome=closed&limit=0",
        "device=d%2Fx&limit=18446744073709551615",
        "",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// A log directory holding records written by the hub's diagnostics writer.
fn log_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("adit-fuzz-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        block_on(async {
            let tracker = TaskTracker::new();
            let shutdown = CancellationToken::new();
            let config = DiagnosticsConfig {
                dir: dir.clone(),
                max_file_bytes: 1 << 20,
                keep_files: 2,
                stdout: false,
                resource_id: "/adit/fuzz".into(),
                location: "local".into(),
            };
            let log = Diagnostics::start(config, &tracker, shutdown.clone())
                .expect("the log directory can be written");
            let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
            for (i, device) in ["fuzz-device", "dev1", "d/x"].iter().enumerate() {
                log.connection(device, None, "mqtt", source, true, "connected");
                log.auth_failure("mqtt", Some(source), Some(device), "token expired", None);
                log.connection(
                    device,
                    (i == 1).then_some("sink"),
                    "mqtt-ws",
                    source,
                    false,
                    "client disconnected",
                );
            }
            shutdown.cancel();
            tracker.close();
            tracker.wait().await;
        });
        dir
    })
}

fuzz_target!(
    init: seeds::write_if_asked(seeds),
    |data: &[u8]| {
        let dir = log_dir();
        let Ok(text) = std::str::from_utf8(data) else { return };
        let Ok(uri) = format!("/adit/logs?{text}").parse::<Uri>() else { return };
        let Ok(Query(q)) = Query::<LogQuery>::try_from_uri(&uri) else { return };
        let filter = q.into_filter();
        assert!((1..=10_000).contains(&filter.limit));
        let records = query(dir, &filter).expect("the log reads");
        assert!(records.len() <= filter.limit);
        for r in &records {
            let field = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            if let Some(c) = &filter.category {
                assert!(field("category").eq_ignore_ascii_case(c));
            }
            if let Some(s) = &filter.since {
                assert!(field("time") >= s.as_str());
            }
            if let Some(u) = &filter.until {
                assert!(field("time") < u.as_str());
            }
        }
    }
);
