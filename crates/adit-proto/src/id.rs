//! Device and module identifiers.
//!
//! Azure accepts ids of 1 to 128 ASCII characters from a fixed set (the C# device SDK's
//! regex `^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$`). Adit enforces the same set everywhere an
//! id enters, so an id that works here works with every Azure SDK, and an id can never carry
//! a `/`, which would break MQTT topic and URL parsing.

use std::fmt;
use std::str::FromStr;

/// Longest id Azure accepts.
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not a valid device or module id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("id is empty")]
    Empty,
    /// The id is longer than 128 characters.
    #[error("id is longer than {MAX_ID_LEN} characters")]
    TooLong,
    /// The id contains a character outside Azure's allowed set.
    #[error(
        "id contains {0:?}, which is not allowed (allowed: A-Z a-z 0-9 - : . + % _ # * ? ! ( ) , = @ ; $ ')"
    )]
    InvalidChar(char),
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-:.+%_#*?!(),=@;$'".contains(c)
}

fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some(c) = s.chars().find(|c| !is_id_char(*c)) {
        return Err(IdError::InvalidChar(c));
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` and wraps it.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate(&s)?;
                Ok(Self(s))
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
    DeviceId
);
id_type!(
    /// A module identity's id, scoped to one device.
    ModuleId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_allowed_character() {
        let all = "azAZ09-:.+%_#*?!(),=@;$'";
        assert_eq!(
            DeviceId::new(all).map(|d| d.to_string()),
            Ok(all.to_string())
        );
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(DeviceId::new(""), Err(IdError::Empty));
        assert_eq!(DeviceId::new("a/b"), Err(IdError::InvalidChar('/')));
        assert_eq!(DeviceId::new("a b"), Err(IdError::InvalidChar(' ')));
        assert_eq!(DeviceId::new("é"), Err(IdError::InvalidChar('é')));
        assert_eq!(DeviceId::new("a".repeat(129)), Err(IdError::TooLong));
        assert!(DeviceId::new("a".repeat(128)).is_ok());
    }
}
