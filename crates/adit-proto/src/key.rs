//! Symmetric keys.
//!
//! Keys travel as standard base64 (in connection strings and the registry API) and are used as
//! raw bytes for HMAC-SHA256. [`Key`] holds the decoded bytes and its `Debug` never prints
//! them, so a key cannot leak through a log line.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Shortest key Azure accepts, in decoded bytes.
pub const MIN_KEY_BYTES: usize = 16;
/// Longest key Azure accepts, in decoded bytes.
pub const MAX_KEY_BYTES: usize = 64;
/// Length of keys that Adit generates, in bytes (as Azure does).
pub const GENERATED_KEY_BYTES: usize = 32;

/// Why a string is not a usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not valid standard base64.
    #[error("key is not valid base64")]
    NotBase64,
    /// The decoded key is shorter than 16 or longer than 64 bytes.
    #[error("key must decode to between {MIN_KEY_BYTES} and {MAX_KEY_BYTES} bytes, not {0}")]
    BadLength(usize),
}

/// A symmetric key: the decoded bytes plus the base64 text it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    bytes: Vec<u8>,
    base64: String,
}

impl Key {
    /// Decodes a base64 key and checks its length.
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD.decode(s.trim()).map_err(|_| KeyError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&bytes.len()) {
            return Err(KeyError::BadLength(bytes.len()));
        }
        Ok(Self {
            base64: STANDARD.encode(&bytes),
            bytes,
        })
    }

    /// Wraps raw key bytes (for example fresh random ones).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&bytes.len()) {
            return Err(KeyError::BadLength(bytes.len()));
        }
        Ok(Self {
            base64: STANDARD.encode(bytes),
            bytes: bytes.to_vec(),
        })
    }

    /// The raw key bytes, the HMAC key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key in standard base64, as it appears in connection strings.
    pub fn to_base64(&self) -> &str {
        &self.base64
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(MASKED)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_masks() {
        let key = Key::from_bytes(&[7u8; 32]).expect("32 bytes is valid");
        let again = Key::from_base64(key.to_base64()).expect("own encoding decodes");
        assert_eq!(key, again);
        assert_eq!(format!("{key:?}"), "Key(MASKED)");
    }

    #[test]
    fn rejects_bad_keys() {
        assert_eq!(Key::from_base64("not base64!"), Err(KeyError::NotBase64));
        assert_eq!(Key::from_base64("AAAA"), Err(KeyError::BadLength(3)));
        assert_eq!(Key::from_bytes(&[0; 65]), Err(KeyError::BadLength(65)));
    }
}
