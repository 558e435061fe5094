//! Why devices' connection attempts failed, as the device SDK itself reports it: a tracing
//! layer that counts the SDK's "will retry" / "will reconnect" events by reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Counts of failure reasons since the last [`FailureLog::take`].
#[derive(Debug, Clone, Default)]
pub struct FailureLog {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Text replaced by `hub` in reasons (the hub's addresses), so reasons group.
    addresses: Arc<Mutex<Vec<String>>>,
}

impl FailureLog {
    /// Names the hub's addresses, which are folded out of reasons.
    pub fn set_addresses(&self, addresses: Vec<String>) {
        if let Ok(mut a) = self.addresses.lock() {
            *a = addresses;
        }
    }

    /// The counts so far, and starts again from zero.
    pub fn take(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    fn count(&self, reason: String) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(reason).or_default() += 1;
        }
    }

    fn fold(&self, mut reason: String) -> String {
        if let Ok(addresses) = self.addresses.lock() {
            for a in addresses.iter() {
                reason = reason.replace(a.as_str(), "hub");
            }
        }
        // The OS error number adds nothing to its text.
        if let Some(at) = reason.find(" (os error") {
            reason.truncate(at);
        }
        if reason.len() > 120 {
            let mut end = 120;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        reason
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    error: Option<String>,
    code: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        match field.name() {
            "message" => self.message = text,
            "error" => self.error = Some(text),
            "code" => self.code = Some(text),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

impl<S: Subscriber> Layer<S> for FailureLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("adit_device") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if !(fields.message.contains("will retry") || fields.message.contains("will reconnect")) {
            return;
        }
        let reason = match (fields.code, fields.error) {
            (Some(code), _) => format!("refused: {code}"),
            (None, Some(error)) => error,
            (None, None) => fields.message,
        };
        self.count(self.fold(reason));
    }
}
