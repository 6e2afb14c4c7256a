//! The codec's two error types: what was wrong with received bytes, and why a message could not
//! be encoded.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::fmt;

use super::codes::ErrorCode;

/// A received frame (or its length prefix) breaks the spec. `code` is what the receiver sends
/// back in `ERROR`; `correlation_id` is the id to echo (known once the 12 header bytes are);
/// `field` names the spec field that failed and `offset` is the byte, counted from the start of
/// the frame's length prefix, where that field begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The `1xx` code the spec assigns to this fault.
    pub code: ErrorCode,
    /// The frame's correlation id, once the header has been read; `None` before (answer with 0).
    pub correlation_id: Option<u64>,
    /// The spec's name of the failing field, e.g. `postal_code`; `frame_length` for the prefix.
    pub field: &'static str,
    /// Offset of the failing field's first byte from the start of the frame (prefix included).
    pub offset: u32,
}

impl DecodeError {
    /// Whether the connection must be closed: the receiver cannot find the next frame.
    pub fn is_fatal(&self) -> bool {
        self.code.is_fatal()
    }

    /// The correlation id to put in the answering `ERROR`: the frame's, or 0 if unknown.
    pub fn reply_correlation_id(&self) -> u64 {
        self.correlation_id.unwrap_or(0)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in field `{}` at byte {} of frame",
            self.code, self.field, self.offset
        )?;
        if let Some(id) = self.correlation_id {
            write!(f, " (correlation id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

/// A message cannot be encoded because a conforming receiver would reject it: `code` is the error
/// that receiver would answer, `field` the spec's name of the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// The `1xx` code a receiver would answer the frame with.
    pub code: ErrorCode,
    /// The spec's name of the offending field.
    pub field: &'static str,
}

impl EncodeError {
    pub(crate) const fn new(code: ErrorCode, field: &'static str) -> Self {
        Self { code, field }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode: {} in field `{}`", self.code, self.field)
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn display_is_a_clear_sentence() {
        let error = DecodeError {
            code: ErrorCode::TRUNCATED,
            correlation_id: None,
            field: "postal_code",
            offset: 23,
        };
        assert_eq!(
            error.to_string(),
            "TRUNCATED (105) in field `postal_code` at byte 23 of frame"
        );
        let error = DecodeError {
            correlation_id: Some(7),
            ..error
        };
        assert_eq!(
            error.to_string(),
            "TRUNCATED (105) in field `postal_code` at byte 23 of frame (correlation id 7)"
        );
        assert!(!error.is_fatal());
        let error = EncodeError::new(ErrorCode::STRING_TOO_LONG, "secret");
        assert_eq!(
            error.to_string(),
            "cannot encode: STRING_TOO_LONG (108) in field `secret`"
        );
    }
}
