//! Frames (spec section 1): finding a whole frame in a byte stream, decoding one with the
//! header checks in the spec's order, and encoding one.
//!
//! sans-IO: these functions take and give bytes; the tokio adapter and the server's sessions
//! decide when to read and write.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use super::codes::ErrorCode;
use super::error::{DecodeError, EncodeError};
use super::message::{Message, MessageType};
use super::wire::{Reader, Writer};
use crate::limits::{
    FRAME_HEADER_LEN, FRAME_LENGTH_MAX, FRAME_PREFIX_LEN, PROTOCOL_VERSION_MAX,
    PROTOCOL_VERSION_MIN,
};

/// A frame's 12-byte header, once checked: the type is one this version defines, the version
/// one this build speaks, and the flags 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub message_type: MessageType,
    pub version: u8,
    pub flags: u8,
    pub correlation_id: u64,
}

/// A decoded frame. `message` borrows its strings from the frame's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frame<'a> {
    pub header: Header,
    pub message: Message<'a>,
}

impl Frame<'_> {
    /// Copies every borrowed string, so the frame outlives its bytes.
    pub fn into_owned(self) -> Frame<'static> {
        Frame {
            header: self.header,
            message: self.message.into_owned(),
        }
    }
}

/// Turns a `u32` from the wire into a `usize`. Every target this daemon runs on has a `usize` of
/// 32 bits or more; the fallback only keeps the function total.
#[inline]
fn to_usize(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// The prefix error for `frame_length`, if any: too short (101) below the header's size, too
/// large (100) above `frame_length_max`. Both are fatal.
#[inline]
fn check_frame_length(frame_length: u32, frame_length_max: u32) -> Result<(), DecodeError> {
    let code = if to_usize(frame_length) < FRAME_HEADER_LEN {
        ErrorCode::FRAME_TOO_SHORT
    } else if frame_length > frame_length_max {
        ErrorCode::FRAME_TOO_LARGE
    } else {
        return Ok(());
    };
    Err(DecodeError {
        code,
        correlation_id: None,
        field: "frame_length",
        offset: 0,
    })
}

/// Looks for a whole frame at the start of `buf`.
///
/// `Ok(None)`: incomplete, wait for more bytes (not an error). `Ok(Some(n))`: a whole frame of
/// `n` bytes, prefix included, starts `buf`. `Err`: `FRAME_TOO_SHORT` or `FRAME_TOO_LARGE`,
/// decided from the 4-byte prefix alone, before the rest is waited for or buffered; both are
/// fatal, because the next frame cannot be found.
#[inline]
pub fn check_frame(buf: &[u8], frame_length_max: u32) -> Result<Option<usize>, DecodeError> {
    let Some(prefix) = buf.first_chunk::<FRAME_PREFIX_LEN>() else {
        return Ok(None);
    };
    let frame_length = u32::from_le_bytes(*prefix);
    check_frame_length(frame_length, frame_length_max)?;
    // Cannot overflow on 64-bit targets (frame_length is a u32); saturating so that no platform
    // can panic here.
    let total = FRAME_PREFIX_LEN.saturating_add(to_usize(frame_length));
    Ok(if buf.len() >= total {
        Some(total)
    } else {
        None
    })
}

/// Reads the prefix and header of one complete frame and applies the spec's checks in order:
/// prefix (101, 100), version (103), type (102), flags (104). The reader is left at the body.
#[inline]
fn read_header(frame: &[u8]) -> Result<(Header, Reader<'_>), DecodeError> {
    let mut r = Reader::new(frame);
    let frame_length = r.u32("frame_length")?;
    check_frame_length(frame_length, FRAME_LENGTH_MAX)?;
    // The slice must be exactly the frame the prefix announces: a shorter one is a truncated
    // frame, a longer one holds bytes that are not this frame's.
    let frame_length_matches = r.remaining() == to_usize(frame_length);
    let message_type = r.u16("message_type")?;
    let version = r.u8("version")?;
    let flags = r.u8("flags")?;
    let correlation_id = r.u64("correlation_id")?;
    let fail = |code, field, offset: usize| DecodeError {
        code,
        correlation_id: Some(correlation_id),
        field,
        offset: u32::try_from(offset).unwrap_or(u32::MAX),
    };
    if !frame_length_matches {
        let code = if frame.len() < FRAME_PREFIX_LEN.saturating_add(to_usize(frame_length)) {
            ErrorCode::TRUNCATED
        } else {
            ErrorCode::TRAILING_BYTES
        };
        return Err(fail(code, "frame_length", 0));
    }
    // LOGIN and its answers always carry version 1 (spec section 3), so that peers of any
    // versions can negotiate; every other frame must carry a version this build speaks.
    let login_version_1 =
        version == LOGIN_VERSION && MessageType::from_u16(message_type).is_some_and(is_login);
    if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION_MAX).contains(&version) && !login_version_1 {
        return Err(fail(ErrorCode::UNSUPPORTED_VERSION, "version", 6));
    }
    let Some(message_type) = MessageType::from_u16(message_type) else {
        return Err(fail(ErrorCode::UNKNOWN_MESSAGE_TYPE, "message_type", 4));
    };
    if flags != 0 {
        return Err(fail(ErrorCode::BAD_FLAGS, "flags", 7));
    }
    Ok((
        Header {
            message_type,
            version,
            flags,
            correlation_id,
        },
        r,
    ))
}

/// Body errors come from the reader without the correlation id, which only the frame knows.
#[cold]
#[inline(never)]
fn with_correlation_id(error: DecodeError, correlation_id: u64) -> DecodeError {
    DecodeError {
        correlation_id: Some(correlation_id),
        ..error
    }
}

/// Checks and returns the header of one complete frame (prefix included), without the body.
pub fn decode_header(frame: &[u8]) -> Result<Header, DecodeError> {
    read_header(frame).map(|(header, _)| header)
}

/// Decodes exactly one complete frame (prefix included), as found by [`check_frame`]. Header
/// checks in the spec's order, then the body's fields in wire order, then trailing bytes.
/// Strings in the message borrow from `frame`; decoding `PING`, `BID`, `NO_BID`,
/// `DELIVERY_ACK` and `POST` allocates nothing.
#[inline]
pub fn decode_frame(frame: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let (header, mut r) = read_header(frame)?;
    match Message::decode_body(header.message_type, &mut r)
        .and_then(|message| r.finish().map(|()| message))
    {
        Ok(message) => Ok(Frame { header, message }),
        Err(error) => Err(with_correlation_id(error, header.correlation_id)),
    }
}

/// The version `LOGIN`, `LOGIN_ACCEPTED` and `LOGIN_REJECTED` frames carry in every version.
pub const LOGIN_VERSION: u8 = 1;

/// Whether the type keeps version 1's layout and header version forever (spec section 3).
pub fn is_login(message_type: MessageType) -> bool {
    matches!(
        message_type,
        MessageType::Login | MessageType::LoginAccepted | MessageType::LoginRejected
    )
}

/// The header version [`encode_frame`] stamps: [`LOGIN_VERSION`] for the login messages,
/// `PROTOCOL_VERSION_MAX` for the rest. (Both are 1 today.)
pub fn default_version(message_type: MessageType) -> u8 {
    if is_login(message_type) {
        LOGIN_VERSION
    } else {
        PROTOCOL_VERSION_MAX
    }
}

/// Appends one frame: prefix, header (version `PROTOCOL_VERSION_MAX`, or 1 for the login
/// messages, which carry 1 in every version; flags 0) and body. Refuses (with the code a
/// receiver would answer) any message a conforming receiver would reject, including a frame
/// above `FRAME_LENGTH_MAX`; on error `out` is left as it was.
pub fn encode_frame(
    correlation_id: u64,
    message: &Message<'_>,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let version = default_version(message.message_type());
    encode_frame_with(version, correlation_id, message, FRAME_LENGTH_MAX, out)
}

/// As [`encode_frame`], with the header's version given (tests use it to build frames of other
/// versions). The body layout is always version 1's.
pub fn encode_frame_with_version(
    version: u8,
    correlation_id: u64,
    message: &Message<'_>,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_frame_with(version, correlation_id, message, FRAME_LENGTH_MAX, out)
}

/// As [`encode_frame`], with the header's version and the largest `frame_length` the receiver
/// accepts (the `frame_length_max` it announced) given.
pub fn encode_frame_with(
    version: u8,
    correlation_id: u64,
    message: &Message<'_>,
    frame_length_max: u32,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode_unchecked_length(
        version,
        correlation_id,
        message,
        start,
        frame_length_max,
        out,
    );
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_unchecked_length(
    version: u8,
    correlation_id: u64,
    message: &Message<'_>,
    start: usize,
    frame_length_max: u32,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    // The prefix is written last, when the length is known; reserve its place.
    out.put_u32_le(0);
    let mut w = Writer::new(out);
    w.u16(message.message_type().as_u16());
    w.u8(version);
    w.u8(0);
    w.u64(correlation_id);
    message.encode_body(&mut w)?;
    let frame_length = out
        .len()
        .saturating_sub(start)
        .saturating_sub(FRAME_PREFIX_LEN);
    let frame_length = match u32::try_from(frame_length) {
        Ok(length) if length <= frame_length_max => length,
        _ => return Err(EncodeError::new(ErrorCode::FRAME_TOO_LARGE, "frame_length")),
    };
    let prefix_end = start.saturating_add(FRAME_PREFIX_LEN);
    match out.get_mut(start..prefix_end) {
        Some(prefix) => prefix.copy_from_slice(&frame_length.to_le_bytes()),
        None => return Err(EncodeError::new(ErrorCode::FRAME_TOO_SHORT, "frame_length")),
    }
    Ok(())
}
