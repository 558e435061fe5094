//! `SharedAccessSignature` tokens.
//!
//! `SharedAccessSignature sr={resource}&sig={signature}&se={expiry}[&skn={policy}]`, where the
//! signature is base64(HMAC-SHA256(key, sr + "\n" + se)) over **the `sr` text exactly as it
//! appears in the token**. SDKs disagree on how to encode `sr` and `sig` and on field order, so
//! the parser keeps `sr` raw, accepts fields in any order with case-insensitive names, and
//! percent-decodes `sig` without turning `+` into a space.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{ConditionallySelectable as _, ConstantTimeEq};

use crate::key::Key;
use crate::resource::{Audience, decode_component, encode_component};

/// Longest token accepted. Real ones are under 300 bytes.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Clock skew tolerated past a token's expiry, in seconds.
pub const CLOCK_SKEW_SECS: u64 = 300;

const PREFIX: &str = "SharedAccessSignature";

/// Why a token was refused. The messages are safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("token is too long")]
    TooLong,
    /// Does not start with `SharedAccessSignature `.
    #[error("token is not a SharedAccessSignature")]
    NotSharedAccessSignature,
    /// Field number N (1 for the first) is not `name=value`. Errors name a field by its
    /// position or name, never by its text, which may hold the signature.
    #[error("token field {0} is not name=value (fields are joined by &)")]
    NotNameValue(usize),
    /// Field number N has a name other than `sr`, `sig`, `se` or `skn`.
    #[error("token field {0} has a name other than sr, sig, se or skn")]
    UnknownField(usize),
    /// Something follows the fields (a SAS token has one space, after its prefix).
    #[error("token has text after its fields")]
    TrailingText,
    /// A field is not valid percent-encoded UTF-8.
    #[error("token field {0} is not valid percent-encoded UTF-8")]
    BadEncoding(&'static str),
    /// A field appears twice.
    #[error("token field {0} appears more than once")]
    DuplicateField(&'static str),
    /// `sr`, `sig` or `se` is missing.
    #[error("token has no {0}")]
    MissingField(&'static str),
    /// `se` is not a number of seconds.
    #[error("token expiry (se) is not a number")]
    BadExpiry,
    /// `sr` does not decode to a resource URI.
    #[error("token resource is not a valid URI")]
    BadResource,
    /// The token expired (beyond the allowed clock skew).
    #[error("token expired")]
    Expired,
    /// No key produced the signature.
    #[error("token signature does not match")]
    BadSignature,
}

/// A parsed, not yet verified, SAS token.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken {
    raw_sr: String,
    sig: Vec<u8>,
    se_raw: String,
    expiry: u64,
    key_name: Option<String>,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &Key, sr: &str, se: &str) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(sr.as_bytes());
    mac.update(b"\n");
    mac.update(se.as_bytes());
    mac
}

impl SasToken {
    /// Parses a token. Bounded: anything over [`MAX_TOKEN_LEN`] is refused unread.
    pub fn parse(token: &str) -> Result<Self, SasError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(SasError::TooLong);
        }
        let mut words = token.split_whitespace();
        if words.next() != Some(PREFIX) {
            return Err(SasError::NotSharedAccessSignature);
        }
        let fields = words.next().ok_or(SasError::MissingField("sr"))?;
        if words.next().is_some() {
            return Err(SasError::TrailingText);
        }
        let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
        for (index, field) in fields.split('&').enumerate() {
            let position = index + 1;
            let (name, value) = field
                .split_once('=')
                .ok_or(SasError::NotNameValue(position))?;
            let (slot, label) = match name.to_ascii_lowercase().as_str() {
                "sr" => (&mut sr, "sr"),
                "sig" => (&mut sig, "sig"),
                "se" => (&mut se, "se"),
                "skn" => (&mut skn, "skn"),
                _ => return Err(SasError::UnknownField(position)),
            };
            if slot.replace(value).is_some() {
                return Err(SasError::DuplicateField(label));
            }
        }
        let raw_sr = sr
            .filter(|s| !s.is_empty())
            .ok_or(SasError::MissingField("sr"))?;
        let sig = sig
            .filter(|s| !s.is_empty())
            .ok_or(SasError::MissingField("sig"))?;
        let se_raw = se.ok_or(SasError::MissingField("se"))?;
        let expiry = se_raw.parse::<u64>().map_err(|_| SasError::BadExpiry)?;
        // A signature that is not base64 can never match; keep it as empty bytes so verify
        // fails in the same way and the caller learns nothing more.
        let sig = decode_component(sig)
            .and_then(|s| STANDARD.decode(s).ok())
            .unwrap_or_default();
        let key_name = match skn {
            Some(n) => Some(decode_component(n).ok_or(SasError::BadEncoding("skn"))?),
            None => None,
        };
        Ok(Self {
            raw_sr: raw_sr.to_string(),
            sig,
            se_raw: se_raw.to_string(),
            expiry,
            key_name,
        })
    }

    /// The `sr` field exactly as it appeared in the token.
    pub fn raw_resource(&self) -> &str {
        &self.raw_sr
    }

    /// The decoded audience.
    pub fn audience(&self) -> Result<Audience, SasError> {
        Audience::from_sr(&self.raw_sr).ok_or(SasError::BadResource)
    }

    /// The policy name (`skn`), when the token was signed with a policy key.
    pub fn key_name(&self) -> Option<&str> {
        self.key_name.as_deref()
    }

    /// Expiry, in Unix seconds.
    pub fn expiry(&self) -> u64 {
        self.expiry
    }

    /// Checks expiry against `now` (Unix seconds, with [`CLOCK_SKEW_SECS`] of grace) and the
    /// signature against each key in turn (primary, then secondary). Signatures are compared
    /// in constant time.
    pub fn verify<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k Key>,
        now: u64,
    ) -> Result<(), SasError> {
        self.verify_which(keys, now).map(|_| ())
    }

    /// Like [`SasToken::verify`], and says which key signed: its position in `keys` (0 for the
    /// first). Callers keep it to notice later when that very key is replaced. Every key is
    /// tried, so the time taken does not depend on which one matched.
    pub fn verify_which<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k Key>,
        now: u64,
    ) -> Result<usize, SasError> {
        if self.expiry.saturating_add(CLOCK_SKEW_SECS) < now {
            return Err(SasError::Expired);
        }
        let mut matched = subtle::Choice::from(0);
        let mut which = 0u64;
        for (index, key) in keys.into_iter().enumerate() {
            let expected = mac(key, &self.raw_sr, &self.se_raw).finalize().into_bytes();
            // Length differences are public (a SHA-256 MAC is always 32 bytes).
            if expected.len() == self.sig.len() {
                let this = expected.as_slice().ct_eq(&self.sig);
                // The first matching key wins; later ones cannot overwrite it.
                let first = this & !matched;
                which.conditional_assign(&u64::try_from(index).unwrap_or(u64::MAX), first);
                matched |= this;
            }
        }
        if bool::from(matched) {
            Ok(usize::try_from(which).unwrap_or(usize::MAX))
        } else {
            Err(SasError::BadSignature)
        }
    }

    /// Builds a token for `resource_uri` (unencoded, e.g. `hub:8443/devices/d1`), in the field
    /// order C, C# and Python use: `sr`, `sig`, `se`, then `skn`.
    pub fn sign(resource_uri: &str, key: &Key, key_name: Option<&str>, expiry: u64) -> String {
        let sr = encode_component(resource_uri);
        let se = expiry.to_string();
        let sig = STANDARD.encode(mac(key, &sr, &se).finalize().into_bytes());
        let mut token = format!("{PREFIX} sr={sr}&sig={}&se={se}", encode_component(&sig));
        if let Some(name) = key_name {
            token.push_str("&skn=");
            token.push_str(&encode_component(name));
        }
        token
    }
}

impl std::fmt::Debug for SasToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SasToken")
            .field("sr", &self.raw_sr)
            .field("se", &self.expiry)
            .field("skn", &self.key_name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
