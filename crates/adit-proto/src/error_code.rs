//! Azure IoT Hub error codes and the JSON error body.
//!
//! Every error response carries the numeric code twice: as the enum name in the
//! `iothub-errorcode` header and inside the body, whose `Message` is itself a JSON string:
//! `{"Message":"{\"errorCode\":404001,\"trackingId\":\"...\",\"message\":\"...\",\"timestampUtc\":\"...\"}","ExceptionMessage":""}`.
//! C# treats the code as valid only when the header name matches the number, so both come
//! from one table here.

use serde::{Deserialize, Serialize};

/// Name of the response header that carries [`ErrorCode::name`].
pub const ERROR_CODE_HEADER: &str = "iothub-errorcode";

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $num:literal, $status:literal;)*) => {
        /// An Azure IoT Hub error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
        }

        impl ErrorCode {
            const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The six-digit number, e.g. 404001.
            pub fn number(self) -> u32 {
                match self { $(ErrorCode::$name => $num,)* }
            }

            /// The enum name Azure puts in the `iothub-errorcode` header.
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name),)* }
            }

            /// The HTTP status that goes with the code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$name => $status,)* }
            }
        }
    };
}

error_codes! {
    /// The request is malformed (bad JSON, bad id, bad field).
    ArgumentInvalid = 400004, 400;
    /// A required value is missing.
    ArgumentNull = 400005, 400;
    /// Missing, malformed, expired or wrongly signed credentials.
    IotHubUnauthorizedAccess = 401002, 401;
    /// The credentials are valid but lack the required permission.
    IotHubUnauthorized = 401001, 401;
    /// No device with that id.
    DeviceNotFound = 404001, 404;
    /// No module with that id.
    ModuleNotFound = 404010, 404;
    /// The device is not connected (or not listening for streams).
    DeviceNotOnline = 404103, 404;
    /// No such endpoint.
    NotFound = 404000, 404;
    /// The method is not allowed on this endpoint.
    MethodNotAllowed = 405000, 405;
    /// A device with that id exists already.
    DeviceAlreadyExists = 409001, 409;
    /// `If-Match` did not match the current etag.
    PreconditionFailed = 412001, 412;
    /// The request body is too large.
    MessageTooLarge = 413002, 413;
    /// Too many requests or too many concurrent operations.
    ThrottlingException = 429001, 429;
    /// An internal error in the hub.
    ServerError = 500001, 500;
    /// The hub cannot serve the request right now.
    ServiceUnavailable = 503001, 503;
    /// The device did not answer in time.
    GatewayTimeout = 504101, 504;
}

impl ErrorCode {
    /// Looks a code up by its number.
    pub fn from_number(n: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.number() == n)
    }

    /// Looks a code up by its header name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }
}

#[derive(Serialize, Deserialize)]
struct Outer {
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "ExceptionMessage", default)]
    exception_message: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inner {
    error_code: u32,
    #[serde(default)]
    tracking_id: String,
    message: String,
    #[serde(default)]
    timestamp_utc: String,
}

/// The decoded content of an Azure error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// The numeric code, e.g. 404001.
    pub number: u32,
    /// The human-readable message.
    pub message: String,
    /// The id to quote when reporting the error.
    pub tracking_id: String,
    /// When the error happened (ISO 8601, UTC).
    pub timestamp_utc: String,
}

impl ErrorBody {
    /// The body for `code` with `message`.
    pub fn new(
        code: ErrorCode,
        message: impl Into<String>,
        tracking_id: impl Into<String>,
        timestamp_utc: impl Into<String>,
    ) -> Self {
        Self {
            number: code.number(),
            message: message.into(),
            tracking_id: tracking_id.into(),
            timestamp_utc: timestamp_utc.into(),
        }
    }

    /// The known code, if the number is one.
    pub fn code(&self) -> Option<ErrorCode> {
        ErrorCode::from_number(self.number)
    }

    /// Encodes the body as Azure sends it (JSON inside a JSON string).
    pub fn to_json(&self) -> String {
        let inner = Inner {
            error_code: self.number,
            tracking_id: self.tracking_id.clone(),
            message: self.message.clone(),
            timestamp_utc: self.timestamp_utc.clone(),
        };
        let outer = Outer {
            message: serde_json::to_string(&inner).unwrap_or_default(),
            exception_message: String::new(),
        };
        serde_json::to_string(&outer).unwrap_or_default()
    }

    /// Decodes a body. Also accepts the older `{"Message":"ErrorCode:Name;text"}` form.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let outer: Outer = serde_json::from_slice(body).ok()?;
        if let Ok(inner) = serde_json::from_str::<Inner>(&outer.message) {
            return Some(Self {
                number: inner.error_code,
                message: inner.message,
                tracking_id: inner.tracking_id,
                timestamp_utc: inner.timestamp_utc,
            });
        }
        let rest = outer.message.strip_prefix("ErrorCode:")?;
        let (name, text) = rest.split_once(';').unwrap_or((rest, ""));
        let code = ErrorCode::from_name(name)?;
        Some(Self::new(code, text, "", ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_json_in_json_string() {
        let body = ErrorBody::new(
            ErrorCode::DeviceNotFound,
            "Device dev1 not found.",
            "abc",
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(
            body.to_json(),
            r#"{"Message":"{\"errorCode\":404001,\"trackingId\":\"abc\",\"message\":\"Device dev1 not found.\",\"timestampUtc\":\"2026-01-01T00:00:00Z\"}","ExceptionMessage":""}"#
        );
        assert_eq!(ErrorBody::parse(body.to_json().as_bytes()), Some(body));
    }

    #[test]
    fn parses_real_azure_timeout_body() {
        // From Azure-Samples/azure-iot-samples-csharp#105.
        let real = br#"{"Message":"{\"errorCode\":504101,\"trackingId\":\"x\",\"message\":\"Timed out waiting for the response from device.\",\"info\":{\"timeout\":\"00:01:00\"},\"timestampUtc\":\"2020-02-11T01:36:39.4565857Z\"}","ExceptionMessage":""}"#;
        let b = ErrorBody::parse(real).expect("parses");
        assert_eq!(b.code(), Some(ErrorCode::GatewayTimeout));
        assert_eq!(ErrorCode::GatewayTimeout.http_status(), 504);
        let legacy =
            br#"{"Message":"ErrorCode:DeviceNotFound;Device not found","ExceptionMessage":""}"#;
        assert_eq!(
            ErrorBody::parse(legacy).and_then(|b| b.code()),
            Some(ErrorCode::DeviceNotFound)
        );
        assert_eq!(ErrorBody::parse(b"not json"), None);
    }

    #[test]
    fn table_is_consistent() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(c.name()), Some(*c));
            assert_eq!(ErrorCode::from_number(c.number()), Some(*c));
            assert_eq!(c.number() / 1000, u32::from(c.http_status()));
        }
    }
}
