//! `pingpost frame decode|encode`: one frame between hex and the JSON form of the spec's vectors.

use bytes::BytesMut;
use pingpost::limits::FRAME_LENGTH_MAX;
use pingpost::protocol::{Message, check_frame, decode_frame, encode_frame_with_version};
use serde::{Deserialize, Serialize};

/// The JSON form of a frame, as the spec's vectors write it. The version defaults to this
/// build's; the flags default to 0, the only value version 1 defines.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FrameJson<'a> {
    #[serde(default = "default_version")]
    version: u8,
    #[serde(default)]
    flags: u8,
    correlation_id: u64,
    #[serde(borrow)]
    message: Message<'a>,
}

fn default_version() -> u8 {
    pingpost::limits::PROTOCOL_VERSION_MAX
}

/// Decodes one frame from hex into pretty JSON, or says which protocol error the bytes make.
pub fn decode(hex_text: &str) -> Result<String, String> {
    let bytes = parse_hex(hex_text)?;
    match check_frame(&bytes, FRAME_LENGTH_MAX) {
        Err(error) => return Err(error.to_string()),
        Ok(None) => {
            return Err(format!(
                "incomplete frame: {} bytes given, the length prefix asks for more",
                bytes.len()
            ));
        }
        Ok(Some(length)) if length != bytes.len() => {
            return Err(format!(
                "{} bytes given but the frame is {length} bytes long; give exactly one frame",
                bytes.len()
            ));
        }
        Ok(Some(_)) => {}
    }
    let frame = decode_frame(&bytes).map_err(|error| error.to_string())?;
    let json = FrameJson {
        version: frame.header.version,
        flags: frame.header.flags,
        correlation_id: frame.header.correlation_id,
        message: frame.message,
    };
    serde_json::to_string_pretty(&json).map_err(|error| error.to_string())
}

/// Encodes one frame from its JSON form into lower-case hex.
pub fn encode(json_text: &str) -> Result<String, String> {
    let frame: FrameJson<'_> =
        serde_json::from_str(json_text).map_err(|error| format!("invalid frame JSON: {error}"))?;
    if frame.flags != 0 {
        return Err(format!(
            "flags {} given, but protocol version 1 defines no flag: the flags must be 0",
            frame.flags
        ));
    }
    let mut out = BytesMut::new();
    encode_frame_with_version(
        frame.version,
        frame.correlation_id,
        &frame.message,
        &mut out,
    )
    .map_err(|error| error.to_string())?;
    Ok(hex_string(&out))
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    if digits.len() % 2 != 0 {
        return Err("hex input has an odd number of digits".to_owned());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(|_| "hex input is not ASCII")?;
            u8::from_str_radix(text, 16).map_err(|_| "hex input has a non-hex character")
        })
        .collect::<Result<_, _>>()
        .map_err(str::to_owned)
}

fn hex_string(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_round_trips_between_hex_and_json() {
        let json = r#"{"correlation_id": 9, "message": {"type": "HEARTBEAT", "sent_at": 1}}"#;
        let hex = encode(json).expect("encodes");
        assert_eq!(hex, "140000000400010009000000000000000100000000000000");
        let back = decode(&hex).expect("decodes");
        assert!(back.contains("\"HEARTBEAT\""), "{back}");
        assert!(back.contains("\"correlation_id\": 9"), "{back}");
    }

    #[test]
    fn every_spec_vector_encodes_from_its_json() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/protocol-spec/vectors/messages"
        );
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).expect("vectors directory") {
            let path = entry.expect("directory entry").path();
            let text = std::fs::read_to_string(&path).expect("vector file");
            let cases: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON array");
            for case in cases {
                let expected: String = case["hex"]
                    .as_str()
                    .expect("hex")
                    .split_whitespace()
                    .collect::<String>()
                    .to_lowercase();
                let hex = encode(&case["frame"].to_string())
                    .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                assert_eq!(hex, expected, "{} {}", path.display(), case["name"]);
                checked += 1;
            }
        }
        assert!(checked >= 34, "only {checked} vectors");
    }

    #[test]
    fn encode_refuses_flags() {
        let error =
            encode(r#"{"flags": 1, "correlation_id": 1, "message": {"type": "GOODBYE_ACK"}}"#)
                .expect_err("flags");
        assert!(error.contains("flags"), "{error}");
    }

    #[test]
    fn decode_reports_the_protocol_error() {
        // frame_length 4: shorter than the 12-byte header.
        let error = decode("04000000 00000000").expect_err("too short");
        assert!(error.contains("101"), "{error}");
    }

    #[test]
    fn decode_rejects_odd_hex_and_extra_bytes() {
        assert!(decode("abc").is_err());
        let hex = encode(r#"{"correlation_id": 1, "message": {"type": "GOODBYE_ACK"}}"#)
            .expect("encodes");
        assert!(
            decode(&format!("{hex}00"))
                .expect_err("extra")
                .contains("exactly one")
        );
    }
}
