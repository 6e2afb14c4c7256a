//! The invariants the decoder's fuzz target checks, kept in the library so that `cargo test`
//! replays the fuzz seed corpus on stable Rust and the fuzz target stays one line.

use bytes::BytesMut;

use crate::limits::{FRAME_HEADER_LEN, FRAME_LENGTH_MAX, FRAME_PREFIX_LEN};
use crate::protocol::{CodeGroup, check_frame, decode_frame, encode_frame_with};

/// Runs arbitrary bytes through `check_frame` and `decode_frame` and panics if an invariant
/// breaks (the fuzzer reports the panic):
///
/// - neither function panics, whatever the bytes;
/// - `check_frame` never claims more bytes than were given, nor a frame above the limit;
/// - every decode error is a protocol (1xx) error, and carries the correlation id exactly when
///   the header's bytes were present;
/// - a frame that decodes re-encodes to the very same bytes (the encoding is canonical), and
///   its owned copy equals it.
pub fn check_decode_invariants(data: &[u8]) {
    // Decoding bytes that were not framed first must be safe too: the server never does it,
    // but a decoder that relies on its caller for safety is one refactor away from a crash.
    if let Err(error) = decode_frame(data) {
        assert_eq!(error.code.group(), CodeGroup::Protocol, "{error}");
    }

    let length = match check_frame(data, FRAME_LENGTH_MAX) {
        Ok(Some(length)) => length,
        Ok(None) => return,
        Err(error) => {
            assert!(error.is_fatal(), "check_frame fails only fatally: {error}");
            return;
        }
    };
    assert!(
        length <= data.len(),
        "claims {length} of {} bytes",
        data.len()
    );
    assert!(length >= FRAME_PREFIX_LEN + FRAME_HEADER_LEN);
    assert!(length - FRAME_PREFIX_LEN <= FRAME_LENGTH_MAX as usize);

    let bytes = &data[..length];
    match decode_frame(bytes) {
        Err(error) => {
            assert_eq!(error.code.group(), CodeGroup::Protocol, "{error}");
            assert!(
                error.correlation_id.is_some(),
                "a whole header was read: {error}"
            );
        }
        Ok(frame) => {
            let mut again = BytesMut::with_capacity(length);
            encode_frame_with(
                frame.header.version,
                frame.header.correlation_id,
                &frame.message,
                FRAME_LENGTH_MAX,
                &mut again,
            )
            .unwrap_or_else(|error| panic!("a decoded frame must re-encode: {error}"));
            assert_eq!(&again[..], bytes, "encoding is not canonical for {frame:?}");
            let owned = frame.message.clone().into_owned();
            assert_eq!(owned, frame.message);
        }
    }
}
