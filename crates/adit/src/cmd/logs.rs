//! `adit logs`: query (and follow) the hub's diagnostics log.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use adit_hub::diagnostics::format_time;
use adit_service::LogQuery;
use anyhow::bail;
use serde_json::Value;

use crate::cli::LogsArgs;

/// RFC 3339 as given, or an age (`30s`, `10m`, `2h`, `1d`) turned into a time.
fn parse_time(s: &str) -> anyhow::Result<String> {
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let secs = match (num.parse::<u64>(), unit) {
        (Ok(n), "s") => Some(n),
        (Ok(n), "m") => Some(n * 60),
        (Ok(n), "h") => Some(n * 3600),
        (Ok(n), "d") => Some(n * 86_400),
        _ => None,
    };
    if let Some(secs) = secs {
        let t = SystemTime::now()
            .checked_sub(Duration::from_secs(secs))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        return Ok(format_time(t));
    }
    match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        Ok(t) => Ok(format_time(t.into())),
        Err(_) => bail!("{s:?} is neither an RFC 3339 time nor an age like 10m"),
    }
}

fn properties(record: &Value) -> Value {
    record["properties"]
        .as_str()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default()
}

fn header(category: Option<&str>) -> String {
    match category {
        Some("DeviceStreams") => format!(
            "{:<24}  {:<16}  {:<10}  {:<18}  {:<8}  {:>12}  {:>12}  {:>8}",
            "TIME", "DEVICE", "NAME", "OUTCOME", "CLOSED BY", "DEV->SVC", "SVC->DEV", "MS"
        ),
        _ => format!(
            "{:<24}  {:<14}  {:<16}  {:<16}  DETAIL",
            "TIME", "CATEGORY", "OPERATION", "DEVICE"
        ),
    }
}

fn row(category: Option<&str>, r: &Value) -> String {
    let p = properties(r);
    let s = |v: &Value| {
        v.as_str().map(str::to_string).unwrap_or_else(|| {
            if v.is_null() {
                "-".into()
            } else {
                v.to_string()
            }
        })
    };
    match category {
        Some("DeviceStreams") => format!(
            "{:<24}  {:<16}  {:<10}  {:<18}  {:<8}  {:>12}  {:>12}  {:>8}",
            s(&r["time"]),
            s(&p["deviceId"]),
            s(&p["requestName"]),
            s(&p["outcome"]),
            s(&p["closedBy"]),
            s(&p["bytesDeviceToService"]),
            s(&p["bytesServiceToDevice"]),
            s(&r["durationMs"]),
        ),
        _ => format!(
            "{:<24}  {:<14}  {:<16}  {:<16}  {}",
            s(&r["time"]),
            s(&r["category"]),
            s(&r["operationName"]),
            s(&p["deviceId"]),
            s(&r["resultDescription"]),
        ),
    }
}

/// Writes `line` to stdout; `false` once the reader has gone (`adit logs | head`), which ends
/// the command quietly instead of panicking as `println!` does on a closed pipe.
fn emit(line: &str) -> anyhow::Result<bool> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let registry = args.access.registry()?;
    // clap checked the name case-insensitively; the hub matches it exactly.
    let category = ["DeviceStreams", "Connections", "Authentication"]
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(&args.category))
        .map(str::to_string);
    let mut query = LogQuery::default();
    query.category = category.clone();
    query.device = args.device.clone();
    query.outcome = args.outcome.clone();
    query.since = args.since.as_deref().map(parse_time).transpose()?;
    query.until = args.until.as_deref().map(parse_time).transpose()?;
    query.limit = Some(args.limit.clamp(1, 10_000));
    let mut seen: HashSet<String> = HashSet::new();
    let mut header_due = !args.json;
    loop {
        // The header only once the hub has answered, so an error is not printed under it.
        let records = registry.logs(&query).await?;
        if std::mem::take(&mut header_due) && !emit(&header(category.as_deref()))? {
            return Ok(());
        }
        for r in &records {
            // Following re-reads from the last time seen; skip what was printed already.
            let line = r.to_string();
            if !seen.insert(line.clone()) {
                continue;
            }
            let text = if args.json {
                line
            } else {
                row(category.as_deref(), r)
            };
            if !emit(&text)? {
                return Ok(());
            }
        }
        if !args.follow {
            return Ok(());
        }
        if let Some(last) = records.last().and_then(|r| r["time"].as_str()) {
            query.since = Some(last.to_string());
            seen.retain(|l| l.contains(last));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = crate::signal::shutdown() => return Ok(()),
        }
    }
}
