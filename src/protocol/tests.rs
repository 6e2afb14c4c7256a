//! The codec's tests across modules: hand-assembled frames, one test per error code and per
//! precedence rule, property round trips for every message type, robustness against arbitrary
//! and mutated bytes, allocation counts and JSON round trips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;

use bytes::BytesMut;
use proptest::prelude::*;

use super::arbitrary;
use super::*;
use crate::limits::{FRAME_LENGTH_MAX, MONEY_MAX};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A frame from raw parts, with a correct prefix.
fn raw_frame(
    message_type: u16,
    version: u8,
    flags: u8,
    correlation_id: u64,
    body: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&u32::try_from(12 + body.len()).unwrap().to_le_bytes());
    frame.extend_from_slice(&message_type.to_le_bytes());
    frame.push(version);
    frame.push(flags);
    frame.extend_from_slice(&correlation_id.to_le_bytes());
    frame.extend_from_slice(body);
    frame
}

fn v1(message_type: MessageType, body: &[u8]) -> Vec<u8> {
    raw_frame(message_type.as_u16(), 1, 0, 77, body)
}

fn encode(message: &Message<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(77, message, &mut out).unwrap();
    out.to_vec()
}

fn error_of(frame: &[u8]) -> DecodeError {
    decode_frame(frame).expect_err("the frame should not decode")
}

fn string(text: &[u8]) -> Vec<u8> {
    let mut bytes = u16::try_from(text.len()).unwrap().to_le_bytes().to_vec();
    bytes.extend_from_slice(text);
    bytes
}

/// The typical ping of the performance target: solar, US 80331, six attributes, both hashes,
/// either with 3 buyers, 150 ms.
pub(crate) fn typical_ping() -> Message<'static> {
    let attributes = Attributes::builder()
        .integer("credit_score", 720)
        .decimal("monthly_bill", 14550, 2)
        .bool("homeowner", true)
        .enum_value("roof_type", "asphalt")
        .string("utility", "Xcel Energy")
        .enum_value("shade", "partial")
        .build()
        .unwrap();
    Message::Ping(Ping {
        client_token: 123_456,
        lead: LeadView {
            vertical: Symbol::new("solar").unwrap(),
            country: Country::new("US").unwrap(),
            postal_code: PostalCode::new("80331").unwrap(),
            attributes,
        },
        phone_hash: Some(Hash32([0x11; 32])),
        email_hash: Some(Hash32([0x22; 32])),
        sale_mode: PingSaleMode::Either,
        shared_buyers_max: 3,
        timeout_ms: 150,
    })
}

/// The body of a ping with one attribute, byte by byte from the spec's tables, so the layout is
/// checked independently of the encoder. Offsets in the comments count from the frame start.
fn hand_ping_body() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&9u64.to_le_bytes()); // 16 client_token
    body.extend_from_slice(&string(b"solar")); // 24 vertical
    body.extend_from_slice(b"US"); // 31 country
    body.extend_from_slice(&string(b"80331")); // 33 postal_code
    body.extend_from_slice(&1u16.to_le_bytes()); // 40 attributes count
    body.extend_from_slice(&string(b"credit_score")); // 42 key
    body.push(1); // 56 kind integer
    body.extend_from_slice(&720i64.to_le_bytes()); // 57 value
    body.push(1); // 65 phone_hash present
    body.extend_from_slice(&[0xAA; 32]); // 66
    body.push(0); // 98 email_hash absent
    body.push(2); // 99 sale_mode shared
    body.push(4); // 100 shared_buyers_max
    body.extend_from_slice(&150u32.to_le_bytes()); // 101 timeout_ms
    body
}

// ---------------------------------------------------------------------------------------------
// Hand-assembled frames

#[test]
fn decodes_a_hand_assembled_heartbeat() {
    let frame = v1(MessageType::Heartbeat, &42u64.to_le_bytes());
    assert_eq!(frame.len(), 24);
    assert_eq!(&frame[..8], &[20, 0, 0, 0, 4, 0, 1, 0]);
    assert_eq!(check_frame(&frame, FRAME_LENGTH_MAX), Ok(Some(24)));
    let decoded = decode_frame(&frame).unwrap();
    assert_eq!(
        decoded.header,
        Header {
            message_type: MessageType::Heartbeat,
            version: 1,
            flags: 0,
            correlation_id: 77
        }
    );
    assert_eq!(
        decoded.message,
        Message::Heartbeat(Heartbeat { sent_at: 42 })
    );
    assert_eq!(encode(&decoded.message), frame);
}

#[test]
fn decodes_a_hand_assembled_ping_and_encodes_it_back() {
    let frame = v1(MessageType::Ping, &hand_ping_body());
    let Message::Ping(ping) = decode_frame(&frame).unwrap().message else {
        panic!("not a ping")
    };
    assert_eq!(ping.client_token, 9);
    assert_eq!(ping.lead.vertical.as_str(), "solar");
    assert_eq!(ping.lead.country.as_str(), "US");
    assert_eq!(ping.lead.postal_code.as_str(), "80331");
    assert_eq!(
        ping.lead.attributes.get("credit_score"),
        Some(AttributeValue::Integer(720))
    );
    assert_eq!(ping.phone_hash, Some(Hash32([0xAA; 32])));
    assert_eq!(ping.email_hash, None);
    assert_eq!(
        (ping.sale_mode, ping.shared_buyers_max, ping.timeout_ms),
        (PingSaleMode::Shared, 4, 150)
    );
    assert_eq!(encode(&Message::Ping(ping)), frame);
}

#[test]
fn check_frame_waits_for_whole_frames() {
    let frame = v1(MessageType::Heartbeat, &42u64.to_le_bytes());
    for end in 0..frame.len() {
        assert_eq!(
            check_frame(&frame[..end], FRAME_LENGTH_MAX),
            Ok(None),
            "prefix of {end} bytes"
        );
    }
    let mut two = frame.clone();
    two.extend_from_slice(&frame);
    assert_eq!(check_frame(&two, FRAME_LENGTH_MAX), Ok(Some(24)));
    // The negotiated maximum applies, not only the absolute one.
    assert_eq!(
        check_frame(&frame, 19).unwrap_err().code,
        ErrorCode::FRAME_TOO_LARGE
    );
    assert_eq!(check_frame(&frame, 20), Ok(Some(24)));
}

// ---------------------------------------------------------------------------------------------
// One test per error code, 100..=114

#[test]
fn code_100_frame_too_large_from_the_prefix_alone() {
    let prefix = (FRAME_LENGTH_MAX + 1).to_le_bytes();
    let error = check_frame(&prefix, FRAME_LENGTH_MAX).unwrap_err();
    assert_eq!(
        error,
        DecodeError {
            code: ErrorCode::FRAME_TOO_LARGE,
            correlation_id: None,
            field: "frame_length",
            offset: 0
        }
    );
    assert!(error.is_fatal());
    assert_eq!(
        check_frame(&FRAME_LENGTH_MAX.to_le_bytes(), FRAME_LENGTH_MAX),
        Ok(None)
    );
    assert_eq!(error_of(&prefix).code, ErrorCode::FRAME_TOO_LARGE);
}

#[test]
fn code_101_frame_too_short() {
    for length in 0..12u32 {
        let error = check_frame(&length.to_le_bytes(), FRAME_LENGTH_MAX).unwrap_err();
        assert_eq!(
            (error.code, error.correlation_id),
            (ErrorCode::FRAME_TOO_SHORT, None)
        );
        assert!(error.is_fatal());
    }
    assert_eq!(
        check_frame(&12u32.to_le_bytes(), FRAME_LENGTH_MAX),
        Ok(None)
    );
    assert_eq!(
        error_of(&11u32.to_le_bytes()).code,
        ErrorCode::FRAME_TOO_SHORT
    );
}

#[test]
fn code_102_unknown_message_type() {
    for message_type in [0x0000, 0x0009, 0x0106, 0x0208, 0x030F, 0xFFFF] {
        let error = error_of(&raw_frame(message_type, 1, 0, 5, &[]));
        assert_eq!(
            error,
            DecodeError {
                code: ErrorCode::UNKNOWN_MESSAGE_TYPE,
                correlation_id: Some(5),
                field: "message_type",
                offset: 4
            }
        );
    }
}

#[test]
fn code_103_unsupported_version() {
    for version in [0, 2, 255] {
        let error = error_of(&raw_frame(0x0004, version, 0, 5, &7u64.to_le_bytes()));
        assert_eq!(
            error,
            DecodeError {
                code: ErrorCode::UNSUPPORTED_VERSION,
                correlation_id: Some(5),
                field: "version",
                offset: 6
            }
        );
    }
}

#[test]
fn code_104_bad_flags() {
    let error = error_of(&raw_frame(0x0004, 1, 0x80, 5, &7u64.to_le_bytes()));
    assert_eq!(
        error,
        DecodeError {
            code: ErrorCode::BAD_FLAGS,
            correlation_id: Some(5),
            field: "flags",
            offset: 7
        }
    );
}

#[test]
fn code_105_truncated() {
    // The postal code announces 5 bytes, the frame ends after 3 of them.
    let body = hand_ping_body();
    let error = error_of(&v1(MessageType::Ping, &body[..(33 - 16) + 2 + 3]));
    assert_eq!(
        error,
        DecodeError {
            code: ErrorCode::TRUNCATED,
            correlation_id: Some(77),
            field: "postal_code",
            offset: 33
        }
    );
    assert_eq!(
        error.to_string(),
        "TRUNCATED (105) in field `postal_code` at byte 33 of frame (correlation id 77)"
    );
    // Every shorter body is truncated somewhere, never something else.
    for end in 0..body.len() {
        assert_eq!(
            error_of(&v1(MessageType::Ping, &body[..end])).code,
            ErrorCode::TRUNCATED,
            "body of {end} bytes"
        );
    }
}

#[test]
fn code_106_trailing_bytes() {
    let mut body = 42u64.to_le_bytes().to_vec();
    body.push(0);
    let error = error_of(&v1(MessageType::Heartbeat, &body));
    assert_eq!(
        error,
        DecodeError {
            code: ErrorCode::TRAILING_BYTES,
            correlation_id: Some(77),
            field: "body",
            offset: 24
        }
    );
    assert_eq!(
        error_of(&v1(MessageType::GoodbyeAck, &[0])).code,
        ErrorCode::TRAILING_BYTES
    );
}

#[test]
fn code_107_invalid_utf8() {
    let mut body = 900u16.to_le_bytes().to_vec();
    body.extend_from_slice(&string(&[b'o', b'k', 0xC3, 0x28]));
    let error = error_of(&v1(MessageType::Error, &body));
    assert_eq!(
        (error.code, error.field, error.offset),
        (ErrorCode::INVALID_UTF8, "message", 18)
    );
    // In a symbol, invalid UTF-8 is 107 (a str check) and valid non-ASCII is 111 (a symbol check).
    let mut body = hand_ping_body();
    body[26 - 16] = 0xFF; // first byte of "solar"
    assert_eq!(
        error_of(&v1(MessageType::Ping, &body)).code,
        ErrorCode::INVALID_UTF8
    );
}

#[test]
fn code_108_string_too_long() {
    let mut body = vec![1];
    body.extend_from_slice(&5u64.to_le_bytes());
    body.extend_from_slice(&129u16.to_le_bytes()); // secret: str(128)
    let error = error_of(&v1(MessageType::Login, &body));
    assert_eq!(
        (error.code, error.field, error.offset),
        (ErrorCode::STRING_TOO_LONG, "secret", 25)
    );
}

#[test]
fn code_109_unknown_enum_value() {
    let mut body = hand_ping_body();
    body[99 - 16] = 4; // sale_mode
    let error = error_of(&v1(MessageType::Ping, &body));
    assert_eq!(
        (error.code, error.field, error.offset),
        (ErrorCode::UNKNOWN_ENUM_VALUE, "sale_mode", 99)
    );
    let mut body = hand_ping_body();
    body[56 - 16] = 6; // attribute kind
    assert_eq!(
        error_of(&v1(MessageType::Ping, &body)).code,
        ErrorCode::UNKNOWN_ENUM_VALUE
    );
    // An ip family other than 4 or 6.
    let consent = [
        string(b"c"),
        string(b"v"),
        0u64.to_le_bytes().to_vec(),
        vec![5],
    ]
    .concat();
    let contact: Vec<u8> = (0..7).flat_map(|_| string(b"")).collect();
    let body = [1u64.to_le_bytes().to_vec(), contact, consent].concat();
    let error = error_of(&v1(MessageType::Post, &body));
    assert_eq!(
        (error.code, error.field),
        (ErrorCode::UNKNOWN_ENUM_VALUE, "ip")
    );
    // PING_RESULT outcome 3.
    let body = [1u64.to_le_bytes().to_vec(), vec![3]].concat();
    assert_eq!(
        error_of(&v1(MessageType::PingResult, &body)).field,
        "outcome"
    );
}

#[test]
fn code_110_list_too_long() {
    let mut body = hand_ping_body();
    body[40 - 16..42 - 16].copy_from_slice(&65u16.to_le_bytes());
    let error = error_of(&v1(MessageType::Ping, &body));
    assert_eq!(
        (error.code, error.field, error.offset),
        (ErrorCode::LIST_TOO_LONG, "attributes", 40)
    );
    // payouts: list<money>(8).
    let body = [
        1u64.to_le_bytes().to_vec(),
        vec![1, 1],
        9u16.to_le_bytes().to_vec(),
    ]
    .concat();
    assert_eq!(
        error_of(&v1(MessageType::PingResult, &body)).code,
        ErrorCode::LIST_TOO_LONG
    );
}

#[test]
fn code_111_invalid_field() {
    let cases: [(usize, u8, &str); 5] = [
        (65, 2, "phone_hash"),         // option tag 2
        (100, 0, "shared_buyers_max"), // shared with 0 buyers
        (100, 9, "shared_buyers_max"), // above SHARED_BUYERS_MAX
        (31, b'u', "country"),         // lower-case country
        (35, b'a', "postal_code"),     // lower-case postal code
    ];
    for (offset, value, field) in cases {
        let mut body = hand_ping_body();
        body[offset - 16] = value;
        let error = error_of(&v1(MessageType::Ping, &body));
        assert_eq!(
            (error.code, error.field),
            (ErrorCode::INVALID_FIELD, field),
            "byte {offset} = {value}"
        );
    }
    // Exclusive with a non-zero shared_buyers_max.
    let mut body = hand_ping_body();
    body[99 - 16] = 1;
    assert_eq!(
        error_of(&v1(MessageType::Ping, &body)).field,
        "shared_buyers_max"
    );
    // A bool that is neither 0 nor 1 (attribute of kind bool).
    let attribute = [string(b"a"), vec![4, 2]].concat();
    let mut body = hand_ping_body();
    body.splice(
        40 - 16..,
        [
            1u16.to_le_bytes().to_vec(),
            attribute,
            vec![0, 0, 1, 0],
            0u32.to_le_bytes().to_vec(),
        ]
        .concat(),
    );
    assert_eq!(
        error_of(&v1(MessageType::Ping, &body)).code,
        ErrorCode::INVALID_FIELD
    );
    // An empty payouts list, checked at the count.
    let body = [
        1u64.to_le_bytes().to_vec(),
        vec![1, 1],
        0u16.to_le_bytes().to_vec(),
    ]
    .concat();
    let error = error_of(&v1(MessageType::PingResult, &body));
    assert_eq!(
        (error.code, error.field, error.offset),
        (ErrorCode::INVALID_FIELD, "payouts", 26)
    );
    // A symbol with an upper-case letter.
    let error = error_of(&v1(MessageType::VerticalRemove, &string(b"Solar")));
    assert_eq!(
        (error.code, error.field),
        (ErrorCode::INVALID_FIELD, "vertical")
    );
}

#[test]
fn code_112_duplicate_attribute() {
    let attribute = [string(b"a"), vec![4, 1]].concat();
    let mut body = hand_ping_body();
    body.splice(
        40 - 16..65 - 16,
        [2u16.to_le_bytes().to_vec(), attribute.clone(), attribute].concat(),
    );
    let error = error_of(&v1(MessageType::Ping, &body));
    assert_eq!(
        (error.code, error.field, error.offset),
        (ErrorCode::DUPLICATE_ATTRIBUTE, "key", 47)
    );
}

#[test]
fn code_113_money_out_of_range() {
    let body = [
        1u64.to_le_bytes(),
        2u64.to_le_bytes(),
        (MONEY_MAX + 1).to_le_bytes(),
    ]
    .concat();
    let error = error_of(&v1(MessageType::Bid, &body));
    assert_eq!(
        (error.code, error.field, error.offset),
        (ErrorCode::MONEY_OUT_OF_RANGE, "price", 32)
    );
    let body = [
        1u64.to_le_bytes(),
        2u64.to_le_bytes(),
        MONEY_MAX.to_le_bytes(),
    ]
    .concat();
    assert!(decode_frame(&v1(MessageType::Bid, &body)).is_ok());
}

#[test]
fn code_114_attributes_unsorted() {
    let b = [string(b"b"), vec![4, 1]].concat();
    let a = [string(b"a"), vec![4, 1]].concat();
    let mut body = hand_ping_body();
    body.splice(
        40 - 16..65 - 16,
        [2u16.to_le_bytes().to_vec(), b, a].concat(),
    );
    let error = error_of(&v1(MessageType::Ping, &body));
    assert_eq!(
        (error.code, error.field, error.offset),
        (ErrorCode::ATTRIBUTES_UNSORTED, "key", 47)
    );
}

// ---------------------------------------------------------------------------------------------
// Precedence

#[test]
fn header_checks_run_in_the_spec_order() {
    // Bad version, unknown type and bad flags at once: the version decides.
    assert_eq!(
        error_of(&raw_frame(0x0999, 9, 1, 5, &[])).code,
        ErrorCode::UNSUPPORTED_VERSION
    );
    // Unknown type and bad flags: the type decides.
    assert_eq!(
        error_of(&raw_frame(0x0999, 1, 1, 5, &[])).code,
        ErrorCode::UNKNOWN_MESSAGE_TYPE
    );
    // Bad flags and a broken body: the flags decide.
    assert_eq!(
        error_of(&raw_frame(0x0004, 1, 1, 5, &[1])).code,
        ErrorCode::BAD_FLAGS
    );
}

#[test]
fn within_a_string_length_max_comes_before_truncation_before_utf8() {
    // 300-byte length in a 4-byte body: too long, although also truncated.
    let body = [900u16.to_le_bytes().to_vec(), 300u16.to_le_bytes().to_vec()].concat();
    assert_eq!(
        error_of(&v1(MessageType::Error, &body)).code,
        ErrorCode::STRING_TOO_LONG
    );
    // Truncated invalid UTF-8: truncated.
    let body = [
        900u16.to_le_bytes().to_vec(),
        3u16.to_le_bytes().to_vec(),
        vec![0xFF],
    ]
    .concat();
    assert_eq!(
        error_of(&v1(MessageType::Error, &body)).code,
        ErrorCode::TRUNCATED
    );
}

#[test]
fn a_list_count_is_checked_before_its_elements() {
    // Count 65,535 in a 30-byte frame: LIST_TOO_LONG at once, nothing reserved.
    let body = [1u64.to_le_bytes().to_vec(), vec![0xFF, 0xFF], vec![0; 4]].concat();
    assert_eq!(
        error_of(&v1(MessageType::Trace, &body)).code,
        ErrorCode::TRUNCATED
    );
    let body = [
        0u64.to_le_bytes().to_vec(),
        0u64.to_le_bytes().to_vec(),
        vec![0xFF, 0xFF],
    ]
    .concat();
    let frame = v1(MessageType::Trace, &body);
    assert!(frame.len() <= 34);
    assert_eq!(error_of(&frame).code, ErrorCode::LIST_TOO_LONG);
    // A count within the maximum that the frame cannot hold: TRUNCATED, and the capacity
    // reserved is bounded by the bytes present (see Reader::capacity).
    let body = [
        0u64.to_le_bytes().to_vec(),
        0u64.to_le_bytes().to_vec(),
        1024u16.to_le_bytes().to_vec(),
    ]
    .concat();
    assert_eq!(
        error_of(&v1(MessageType::Trace, &body)).code,
        ErrorCode::TRUNCATED
    );
}

#[test]
fn correlation_id_is_known_exactly_when_the_header_is() {
    assert_eq!(error_of(&[20, 0, 0, 0, 4, 0, 1]).correlation_id, None);
    assert_eq!(
        error_of(&raw_frame(0x0004, 1, 0, 99, &[1])).correlation_id,
        Some(99)
    );
}

#[test]
fn a_slice_that_is_not_exactly_one_frame_is_refused() {
    let mut frame = v1(MessageType::Heartbeat, &42u64.to_le_bytes());
    frame.push(0);
    assert_eq!(error_of(&frame).code, ErrorCode::TRAILING_BYTES);
    frame.truncate(22);
    assert_eq!(error_of(&frame).code, ErrorCode::TRUNCATED);
}

// ---------------------------------------------------------------------------------------------
// Encoder validation

#[test]
fn the_encoder_refuses_what_a_decoder_refuses_and_leaves_out_unchanged() {
    let mut out = BytesMut::from(&b"keep"[..]);
    let cases: Vec<(Message<'static>, ErrorCode, &str)> = vec![
        (
            Message::Bid(Bid {
                auction_id: 1,
                campaign_id: 1,
                price: MONEY_MAX + 1,
            }),
            ErrorCode::MONEY_OUT_OF_RANGE,
            "price",
        ),
        (
            Message::Error(Error {
                code: ErrorCode::INTERNAL_ERROR,
                message: Cow::Owned("x".repeat(257)),
            }),
            ErrorCode::STRING_TOO_LONG,
            "message",
        ),
        (
            Message::PingResult(PingResult {
                ping_id: 1,
                outcome: PingOutcome::Offer {
                    sale_mode: SaleMode::Shared,
                    payouts: Cow::Borrowed(&[]),
                    post_within_ms: 1,
                },
            }),
            ErrorCode::INVALID_FIELD,
            "payouts",
        ),
        (
            Message::PingResult(PingResult {
                ping_id: 1,
                outcome: PingOutcome::Offer {
                    sale_mode: SaleMode::Shared,
                    payouts: Cow::Borrowed(&[1; 9]),
                    post_within_ms: 1,
                },
            }),
            ErrorCode::LIST_TOO_LONG,
            "payouts",
        ),
        (
            {
                let Message::Ping(mut ping) = typical_ping() else {
                    unreachable!()
                };
                ping.sale_mode = PingSaleMode::Exclusive;
                Message::Ping(ping)
            },
            ErrorCode::INVALID_FIELD,
            "shared_buyers_max",
        ),
        (
            Message::Stats(Stats {
                uptime_ms: 0,
                counters: vec![
                    Counter {
                        name: Cow::Borrowed(""),
                        value: 0
                    };
                    257
                ],
                latencies: vec![],
            }),
            ErrorCode::LIST_TOO_LONG,
            "counters",
        ),
    ];
    for (message, code, field) in cases {
        let error = encode_frame(1, &message, &mut out).unwrap_err();
        assert_eq!((error.code, error.field), (code, field), "{message:?}");
        assert_eq!(&out[..], b"keep");
    }
}

#[test]
fn the_encoder_refuses_frames_above_the_limit() {
    let rule = TerritoryRule {
        effect: Effect::Include,
        rule: TerritoryArea::Postal {
            country: Country::new("US").unwrap(),
            postal_code: PostalCode::new("A".repeat(16)).unwrap(),
        },
    };
    let campaign = Campaign {
        campaign_id: 1,
        buyer_id: 1,
        name: Cow::Borrowed("big"),
        status: Status::Active,
        vertical: Symbol::new("solar").unwrap(),
        role: CampaignRole::Primary,
        territory: vec![rule; crate::limits::TERRITORY_RULES_MAX],
        filters: vec![],
        schedule: vec![],
        caps: Caps::default(),
        sale_modes: SaleModes::BOTH,
        pricing: Pricing::Fixed {
            exclusive_price: 1,
            shared_price: 1,
        },
        tier: 0,
        weight: 1,
        duplicate_lookback_s: 0,
    };
    let mut out = BytesMut::new();
    let message = Message::CampaignPut(CampaignPut {
        mode: PutMode::Upsert,
        campaign,
    });
    let error = encode_frame(1, &message, &mut out).unwrap_err();
    assert_eq!(error.code, ErrorCode::FRAME_TOO_LARGE);
    assert!(out.is_empty());
}

#[test]
fn message_types_are_complete_and_named() {
    assert_eq!(MessageType::ALL.len(), 34);
    for &message_type in MessageType::ALL {
        assert_eq!(
            MessageType::from_u16(message_type.as_u16()),
            Some(message_type)
        );
        let json = serde_json::to_string(&message_type).unwrap();
        assert_eq!(json, format!("\"{}\"", message_type.name()));
    }
    assert_eq!(MessageType::PingResult.name(), "PING_RESULT");
    let strategies: Vec<MessageType> = arbitrary::messages_by_type()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(strategies, MessageType::ALL);
}

// ---------------------------------------------------------------------------------------------
// Allocation

/// Counts allocations made on the current thread while counting is switched on, so that tests
/// running in parallel do not disturb each other's counts.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// The only unsafe code of the module: a test allocator that forwards to the system allocator
// and bumps a thread-local counter; it needs no invariant of its own.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATIONS.with(|count| count.set(0));
    COUNTING.with(|counting| counting.set(true));
    let value = f();
    COUNTING.with(|counting| counting.set(false));
    (value, ALLOCATIONS.with(Cell::get))
}

#[test]
fn hot_messages_decode_without_allocating() {
    let post = Message::Post(Post {
        ping_id: 1,
        contact: Contact {
            first_name: Cow::Borrowed("Jane"),
            phone: Cow::Borrowed("+13035550142"),
            ..Contact::default()
        },
        consent: Consent {
            certificate_id: Cow::Borrowed("cert"),
            text_version: Cow::Borrowed("v3"),
            consented_at: 1,
            ip: "203.0.113.9".parse().unwrap(),
            user_agent: Cow::Borrowed("Mozilla/5.0"),
            page_url: Cow::Borrowed("https://example.com/quote"),
        },
    });
    let hot = [
        typical_ping(),
        Message::Bid(Bid {
            auction_id: 1,
            campaign_id: 2,
            price: 3,
        }),
        Message::NoBid(NoBid {
            auction_id: 1,
            campaign_id: 2,
            reason: ErrorCode::NOT_INTERESTED,
        }),
        Message::DeliveryAck(DeliveryAck {
            delivery_seq: 1,
            lead_id: 2,
            outcome: DeliveryOutcome::Accept,
            reason: ErrorCode::NONE,
        }),
        post,
    ];
    for message in hot {
        let frame = encode(&message);
        let (decoded, allocations) =
            allocations_during(|| decode_frame(&frame).map(|frame| frame.message));
        assert_eq!(decoded.unwrap(), message);
        assert_eq!(allocations, 0, "{:?}", message.message_type());
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #[test]
    fn every_message_round_trips(message in arbitrary::message()) {
        let mut out = BytesMut::new();
        encode_frame(77, &message, &mut out).unwrap();
        let length = check_frame(&out, FRAME_LENGTH_MAX).unwrap().unwrap();
        prop_assert_eq!(length, out.len());
        let frame = decode_frame(&out).unwrap();
        prop_assert_eq!(frame.header.message_type, message.message_type());
        prop_assert_eq!(frame.header.correlation_id, 77);
        prop_assert_eq!(&frame.message, &message);
        // Canonical: re-encoding the decoded message gives the same bytes.
        let mut again = BytesMut::new();
        encode_frame(77, &frame.message, &mut again).unwrap();
        prop_assert_eq!(&again, &out);
        // into_owned survives the frame's bytes.
        let owned = frame.into_owned();
        drop(out);
        prop_assert_eq!(owned.message, message);
    }

    #[test]
    fn every_message_round_trips_through_json(message in arbitrary::message()) {
        let json = serde_json::to_string(&message).unwrap();
        let back: Message<'static> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, message);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = check_frame(&bytes, FRAME_LENGTH_MAX);
        let _ = decode_frame(&bytes);
    }

    #[test]
    fn arbitrary_bodies_under_valid_headers_never_panic(
        type_index in 0..MessageType::ALL.len(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let frame = v1(MessageType::ALL[type_index], &body);
        if let Err(error) = decode_frame(&frame) {
            prop_assert!(error.code.0 >= 105 && error.code.0 <= 114, "{}", error);
            prop_assert_eq!(error.correlation_id, Some(77));
            prop_assert!((error.offset as usize) <= frame.len());
        }
    }

    #[test]
    fn mutations_and_truncations_never_panic(
        message in arbitrary::message(),
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let frame = encode(&message);
        // One byte changed anywhere, prefix included.
        let mut mutated = frame.clone();
        mutated[position.index(frame.len())] = value;
        let _ = check_frame(&mutated, FRAME_LENGTH_MAX);
        if let Ok(decoded) = decode_frame(&mutated) {
            // Whatever decodes must encode again (the decoder accepts only valid values).
            let mut out = BytesMut::new();
            prop_assert!(encode_frame(decoded.header.correlation_id, &decoded.message, &mut out).is_ok());
        }
        // Truncated: never a whole frame for check_frame; with the prefix fixed up, an error.
        let cut = cut.index(frame.len());
        prop_assert_eq!(check_frame(&frame[..cut], FRAME_LENGTH_MAX), Ok(None));
        if cut >= 16 {
            let mut short = frame[..cut].to_vec();
            short[..4].copy_from_slice(&u32::try_from(cut - 4).unwrap().to_le_bytes());
            // A cut can still decode (e.g. a ping result cut after a whole field would not,
            // but an empty-bodied message cut at 16 bytes does), so only errors are checked.
            if let Err(error) = decode_frame(&short) {
                prop_assert!(error.code.0 >= 105 && error.code.0 <= 114, "{}", error);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

#[test]
fn json_shapes_follow_the_conventions() {
    let json = serde_json::to_value(typical_ping()).unwrap();
    assert_eq!(json["type"], "PING");
    assert_eq!(json["sale_mode"], "either");
    assert_eq!(json["lead"]["country"], "US");
    assert_eq!(
        json["lead"]["attributes"]["monthly_bill"]["decimal"]["mantissa"],
        14550
    );
    assert_eq!(json["phone_hash"], "11".repeat(32));
    let result = Message::PingResult(PingResult {
        ping_id: 5,
        outcome: PingOutcome::Offer {
            sale_mode: SaleMode::Shared,
            payouts: Cow::Borrowed(&[3150, 2800]),
            post_within_ms: 30000,
        },
    });
    assert_eq!(
        serde_json::to_string(&result).unwrap(),
        r#"{"type":"PING_RESULT","ping_id":5,"outcome":{"offer":{"sale_mode":"shared","payouts":[3150,2800],"post_within_ms":30000}}}"#
    );
    let rule = TerritoryRule {
        effect: Effect::Include,
        rule: TerritoryArea::Radius {
            country: Country::new("US").unwrap(),
            center: PostalCode::new("80331").unwrap(),
            radius_miles: 25,
        },
    };
    assert_eq!(
        serde_json::to_string(&rule).unwrap(),
        r#"{"effect":"include","rule":{"radius":{"country":"US","center":"80331","radius_miles":25}}}"#
    );
    assert_eq!(
        serde_json::to_string(&Message::GoodbyeAck(GoodbyeAck)).unwrap(),
        r#"{"type":"GOODBYE_ACK"}"#
    );
    let bytes = encode(&typical_ping());
    let frame = decode_frame(&bytes).unwrap();
    let json = serde_json::to_string(&frame).unwrap();
    let back: Frame<'static> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, frame);
}

#[test]
fn json_deserialization_validates() {
    let bad = [
        r#"{"type":"VERTICAL_REMOVE","vertical":"Solar"}"#,
        r#"{"type":"LOGIN_ACCEPTED","session_id":1,"version":1,"heartbeat_interval_ms":1,"frame_length_max":1,"in_flight_max":1,"currency":"usd","server_time":1}"#,
        r#"{"type":"BID","auction_id":1,"campaign_id":2,"price":3,"extra":4}"#,
        r#"{"type":"NOPE"}"#,
    ];
    for json in bad {
        assert!(
            serde_json::from_str::<Message<'static>>(json).is_err(),
            "{json}"
        );
    }
}

#[test]
fn login_messages_carry_version_1() {
    let login = Message::Login(Login {
        role: Role::Seller,
        principal_id: 1,
        secret: Cow::Borrowed("s3cret"),
        version_min: 1,
        version_max: 1,
        heartbeat_interval_ms: 0,
        last_delivery_seq: 0,
        client_name: Cow::Borrowed("acme-seller/2.1"),
    });
    let frame = encode(&login);
    assert_eq!(frame[6], LOGIN_VERSION);
    assert_eq!(decode_frame(&frame).unwrap().message, login);
    assert!(is_login(MessageType::LoginRejected) && !is_login(MessageType::Ping));
    assert_eq!(
        default_version(MessageType::Ping),
        crate::limits::PROTOCOL_VERSION_MAX
    );
}
