//! One-line rendering of an error and its causes, for logs and the CLI.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each cause, separated by `: `. Some libraries repeat a
/// cause's text in their own message (reqwest does), so text already printed is skipped.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        let mut next: Option<&(dyn Error + 'static)> = Some(self.0);
        while let Some(e) = next {
            let text = e.to_string();
            if !line.contains(&text) {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&text);
            }
            next = e.source();
        }
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn joins_causes() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(Report(&e).to_string(), "outer: inner");
    }
}
