//! Device and module identifiers: the one rule for every place an id enters Adit.
//!
//! Azure's rule (identity registry docs, "Device identity properties" and "Module identity
//! properties", MicrosoftDocs/azure-docs `articles/iot-hub/iot-hub-devguide-identity-registry.md`,
//! ms.date 2025-03-28): "A case-sensitive string (up to 128 characters long) of ASCII 7-bit
//! alphanumeric characters plus certain special characters: `- . % _ * ? ! ( ) , : = @ $ '`.
//! The special characters `+ #` aren't supported." The same text holds for module ids.
//!
//! Azure's SDKs are looser: the C# SDKs' `^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$` (device
//! and service `IotHubConnectionStringBuilder`, `HttpRegistryManager`) also takes `+`, `#` and
//! `;`, and earlier Adit accepted that set. Those three are refused for a *new* identity
//! ([`DeviceId::check_creatable`]): `+` and `#` are MQTT wildcards, so Azure's device SDKs cannot
//! subscribe to the topics that carry such an id, and `;` separates connection-string fields,
//! so no connection string can carry it. Every other parser ([`DeviceId::new`]) still accepts
//! them, so an identity created before the rule keeps loading, connecting and streaming.
//!
//! No id can carry a `/` (it separates device and module in a client id and segments in URL
//! paths), whitespace, or anything outside ASCII. Where each character travels and how it is
//! encoded there: `docs/identifiers.md`.

use std::fmt;
use std::str::FromStr;

/// Longest id Azure accepts, in characters (ids are ASCII, so also in bytes).
pub const MAX_ID_LEN: usize = 128;

/// The special characters Azure's current rule allows in device and module ids, besides ASCII
/// letters and digits.
pub const ID_SPECIALS: &str = "-.%_*?!(),:=@$'";

/// Special characters that identities created before this rule may hold (the C# SDKs' regex
/// allows them) but that a new identity may not: see the module documentation.
pub const LEGACY_ID_SPECIALS: &str = "+#;";

/// The allowed set, as error messages and the docs list it.
pub const ID_ALPHABET: &str = "A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ '";

/// Why a string is not a valid device or module id. Each message names the offending character
/// (or length), says why, and lists what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("id is empty: ids are 1 to {MAX_ID_LEN} characters from {ID_ALPHABET}")]
    Empty,
    /// The id is longer than [`MAX_ID_LEN`]; carries its length.
    #[error("id is {0} characters long; the limit is {MAX_ID_LEN}")]
    TooLong(usize),
    /// The id contains a character outside ASCII.
    #[error(
        "id contains {0:?}: non-ASCII characters are not allowed (ids are 1 to {MAX_ID_LEN} characters from {ID_ALPHABET})"
    )]
    NotAscii(char),
    /// The id contains an ASCII character that no id may hold.
    #[error("id contains {}, which is not allowed{}; allowed: {ID_ALPHABET}", Shown(*.0), why_not(*.0))]
    NotAllowed(char),
    /// A new id contains `+`, `#` or `;` (see [`LEGACY_ID_SPECIALS`]).
    #[error("id contains {}, which new ids may not hold{}; allowed: {ID_ALPHABET}", Shown(*.0), why_not(*.0))]
    NotForNewIds(char),
}

/// A character as an error message shows it: quoted, escaped, and named when invisible.
pub(crate) struct Shown(pub(crate) char);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ' ' => f.write_str("' ' (a space)"),
            c => write!(f, "{c:?}"),
        }
    }
}

fn why_not(c: char) -> &'static str {
    match c {
        '/' => " (it separates device and module in a client id, and segments in URL paths)",
        '+' | '#' => {
            " (Azure IoT Hub does not support it: it is an MQTT topic wildcard, so Azure's device SDKs cannot use such an id)"
        }
        ';' => " (it separates the fields of a connection string)",
        _ => "",
    }
}

/// True for a character Azure's current rule allows in an id.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ID_SPECIALS.contains(c)
}

fn check(s: &str, legacy_ok: bool) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    for c in s.chars() {
        if is_id_char(c) {
            continue;
        }
        if !c.is_ascii() {
            return Err(IdError::NotAscii(c));
        }
        if !LEGACY_ID_SPECIALS.contains(c) {
            return Err(IdError::NotAllowed(c));
        }
        if !legacy_ok {
            return Err(IdError::NotForNewIds(c));
        }
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(s.len()));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` as an id an identity may have, including one created before the
            /// current rule (with `+`, `#` or `;`), and wraps it. Errors: [`IdError`].
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check(&s, true)?;
                Ok(Self(s))
            }

            /// Checks that a new identity may take this id: Azure's current rule, without
            /// the [`LEGACY_ID_SPECIALS`]. Errors: [`IdError::NotForNewIds`].
            pub fn check_creatable(&self) -> Result<(), IdError> {
                check(&self.0, false)
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A device identity's id, as in the registry and in `DeviceId=` of a connection string.
    /// Case-sensitive; 1 to 128 characters from [`ID_ALPHABET`] (or [`LEGACY_ID_SPECIALS`] for
    /// an identity created before the current rule).
    DeviceId
);
id_type!(
    /// A module identity's id, scoped to one device. Same rule as [`DeviceId`].
    ModuleId
);

#[cfg(test)]
mod tests;
