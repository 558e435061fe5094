//! Questions one node asks every other: their diagnostics records (so `adit logs` against any
//! node shows the whole cluster's), their streaming endpoints (so `adit streams show` lists
//! every node) and the streams they relay now (so the console lists every node's). The asker publishes one question with a reply inbox on the cluster's questions subject and gathers
//! answers until every live node (by lease) has answered or [`ANSWER_WITHIN`] has passed: a
//! node that does not answer in time is left out and named in a warning.

use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Cluster, NATS_CALL, publish_bounded};
use crate::diagnostics::{Filter, query};
use crate::streams::{OpenStream, Streams};

/// Longest an asker waits for the other nodes' answers.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Most records one node answers with (as `GET /adit/logs` allows).
const MAX_RECORDS: usize = 10_000;

/// Most open streams one node answers with: the newest (300 bytes to 1 KiB each; fewer when
/// they do not fit the NATS server's largest message).
pub const MAX_OPEN_STREAMS: usize = 1000;

/// Room kept in an answer for everything but the records, in bytes.
const ENVELOPE: usize = 4 * 1024;

/// What one node asks the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub enum Question {
    /// Their diagnostics records matching the filter.
    Logs {
        /// The filter (its limit applies per node).
        filter: Filter,
    },
    /// Their streaming endpoints.
    StreamingEndpoint,
    /// The streams they relay now.
    OpenStreams,
}

#[derive(Debug, Serialize, Deserialize)]
struct Asked {
    from: String,
    question: Question,
}

/// One node's answer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Answer {
    /// The node that answered.
    pub node: String,
    /// Matching records, oldest first.
    #[serde(default)]
    pub records: Vec<Value>,
    /// Whether older matching records were left out to fit NATS's message size.
    #[serde(default)]
    pub truncated: bool,
    /// Its streaming endpoint (`https://host:port`).
    #[serde(default)]
    pub streaming_endpoint: Option<String>,
    /// The streams it relays now, newest first, at most [`MAX_OPEN_STREAMS`] and what fits
    /// one NATS message (`truncated` says when there were more).
    #[serde(default)]
    pub streams: Vec<OpenStream>,
}

/// What a node answers from.
#[derive(Debug, Clone)]
pub struct Answerer {
    /// Its diagnostics log directory.
    pub log_dir: std::path::PathBuf,
    /// Its streaming endpoint.
    pub streaming_endpoint: String,
    /// Its streams.
    pub streams: Streams,
}

impl Cluster {
    /// Answers the other nodes' questions until `shutdown`.
    pub async fn answer_questions(&self, from: Answerer, shutdown: CancellationToken) {
        let Some(mut sub) = self.subscribe_bounded(self.subjects.questions()).await else {
            tracing::error!(
                "cannot subscribe to the cluster's questions; `adit logs` and `adit streams show` on other nodes will leave this node out"
            );
            return;
        };
        while let Some(msg) = super::next_message(&mut sub, &shutdown).await {
            let Some(reply_to) = msg.reply.clone() else {
                continue;
            };
            let Ok(asked) = serde_json::from_slice::<Asked>(&msg.payload) else {
                tracing::warn!("malformed question from another node ignored");
                continue;
            };
            if asked.from == *self.node {
                continue;
            }
            let mut answer = Answer {
                node: self.node.to_string(),
                ..Answer::default()
            };
            match asked.question {
                Question::StreamingEndpoint => {
                    answer.streaming_endpoint = Some(from.streaming_endpoint.clone());
                }
                Question::OpenStreams => {
                    (answer.streams, answer.truncated) = newest_open(from.streams.open_streams());
                }
                Question::Logs { mut filter } => {
                    // As the API clamps its own: a peer's question cannot ask for the whole log.
                    filter.limit = filter.limit.clamp(1, MAX_RECORDS);
                    let dir = from.log_dir.clone();
                    // File reading is blocking work: keep it off the async workers.
                    match tokio::task::spawn_blocking(move || query(&dir, &filter)).await {
                        Ok(Ok(records)) => answer.records = records,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "cannot read the diagnostics log for another node");
                        }
                        Err(e) => tracing::warn!(error = %e, "log query failed"),
                    }
                }
            }
            let max = self.client.server_info().max_payload;
            let payload = encode_within(&mut answer, max.saturating_sub(ENVELOPE));
            if !publish_bounded(&self.client, reply_to, payload).await {
                tracing::warn!("cannot answer another node's question");
            }
        }
    }

    /// Asks every other node `question` and returns the answers that came within
    /// [`ANSWER_WITHIN`], or as soon as `expected` did.
    pub async fn ask_others(&self, question: Question, expected: usize) -> Vec<Answer> {
        let mut answers: Vec<Answer> = Vec::new();
        if expected == 0 {
            return answers;
        }
        if !self.is_connected() {
            tracing::warn!("NATS is unreachable: answering with this node's part only");
            return answers;
        }
        let payload = match serde_json::to_vec(&Asked {
            from: self.node.to_string(),
            question,
        }) {
            Ok(p) => p,
            Err(_) => return answers,
        };
        let inbox = self.client.new_inbox();
        let Some(mut sub) = self.subscribe_bounded(inbox.clone()).await else {
            tracing::warn!("cannot ask the other nodes: NATS did not take the subscription");
            return answers;
        };
        let sent = tokio::time::timeout(
            NATS_CALL,
            self.client
                .publish_with_reply(self.subjects.questions(), inbox, payload.into()),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::warn!("cannot ask the other nodes: NATS did not take the question");
            return answers;
        }
        let until = tokio::time::Instant::now() + ANSWER_WITHIN;
        while answers.len() < expected {
            let Ok(Some(msg)) = tokio::time::timeout_at(until, sub.next()).await else {
                break;
            };
            match serde_json::from_slice::<Answer>(&msg.payload) {
                // One answer per node: a repeated one must not end the wait early.
                Ok(a) if answers.iter().all(|b| b.node != a.node) => answers.push(a),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "malformed answer from another node"),
            }
        }
        if answers.len() < expected {
            tracing::warn!(
                answered = answers.len(),
                expected,
                "not every node answered within {ANSWER_WITHIN:?}; the answer leaves them out"
            );
        }
        answers
    }
}

/// The newest [`MAX_OPEN_STREAMS`] of `streams`, newest first, and whether any were left out.
pub fn newest_open(mut streams: Vec<OpenStream>) -> (Vec<OpenStream>, bool) {
    streams.sort_by_key(|s| std::cmp::Reverse(s.requested_ms));
    let truncated = streams.len() > MAX_OPEN_STREAMS;
    streams.truncate(MAX_OPEN_STREAMS);
    (streams, truncated)
}

/// `answer` as JSON of at most `max` bytes: the oldest records, or the oldest open streams
/// (the list is newest first), are left out (and `truncated` set) until it fits.
fn encode_within(answer: &mut Answer, max: usize) -> Vec<u8> {
    loop {
        let encoded = serde_json::to_vec(&answer).unwrap_or_default();
        let items = answer.records.len() + answer.streams.len();
        if encoded.len() <= max || items == 0 {
            return encoded;
        }
        // Drop about the share that is too much, at least one item.
        let over = encoded.len() - max;
        let per_item = encoded.len() / items;
        let drop = over / per_item.max(1) + 1;
        if answer.records.is_empty() {
            let keep = answer.streams.len().saturating_sub(drop);
            answer.streams.truncate(keep);
        } else {
            answer.records.drain(..drop.min(answer.records.len()));
        }
        answer.truncated = true;
    }
}

fn time_of(v: &Value) -> &str {
    v.get("time").and_then(Value::as_str).unwrap_or("")
}

/// This node's `local` records and the other nodes' `answers` merged: the newest `limit`,
/// oldest first, by their `time` (RFC 3339 UTC text of fixed width, so text order is time
/// order). When an answer was cut to fit NATS, records older than its oldest kept one are
/// left out everywhere: the result is the newest records with no node's missing in between.
pub fn merge_records(local: Vec<Value>, answers: Vec<Answer>, limit: usize) -> Vec<Value> {
    let cutoff = answers
        .iter()
        .filter(|a| a.truncated)
        .filter_map(|a| a.records.first().map(|r| time_of(r).to_string()))
        .max();
    if cutoff.is_some() {
        tracing::warn!(
            "a node's answer was cut to fit NATS: the merged log starts at its oldest kept record"
        );
    }
    let mut all: Vec<Value> = local
        .into_iter()
        .chain(answers.into_iter().flat_map(|a| a.records))
        .filter(|r| cutoff.as_deref().is_none_or(|c| time_of(r) >= c))
        .collect();
    all.sort_by(|a, b| time_of(a).cmp(time_of(b)));
    let skip = all.len().saturating_sub(limit);
    all.drain(..skip);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_answer_of_the_longest_open_streams_fits_and_keeps_the_newest() {
        let long = |c: char| std::iter::repeat_n(c, 128).collect::<String>();
        let streams: Vec<OpenStream> = (0..MAX_OPEN_STREAMS)
            .map(|i| OpenStream {
                stream_id: format!("{i:032x}"),
                device_id: long('d'),
                module_id: Some(long('m')),
                stream_name: long('s'),
                policy: Some(long('p')),
                caller: Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into()),
                node: long('n'),
                protocol: Some("adit.stream.v1".into()),
                requested_ms: i64::try_from(MAX_OPEN_STREAMS - i).unwrap_or(0),
                bytes_device_to_service: u64::MAX,
                bytes_service_to_device: u64::MAX,
                rate_device_to_service: u64::MAX,
                rate_service_to_device: u64::MAX,
            })
            .collect();
        let (streams, truncated) = newest_open(streams);
        assert!(!truncated);
        let mut answer = Answer {
            node: "n".into(),
            streams,
            ..Answer::default()
        };
        // Half of NATS's default 1 MiB: these are over 1 KiB each.
        let max = 512 * 1024;
        let bytes = encode_within(&mut answer, max);
        assert!(bytes.len() <= max, "{}", bytes.len());
        let back: Answer = serde_json::from_slice(&bytes).expect("valid JSON");
        assert!(back.truncated);
        assert!(back.streams.len() > 100, "{}", back.streams.len());
        assert_eq!(
            back.streams.first().map(|s| s.requested_ms),
            Some(i64::try_from(MAX_OPEN_STREAMS).unwrap_or(0)),
            "the newest kept"
        );
    }

    #[test]
    fn an_answer_too_large_loses_its_oldest_records_and_says_so() {
        let records: Vec<Value> = (0..1000)
            .map(|i| json!({"time": format!("2026-12-02T00:00:{i:04}Z"), "pad": "x".repeat(100)}))
            .collect();
        let mut answer = Answer {
            node: "n".into(),
            records,
            ..Answer::default()
        };
        let bytes = encode_within(&mut answer, 20_000);
        assert!(bytes.len() <= 20_000, "{}", bytes.len());
        let back: Answer = serde_json::from_slice(&bytes).expect("valid JSON");
        assert!(back.truncated);
        assert!(!back.records.is_empty());
        assert_eq!(
            back.records.last().and_then(|r| r["time"].as_str()),
            Some("2026-12-02T00:00:0999Z"),
            "the newest kept"
        );

        let mut small = Answer {
            node: "n".into(),
            records: vec![json!({"time": "t"})],
            ..Answer::default()
        };
        let bytes = encode_within(&mut small, 20_000);
        let back: Answer = serde_json::from_slice(&bytes).expect("valid JSON");
        assert!(!back.truncated);
        assert_eq!(back.records.len(), 1);
    }

    #[test]
    fn merged_records_are_the_newest_across_nodes_in_time_order() {
        let a = vec![
            json!({"time": "2026-12-02T00:00:01Z", "n": "a"}),
            json!({"time": "2026-12-02T00:00:04Z", "n": "a"}),
        ];
        let b = Answer {
            node: "b".into(),
            records: vec![
                json!({"time": "2026-12-02T00:00:02Z", "n": "b"}),
                json!({"time": "2026-12-02T00:00:03Z", "n": "b"}),
            ],
            ..Answer::default()
        };
        let merged = merge_records(a, vec![b], 3);
        let times: Vec<_> = merged
            .iter()
            .map(|r| r["time"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            times,
            [
                "2026-12-02T00:00:02Z",
                "2026-12-02T00:00:03Z",
                "2026-12-02T00:00:04Z"
            ]
        );
    }

    #[test]
    fn a_cut_answer_moves_the_start_of_the_merge_to_its_oldest_kept_record() {
        let local = vec![
            json!({"time": "2026-12-02T00:00:01Z"}),
            json!({"time": "2026-12-02T00:00:05Z"}),
        ];
        let cut = Answer {
            node: "b".into(),
            records: vec![
                json!({"time": "2026-12-02T00:00:03Z"}),
                json!({"time": "2026-12-02T00:00:04Z"}),
            ],
            truncated: true,
            ..Answer::default()
        };
        let merged = merge_records(local, vec![cut], 10);
        let times: Vec<_> = merged.iter().map(time_of).collect();
        assert_eq!(
            times,
            [
                "2026-12-02T00:00:03Z",
                "2026-12-02T00:00:04Z",
                "2026-12-02T00:00:05Z"
            ],
            "node A's 00:01 record is left out: node B's records before 00:03 are unknown"
        );
    }
}
