//! A thin `tokio_util::codec` adapter over the sans-IO frame functions, for `Framed` sockets.
//!
//! The decoder yields whole frames as [`RawFrame`]s and leaves decoding their messages to the
//! caller: only the fatal framing faults (100, 101) are stream errors, because every other fault
//! is answered per frame and the session carries on (spec section 1).

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::fmt;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::codec::{
    Frame, Header, check_frame, decode_frame, decode_header, default_version, encode_frame_with,
    is_login,
};
use super::error::{DecodeError, EncodeError};
use super::message::Message;
use crate::limits::{FRAME_LENGTH_MAX, FRAME_PREFIX_LEN};

/// Frames a byte stream. `frame_length_max` bounds both directions: the decoder refuses larger
/// incoming frames (fatally) and the encoder refuses to produce them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireCodec {
    frame_length_max: u32,
    /// The negotiated version stamped on outgoing frames (login messages always carry 1);
    /// `None` before login: `PROTOCOL_VERSION_MAX`.
    version: Option<u8>,
}

impl WireCodec {
    pub fn new(frame_length_max: u32) -> Self {
        Self {
            frame_length_max,
            version: None,
        }
    }

    pub fn frame_length_max(&self) -> u32 {
        self.frame_length_max
    }

    /// Changes the bound, e.g. to the `frame_length_max` a `LOGIN_ACCEPTED` announced.
    pub fn set_frame_length_max(&mut self, frame_length_max: u32) {
        self.frame_length_max = frame_length_max;
    }

    /// Sets the version outgoing frames carry, once login has negotiated it.
    pub fn set_version(&mut self, version: u8) {
        self.version = Some(version);
    }
}

impl Default for WireCodec {
    fn default() -> Self {
        Self::new(FRAME_LENGTH_MAX)
    }
}

/// One whole frame's bytes (prefix included), not yet decoded. Cheap to clone and to move to
/// another task; decode it where the message is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub bytes: Bytes,
}

impl RawFrame {
    /// The checked header (prefix, version, type, flags in the spec's order).
    pub fn header(&self) -> Result<Header, DecodeError> {
        decode_header(&self.bytes)
    }

    /// The whole frame, its message borrowing from these bytes.
    pub fn decode(&self) -> Result<Frame<'_>, DecodeError> {
        decode_frame(&self.bytes)
    }
}

/// What can end a framed stream.
#[derive(Debug)]
pub enum CodecError {
    /// `FRAME_TOO_SHORT` or `FRAME_TOO_LARGE`: send `ERROR` with correlation id 0 and close.
    Framing(DecodeError),
    /// A message the encoder refused; nothing was written.
    Encode(EncodeError),
    /// The socket failed.
    Io(std::io::Error),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Framing(error) => write!(f, "framing fault: {error}"),
            Self::Encode(error) => write!(f, "{error}"),
            Self::Io(error) => write!(f, "i/o error: {error}"),
        }
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Framing(error) => Some(error),
            Self::Encode(error) => Some(error),
            Self::Io(error) => Some(error),
        }
    }
}

impl From<std::io::Error> for CodecError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

impl From<EncodeError> for CodecError {
    fn from(error: EncodeError) -> Self {
        Self::Encode(error)
    }
}

impl Decoder for WireCodec {
    type Item = RawFrame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RawFrame>, CodecError> {
        match check_frame(src, self.frame_length_max) {
            Ok(Some(length)) => Ok(Some(RawFrame {
                bytes: src.split_to(length).freeze(),
            })),
            Ok(None) => {
                // Once the prefix is in and has passed its checks, make room for exactly the
                // announced frame: never more, so a peer cannot make us reserve beyond
                // frame_length_max.
                if let Some(prefix) = src.first_chunk::<FRAME_PREFIX_LEN>() {
                    let frame_length = usize::try_from(u32::from_le_bytes(*prefix)).unwrap_or(0);
                    let total = frame_length.saturating_add(FRAME_PREFIX_LEN);
                    src.reserve(total.saturating_sub(src.len()));
                }
                Ok(None)
            }
            Err(error) => Err(CodecError::Framing(error)),
        }
    }
}

/// Encodes `(correlation_id, &message)` with the session's version once set (see
/// [`WireCodec::set_version`]), else the one [`encode_frame`](super::encode_frame) uses. On error
/// nothing is appended to the send buffer.
impl<'m, 'a> Encoder<(u64, &'m Message<'a>)> for WireCodec {
    type Error = CodecError;

    fn encode(
        &mut self,
        (correlation_id, message): (u64, &'m Message<'a>),
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let version = match self.version {
            Some(version) if !is_login(message.message_type()) => version,
            _ => default_version(message.message_type()),
        };
        encode_frame_with(version, correlation_id, message, self.frame_length_max, dst)
            .map_err(CodecError::Encode)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::protocol::codes::ErrorCode;
    use crate::protocol::message::Heartbeat;

    #[test]
    fn decodes_whole_frames_and_waits_for_partial_ones() {
        let mut codec = WireCodec::default();
        let mut stream = BytesMut::new();
        let message = Message::Heartbeat(Heartbeat { sent_at: 42 });
        codec.encode((7, &message), &mut stream).unwrap();
        codec.encode((8, &message), &mut stream).unwrap();
        let whole = stream.split();
        let mut src = BytesMut::new();
        // Byte by byte: a frame appears only when complete.
        let mut frames = Vec::new();
        for byte in whole.iter() {
            src.extend_from_slice(&[*byte]);
            if let Some(frame) = codec.decode(&mut src).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].header().unwrap().correlation_id, 7);
        assert_eq!(frames[1].decode().unwrap().message, message);
        assert!(src.is_empty());
    }

    #[test]
    fn reserves_only_the_announced_frame() {
        let mut codec = WireCodec::new(1024);
        let mut src = BytesMut::new();
        src.extend_from_slice(&100u32.to_le_bytes());
        assert!(codec.decode(&mut src).unwrap().is_none());
        assert!(src.capacity() >= 104);
        let mut src = BytesMut::new();
        src.extend_from_slice(&2000u32.to_le_bytes());
        match codec.decode(&mut src) {
            Err(CodecError::Framing(error)) => assert_eq!(error.code, ErrorCode::FRAME_TOO_LARGE),
            other => panic!("expected a framing error, got {other:?}"),
        }
        assert!(src.capacity() < 2000);
    }

    #[test]
    fn encoder_respects_the_frame_limit() {
        let mut codec = WireCodec::new(12 + 7);
        let mut dst = BytesMut::new();
        let message = Message::Heartbeat(Heartbeat { sent_at: 1 });
        match codec.encode((1, &message), &mut dst) {
            Err(CodecError::Encode(error)) => assert_eq!(error.code, ErrorCode::FRAME_TOO_LARGE),
            other => panic!("expected an encode error, got {other:?}"),
        }
        assert!(dst.is_empty());
    }
}
