//! Reading the log back: the rotated files oldest first, then the current one, filtered.

use std::io::{BufRead as _, BufReader};
use std::path::Path;

use serde_json::Value;

use super::LOG_FILE;

/// What to return.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    /// `DeviceStreams`, `Connections` or `Authentication`; all when `None`.
    pub category: Option<String>,
    /// Only this device.
    pub device: Option<String>,
    /// Only this stream outcome (`closed`, `rejected`, `timed_out`, ...).
    pub outcome: Option<String>,
    /// Records at or after this time (`2026-11-26T08:00:00Z`, compared as text).
    pub since: Option<String>,
    /// Records before this time.
    pub until: Option<String>,
    /// At most this many, the newest.
    pub limit: usize,
}

fn matches(record: &Value, f: &Filter) -> bool {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(c) = &f.category
        && !text(record, "category").is_some_and(|x| x.eq_ignore_ascii_case(c))
    {
        return false;
    }
    let time = text(record, "time").unwrap_or_default();
    if f.since.as_ref().is_some_and(|s| time.as_str() < s.as_str())
        || f.until
            .as_ref()
            .is_some_and(|u| time.as_str() >= u.as_str())
    {
        return false;
    }
    if f.device.is_none() && f.outcome.is_none() {
        return true;
    }
    let props: Value = text(record, "properties")
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or_default();
    f.device
        .as_ref()
        .is_none_or(|d| text(&props, "deviceId").as_deref() == Some(d))
        && f.outcome
            .as_ref()
            .is_none_or(|o| text(&props, "outcome").as_deref() == Some(o))
}

/// The matching records in `dir`, oldest first, at most `filter.limit` (the newest ones).
pub fn query(dir: &Path, filter: &Filter) -> std::io::Result<Vec<Value>> {
    let mut files: Vec<_> = (1..=64)
        .map(|n| dir.join(format!("{LOG_FILE}.{n}")))
        .filter(|p| p.exists())
        .collect();
    files.reverse();
    files.push(dir.join(LOG_FILE));
    let mut out = std::collections::VecDeque::new();
    for path in files {
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        for line in BufReader::new(file).lines() {
            let line = line?;
            // A torn last line (the writer mid-append) is skipped, not an error.
            let Ok(record) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if matches(&record, filter) {
                out.push_back(record);
                if filter.limit > 0 && out.len() > filter.limit {
                    out.pop_front();
                }
            }
        }
    }
    Ok(out.into())
}
