//! Drives the spec's byte vectors (`protocol-spec/vectors/`, format in its `README.md`) through
//! the codec.
//!
//! - Valid cases (`messages/*.json`, any case with a `frame`): `check_frame` finds exactly one
//!   whole frame, `decode_frame` gives the case's JSON, and encoding the case's JSON gives exactly
//!   its bytes.
//! - Malformed cases (`malformed.json`, any case with an `error`): `check_frame` then
//!   `decode_frame` give exactly the expected code, correlation id and fatality, or "incomplete".
//! - Coverage: every `MessageType` has a valid case, every 1xx frame error of the codec has a
//!   malformed case, and there are at least 20 malformed cases.
//!
//! Every failure names its file and case, and all failures are reported together.
//!
//! `PINGPOST_BLESS=1 cargo test --test spec_vectors` rewrites the `hex` of valid cases from the
//! encoder (when the protocol changes on purpose), keeping the field-split layout of the bytes
//! that did not change. Malformed cases are never blessed: their bytes are hand-made.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use pingpost::limits::FRAME_LENGTH_MAX;
use pingpost::protocol::{
    DecodeError, ErrorCode, Message, MessageType, check_frame, decode_frame,
    encode_frame_with_version,
};
use serde_json::{Value, json};

/// Bytes of the length prefix and the header, which every frame starts with.
const PREFIX_AND_HEADER_LEN: usize = 16;
/// The field sizes of the prefix and header, for laying out blessed hex.
const HEADER_FIELDS: [usize; 5] = [4, 2, 1, 1, 8];
/// The fewest malformed cases the spec's vectors must have.
const MALFORMED_CASES_MIN: usize = 20;
/// The frame errors a codec reports for bytes alone (codes.md, 1xx, without the session's
/// 115..=119); each needs at least one malformed case.
const FRAME_ERROR_CODES: std::ops::RangeInclusive<u16> = 100..=114;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-spec/vectors")
}

/// Every `.json` file under `dir`, sorted, recursively.
fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
}

/// The hex of a case, whitespace ignored.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(digits).map_err(|error| format!("bad hex: {error}"))
}

/// What a file and its cases are called in failure messages.
struct Place<'a> {
    file: &'a str,
    case: &'a str,
}

impl Place<'_> {
    fn fail(&self, failures: &mut Vec<String>, what: impl AsRef<str>) {
        failures.push(format!("{} :: {}: {}", self.file, self.case, what.as_ref()));
    }
}

/// What the vectors hold, gathered while checking them.
#[derive(Default)]
struct Tally {
    valid: BTreeMap<MessageType, usize>,
    malformed: usize,
    incomplete: usize,
    codes: BTreeSet<u16>,
}

#[test]
fn spec_vectors() {
    let dir = vectors_dir();
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    assert!(!files.is_empty(), "no vector files under {}", dir.display());

    let bless = std::env::var_os("PINGPOST_BLESS").is_some_and(|value| value == "1");
    let mut failures = Vec::new();
    let mut tally = Tally::default();
    for path in &files {
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        check_file(path, &name, bless, &mut tally, &mut failures);
    }

    for message_type in MessageType::ALL {
        if !tally.valid.contains_key(message_type) {
            failures.push(format!(
                "coverage: no valid case for {} (0x{:04X})",
                message_type.name(),
                message_type.as_u16()
            ));
        }
    }
    if tally.malformed < MALFORMED_CASES_MIN {
        failures.push(format!(
            "coverage: {} malformed cases, at least {MALFORMED_CASES_MIN} wanted",
            tally.malformed
        ));
    }
    if tally.incomplete == 0 {
        failures.push("coverage: no malformed case expects `incomplete`".to_owned());
    }
    for code in FRAME_ERROR_CODES {
        if !tally.codes.contains(&code) {
            failures.push(format!(
                "coverage: no malformed case expects {}",
                ErrorCode(code)
            ));
        }
    }

    let valid: usize = tally.valid.values().sum();
    println!(
        "{} files: {valid} valid cases over {} message types, {} malformed cases ({} incomplete)",
        files.len(),
        tally.valid.len(),
        tally.malformed,
        tally.incomplete
    );
    assert!(
        failures.is_empty(),
        "{} vector failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check_file(path: &Path, name: &str, bless: bool, tally: &mut Tally, failures: &mut Vec<String>) {
    let file_place = Place {
        file: name,
        case: "(file)",
    };
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => return file_place.fail(failures, format!("cannot read: {error}")),
    };
    let cases: Vec<Value> = match serde_json::from_str(&text) {
        Ok(cases) => cases,
        Err(error) => {
            return file_place.fail(failures, format!("not a JSON array of cases: {error}"));
        }
    };
    if cases.is_empty() {
        file_place.fail(failures, "no cases");
    }
    // A file under messages/ is named after its message type: `0101-ping.json`.
    let file_type = path
        .file_name()
        .and_then(|file| file.to_str())
        .and_then(|file| file.split_once('-'))
        .and_then(|(prefix, _)| u16::from_str_radix(prefix, 16).ok());

    let mut names = BTreeSet::new();
    let mut blessed: Vec<(String, String)> = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let index_name = format!("case #{index}");
        let case_name = case["name"].as_str().unwrap_or(&index_name);
        let place = Place {
            file: name,
            case: case_name,
        };
        if !names.insert(case_name.to_owned()) {
            place.fail(failures, "duplicate case name in this file");
        }
        if case["description"].as_str().is_none_or(str::is_empty) {
            place.fail(failures, "no description");
        }
        let Some(hex_text) = case["hex"].as_str() else {
            place.fail(failures, "no `hex` string");
            continue;
        };
        let bytes = match parse_hex(hex_text) {
            Ok(bytes) => bytes,
            Err(error) => {
                place.fail(failures, error);
                continue;
            }
        };
        match (case.get("frame"), case.get("error")) {
            (Some(frame), None) => {
                let bytes = if bless {
                    match bless_hex(hex_text, &bytes, frame) {
                        Ok(Some((new_text, new_bytes))) => {
                            blessed.push((hex_text.to_owned(), new_text));
                            new_bytes
                        }
                        Ok(None) => bytes,
                        Err(error) => {
                            place.fail(failures, format!("cannot bless: {error}"));
                            bytes
                        }
                    }
                } else {
                    bytes
                };
                if let Some(message_type) = check_valid(&place, &bytes, frame, file_type, failures)
                {
                    *tally.valid.entry(message_type).or_default() += 1;
                }
            }
            (None, Some(error)) => {
                tally.malformed += 1;
                if error.as_str() == Some("incomplete") {
                    tally.incomplete += 1;
                } else if let Some(code) = error["code"].as_u64() {
                    tally.codes.extend(u16::try_from(code).ok());
                }
                check_malformed(&place, &bytes, error, failures);
            }
            _ => place.fail(failures, "a case has exactly one of `frame` and `error`"),
        }
    }
    if !blessed.is_empty() {
        match rewrite_hex(&text, &blessed) {
            Ok(new_text) => match fs::write(path, new_text) {
                Ok(()) => println!("blessed {} case(s) in {name}", blessed.len()),
                Err(error) => file_place.fail(failures, format!("cannot write: {error}")),
            },
            Err(error) => file_place.fail(failures, error),
        }
    }
}

/// The JSON form of a decoded frame, as the vectors write it.
fn frame_json(version: u8, flags: u8, correlation_id: u64, message: &Message<'_>) -> Value {
    let message = serde_json::to_value(message).expect("a message serializes");
    json!({
        "version": version,
        "flags": flags,
        "correlation_id": correlation_id,
        "message": message,
    })
}

/// The header fields and message of a case's `frame`, checked for shape.
fn case_frame(frame: &Value) -> Result<(u8, u64, Message<'static>), String> {
    let object = frame.as_object().ok_or("`frame` is not an object")?;
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = ["version", "flags", "correlation_id", "message"].into();
    if keys != expected {
        return Err(format!("`frame` has keys {keys:?}, expected {expected:?}"));
    }
    let version = frame["version"]
        .as_u64()
        .and_then(|v| u8::try_from(v).ok())
        .ok_or("`frame.version` is not a u8")?;
    if frame["flags"].as_u64() != Some(0) {
        return Err("`frame.flags` must be 0 in a valid frame".to_owned());
    }
    let correlation_id = frame["correlation_id"]
        .as_u64()
        .ok_or("`frame.correlation_id` is not a u64")?;
    let message = serde_json::from_value::<Message<'static>>(frame["message"].clone())
        .map_err(|error| format!("`frame.message` does not deserialize: {error}"))?;
    Ok((version, correlation_id, message))
}

fn encode(version: u8, correlation_id: u64, message: &Message<'_>) -> Result<Vec<u8>, String> {
    let mut out = BytesMut::new();
    encode_frame_with_version(version, correlation_id, message, &mut out)
        .map_err(|error| error.to_string())?;
    Ok(out.to_vec())
}

/// Checks one valid case; returns its message type when it decodes.
fn check_valid(
    place: &Place<'_>,
    bytes: &[u8],
    frame: &Value,
    file_type: Option<u16>,
    failures: &mut Vec<String>,
) -> Option<MessageType> {
    match check_frame(bytes, FRAME_LENGTH_MAX) {
        Ok(Some(length)) if length == bytes.len() => {}
        other => place.fail(
            failures,
            format!(
                "check_frame says {other:?}, expected one whole frame of {} bytes",
                bytes.len()
            ),
        ),
    }

    let decoded = match decode_frame(bytes) {
        Ok(decoded) => {
            let header = decoded.header;
            let actual = frame_json(
                header.version,
                header.flags,
                header.correlation_id,
                &decoded.message,
            );
            if actual != *frame {
                place.fail(
                    failures,
                    format!(
                        "decoding gives a different frame\n  decoded: {actual}\n  expected: {frame}"
                    ),
                );
            }
            if decoded.message.message_type() != header.message_type {
                place.fail(failures, "decoded message does not match the header's type");
            }
            if file_type.is_some_and(|t| t != header.message_type.as_u16()) {
                place.fail(
                    failures,
                    format!(
                        "a {} frame in a file named for another message type",
                        header.message_type.name()
                    ),
                );
            }
            Some(header.message_type)
        }
        Err(error) => {
            place.fail(failures, format!("does not decode: {error}"));
            None
        }
    };

    match case_frame(frame) {
        Ok((version, correlation_id, message)) => match encode(version, correlation_id, &message) {
            Ok(encoded) if encoded == bytes => {}
            Ok(encoded) => place.fail(
                failures,
                format!(
                    "encoding the frame gives other bytes\n  encoded:  {}\n  expected: {}",
                    hex::encode(&encoded),
                    hex::encode(bytes)
                ),
            ),
            Err(error) => place.fail(failures, format!("the frame does not encode: {error}")),
        },
        Err(error) => place.fail(failures, error),
    }
    decoded
}

/// What the codec made of a malformed case: its error, or that it waits for more bytes.
fn codec_verdict(bytes: &[u8]) -> Result<Result<(), DecodeError>, String> {
    match check_frame(bytes, FRAME_LENGTH_MAX) {
        Err(error) => Ok(Err(error)),
        Ok(None) => Ok(Ok(())),
        Ok(Some(length)) if length != bytes.len() => Err(format!(
            "check_frame finds a frame of {length} bytes in {} bytes: a case must be one frame",
            bytes.len()
        )),
        Ok(Some(_)) => match decode_frame(bytes) {
            Err(error) => Ok(Err(error)),
            Ok(frame) => Err(format!(
                "decodes without error as {}",
                frame_json(
                    frame.header.version,
                    frame.header.flags,
                    frame.header.correlation_id,
                    &frame.message
                )
            )),
        },
    }
}

fn check_malformed(place: &Place<'_>, bytes: &[u8], expected: &Value, failures: &mut Vec<String>) {
    let verdict = match codec_verdict(bytes) {
        Ok(verdict) => verdict,
        Err(error) => return place.fail(failures, error),
    };
    if expected.as_str() == Some("incomplete") {
        if let Err(error) = verdict {
            place.fail(
                failures,
                format!("expected incomplete (wait for more bytes), got {error}"),
            );
        }
        return;
    }
    let Some(code) = expected["code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
    else {
        return place.fail(
            failures,
            "`error` is neither \"incomplete\" nor has a u16 `code`",
        );
    };
    let code = ErrorCode(code);
    if expected["name"].as_str() != code.name() {
        place.fail(
            failures,
            format!(
                "`error.name` is {}, codes.md names {} {:?}",
                expected["name"],
                code.0,
                code.name()
            ),
        );
    }
    let correlation_id = match &expected["correlation_id"] {
        Value::Null => None,
        value => match value.as_u64() {
            Some(id) => Some(id),
            None => return place.fail(failures, "`error.correlation_id` is not null or a u64"),
        },
    };
    let Some(fatal) = expected["fatal"].as_bool() else {
        return place.fail(failures, "`error.fatal` is not a bool");
    };
    match verdict {
        Ok(()) => place.fail(
            failures,
            format!("expected {code}, but the codec waits for more bytes (incomplete)"),
        ),
        Err(error) => {
            if error.code != code {
                place.fail(failures, format!("expected {code}, codec says {error}"));
            }
            if error.correlation_id != correlation_id {
                place.fail(
                    failures,
                    format!(
                        "expected correlation id {correlation_id:?}, codec says {:?} ({error})",
                        error.correlation_id
                    ),
                );
            }
            if error.is_fatal() != fatal {
                place.fail(
                    failures,
                    format!(
                        "expected fatal = {fatal}, codec says {} ({error})",
                        error.is_fatal()
                    ),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bless

/// The encoder's bytes for a valid case and their hex laid out like `old_text`, or `None` when
/// the bytes did not change.
fn bless_hex(
    old_text: &str,
    old_bytes: &[u8],
    frame: &Value,
) -> Result<Option<(String, Vec<u8>)>, String> {
    let (version, correlation_id, message) = case_frame(frame)?;
    let new_bytes = encode(version, correlation_id, &message)?;
    if new_bytes == old_bytes {
        return Ok(None);
    }
    Ok(Some((regroup(old_text, &new_bytes), new_bytes)))
}

/// Lays out `new` like the old hex: the prefix and header split by field, then the old body's
/// groups wherever the bytes at the start and at the end of the body did not change, and the
/// changed middle as one group.
fn regroup(old_text: &str, new: &[u8]) -> String {
    // Byte groups of the old body, if the old text splits into whole bytes.
    let old_groups: Option<Vec<Vec<u8>>> = old_text
        .split_whitespace()
        .map(|group| hex::decode(group).ok())
        .collect();
    let old_body_groups: Vec<Vec<u8>> = match old_groups {
        Some(groups) => {
            let mut offset = 0;
            let mut body = Vec::new();
            for group in groups {
                let end = offset + group.len();
                if offset >= PREFIX_AND_HEADER_LEN {
                    body.push(group);
                } else if end > PREFIX_AND_HEADER_LEN {
                    body.push(group[PREFIX_AND_HEADER_LEN - offset..].to_vec());
                }
                offset = end;
            }
            body
        }
        None => Vec::new(),
    };

    let mut groups: Vec<&[u8]> = Vec::new();
    let mut offset = 0;
    for size in HEADER_FIELDS {
        let end = (offset + size).min(new.len());
        groups.push(&new[offset..end]);
        offset = end;
    }
    let body = &new[offset..];

    // Old groups that still match at the start of the body...
    let mut head = Vec::new();
    let mut start = 0;
    for group in &old_body_groups {
        if body.get(start..start + group.len()) == Some(group.as_slice()) {
            head.push(&body[start..start + group.len()]);
            start += group.len();
        } else {
            break;
        }
    }
    // ...and at its end, without overlapping the start.
    let mut tail = Vec::new();
    let mut end = body.len();
    for group in old_body_groups.iter().rev() {
        if end < start + group.len() || tail.len() + head.len() >= old_body_groups.len() {
            break;
        }
        if body[end - group.len()..end] == group[..] {
            tail.push(&body[end - group.len()..end]);
            end -= group.len();
        } else {
            break;
        }
    }
    groups.extend(head);
    if start < end {
        groups.push(&body[start..end]);
    }
    groups.extend(tail.into_iter().rev());
    groups
        .iter()
        .filter(|group| !group.is_empty())
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces each blessed case's `"hex"` string in the file's text, in order, leaving the rest of
/// the file as it was.
fn rewrite_hex(text: &str, blessed: &[(String, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    for (old, new) in blessed {
        let old_literal = serde_json::to_string(old).expect("a string serializes");
        let new_literal = serde_json::to_string(new).expect("a string serializes");
        let at = rest
            .find(&old_literal)
            .ok_or_else(|| format!("cannot find {old_literal} to rewrite"))?;
        out.push_str(&rest[..at]);
        out.push_str(&new_literal);
        rest = &rest[at + old_literal.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn regroup_keeps_the_layout_of_unchanged_bytes() {
    // A BID whose price changed from 4500 to 4600: the header keeps its fields, the ids keep
    // their groups, the new price is one group.
    let old =
        "24000000 0202 01 00 4d00000000000000 11c00b0000000000 1f0c000000000000 9411000000000000";
    let new = parse_hex(
        "24000000 0202 01 00 4d00000000000000 11c00b0000000000 1f0c000000000000 f811000000000000",
    )
    .expect("hex");
    assert_eq!(regroup(old, &new), old.replace("9411", "f811"));
    // A body that grew in the middle keeps the groups before and after the change.
    let old = "1a000000 0008 01 00 0900000000000000 6c00 0200 6869";
    let new = parse_hex("1b000000 0008 01 00 0900000000000000 6c00 0300 686921").expect("hex");
    assert_eq!(
        regroup(old, &new),
        "1b000000 0008 01 00 0900000000000000 6c00 0300686921"
    );
    // Plain hex gets the header split and the body as one group.
    let new = parse_hex("14000000040001000700000000000000aabbccdd").expect("hex");
    assert_eq!(
        regroup("", &new),
        "14000000 0400 01 00 0700000000000000 aabbccdd"
    );
}

#[test]
fn rewrite_hex_replaces_only_the_blessed_strings() {
    let text = "[{\"hex\": \"aa bb\", \"x\": \"aa bb\"}, {\"hex\": \"cc\"}]";
    let blessed = [("aa bb".to_owned(), "aa cc".to_owned())];
    assert_eq!(
        rewrite_hex(text, &blessed).expect("rewrites"),
        "[{\"hex\": \"aa cc\", \"x\": \"aa bb\"}, {\"hex\": \"cc\"}]"
    );
}
