//! The attribute map (`attributes`, spec section 2): a lead's typed highlights, kept as their
//! validated canonical wire encoding.
//!
//! Keeping the bytes instead of a parsed map means decoding a `PING` allocates nothing, equality
//! and hashing are byte comparisons of the canonical form (the spec's keys are strictly sorted,
//! so one map has one encoding), and re-encoding is a copy. Reading is a walk over the bytes.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use bytes::BytesMut;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser::SerializeMap};

use super::codes::ErrorCode;
use super::error::{DecodeError, EncodeError};
use super::types::AttributeKind;
use super::wire::{Reader, Writer, is_symbol};
use crate::limits::{ATTRIBUTE_STRING_LEN_MAX, ATTRIBUTES_MAX, DECIMAL_SCALE_MAX, SYMBOL_LEN_MAX};

/// A lead's attribute map. Only constructible from validated input (the decoder or
/// [`Attributes::builder`]), so its bytes are always a valid canonical encoding.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Attributes<'a> {
    /// The attributes' wire encoding, without the leading `u16` count.
    encoding: Cow<'a, [u8]>,
    /// How many attributes `encoding` holds (at most `ATTRIBUTES_MAX`, so it fits the wire's
    /// `u16`). A full word rather than a `u16`: a narrow store followed by a wide load of the
    /// struct stalled store forwarding in `PING` decoding.
    count: u64,
}

/// One attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeValue<'s> {
    Integer(i64),
    /// `mantissa × 10^-scale`, scale 0..=9.
    Decimal {
        mantissa: i64,
        scale: u8,
    },
    String(&'s str),
    Bool(bool),
    /// A symbol.
    Enum(&'s str),
}

impl AttributeValue<'_> {
    pub fn kind(&self) -> AttributeKind {
        match self {
            Self::Integer(_) => AttributeKind::Integer,
            Self::Decimal { .. } => AttributeKind::Decimal,
            Self::String(_) => AttributeKind::String,
            Self::Bool(_) => AttributeKind::Bool,
            Self::Enum(_) => AttributeKind::Enum,
        }
    }
}

/// One entry of an attribute map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'s> {
    pub key: &'s str,
    pub value: AttributeValue<'s>,
}

impl<'a> Attributes<'a> {
    /// A map with no attributes.
    pub const fn new() -> Self {
        Self {
            encoding: Cow::Borrowed(&[]),
            count: 0,
        }
    }

    /// A builder that sorts and validates.
    pub fn builder() -> AttributesBuilder {
        AttributesBuilder::default()
    }

    pub fn len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The attributes in key order.
    pub fn iter(&self) -> AttributesIter<'_> {
        AttributesIter {
            reader: Reader::new(&self.encoding),
            left: self.count,
        }
    }

    /// The value of `key`, if the map has it. Stops at the first larger key: keys are sorted.
    pub fn get(&self, key: &str) -> Option<AttributeValue<'_>> {
        for attribute in self.iter() {
            match attribute.key.as_bytes().cmp(key.as_bytes()) {
                Ordering::Less => continue,
                Ordering::Equal => return Some(attribute.value),
                Ordering::Greater => return None,
            }
        }
        None
    }

    /// The canonical wire encoding of the entries (without the count), e.g. for hashing.
    pub fn as_wire_bytes(&self) -> &[u8] {
        &self.encoding
    }

    pub fn into_owned(self) -> Attributes<'static> {
        Attributes {
            encoding: Cow::Owned(self.encoding.into_owned()),
            count: self.count,
        }
    }

    /// Reads and validates an attribute map, borrowing its bytes. Checks, in wire order: the
    /// count (`LIST_TOO_LONG`); per attribute the key as a symbol, then its order against the
    /// previous key (`DUPLICATE_ATTRIBUTE`, `ATTRIBUTES_UNSORTED`), the kind
    /// (`UNKNOWN_ENUM_VALUE`) and the value.
    #[inline]
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = r.count(ATTRIBUTES_MAX, "attributes")?;
        let start = r.rest();
        // Symbols are never empty, so the empty slice sorts before any first key.
        let mut previous: &[u8] = &[];
        for _ in 0..count {
            let key_remaining = r.remaining();
            let key = r.symbol_bytes("key")?;
            match compare_keys(key, previous) {
                Ordering::Greater => {}
                Ordering::Equal => {
                    return Err(r.error_at(ErrorCode::DUPLICATE_ATTRIBUTE, "key", key_remaining));
                }
                Ordering::Less => {
                    return Err(r.error_at(ErrorCode::ATTRIBUTES_UNSORTED, "key", key_remaining));
                }
            }
            previous = key;
            // Values are validated here and read again by `iter`, so none is kept.
            match r.enumeration::<AttributeKind>("kind")? {
                AttributeKind::Integer => {
                    r.i64("value")?;
                }
                AttributeKind::Decimal => {
                    r.i64("mantissa")?;
                    decode_scale(r)?;
                }
                AttributeKind::String => r.skip_string(ATTRIBUTE_STRING_LEN_MAX, "value")?,
                AttributeKind::Bool => {
                    r.bool("value")?;
                }
                AttributeKind::Enum => {
                    r.symbol_bytes("value")?;
                }
            }
        }
        Ok(Self {
            encoding: Cow::Borrowed(r.consumed_since(start)),
            count: u64::from(count),
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) {
        // Never above ATTRIBUTES_MAX, which fits a u16.
        w.u16(u16::try_from(self.count).unwrap_or(u16::MAX));
        w.bytes(&self.encoding);
    }
}

/// Byte order of two keys. Written out because keys are at most 32 bytes: an inline loop beats
/// a call to `memcmp`, which the slice `Ord` makes and which dominated `PING` decoding.
#[inline]
fn compare_keys(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// A decimal's `scale`: 0..=`DECIMAL_SCALE_MAX`, else `INVALID_FIELD`.
#[inline]
pub(crate) fn decode_scale(r: &mut Reader<'_>) -> Result<u8, DecodeError> {
    let remaining = r.remaining();
    let scale = r.u8("scale")?;
    if scale > DECIMAL_SCALE_MAX {
        return Err(r.error_at(ErrorCode::INVALID_FIELD, "scale", remaining));
    }
    Ok(scale)
}

impl fmt::Debug for Attributes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|a| (a.key, a.value)))
            .finish()
    }
}

/// Walks an [`Attributes`] encoding. The encoding was validated when the map was made, so a
/// read cannot fail; if it somehow did, iteration ends rather than panicking.
#[derive(Debug, Clone)]
pub struct AttributesIter<'s> {
    reader: Reader<'s>,
    left: u64,
}

impl<'s> AttributesIter<'s> {
    fn read(&mut self) -> Result<Attribute<'s>, DecodeError> {
        // No maxima here: the bytes passed them when the map was made.
        let r = &mut self.reader;
        let key = r.string(usize::MAX, "key")?;
        let value = match r.enumeration::<AttributeKind>("kind")? {
            AttributeKind::Integer => AttributeValue::Integer(r.i64("value")?),
            AttributeKind::Decimal => AttributeValue::Decimal {
                mantissa: r.i64("mantissa")?,
                scale: r.u8("scale")?,
            },
            AttributeKind::String => AttributeValue::String(r.string(usize::MAX, "value")?),
            AttributeKind::Bool => AttributeValue::Bool(r.bool("value")?),
            AttributeKind::Enum => AttributeValue::Enum(r.string(usize::MAX, "value")?),
        };
        Ok(Attribute { key, value })
    }
}

impl<'s> Iterator for AttributesIter<'s> {
    type Item = Attribute<'s>;

    fn next(&mut self) -> Option<Attribute<'s>> {
        self.left = self.left.checked_sub(1)?;
        match self.read() {
            Ok(attribute) => Some(attribute),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, usize::try_from(self.left).ok())
    }
}

impl<'s> IntoIterator for &'s Attributes<'_> {
    type Item = Attribute<'s>;
    type IntoIter = AttributesIter<'s>;

    fn into_iter(self) -> AttributesIter<'s> {
        self.iter()
    }
}

/// An attribute value the builder owns.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum OwnedValue {
    Integer(i64),
    Decimal { mantissa: i64, scale: u8 },
    String(String),
    Bool(bool),
    Enum(String),
}

/// Builds an [`Attributes`] map in any order; [`build`](Self::build) sorts by key and checks
/// every rule the decoder checks.
#[derive(Debug, Clone, Default)]
pub struct AttributesBuilder {
    entries: Vec<(String, OwnedValue)>,
}

impl AttributesBuilder {
    fn push(mut self, key: impl Into<String>, value: OwnedValue) -> Self {
        self.entries.push((key.into(), value));
        self
    }

    pub fn integer(self, key: impl Into<String>, value: i64) -> Self {
        self.push(key, OwnedValue::Integer(value))
    }

    /// `mantissa × 10^-scale`.
    pub fn decimal(self, key: impl Into<String>, mantissa: i64, scale: u8) -> Self {
        self.push(key, OwnedValue::Decimal { mantissa, scale })
    }

    pub fn string(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.push(key, OwnedValue::String(value.into()))
    }

    pub fn bool(self, key: impl Into<String>, value: bool) -> Self {
        self.push(key, OwnedValue::Bool(value))
    }

    /// An enum value: a symbol.
    pub fn enum_value(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.push(key, OwnedValue::Enum(value.into()))
    }

    /// Sorts by key and encodes. Fails with the code a receiver would answer: `LIST_TOO_LONG`
    /// for more than `ATTRIBUTES_MAX`, `STRING_TOO_LONG` or `INVALID_FIELD` for a bad key, enum
    /// value, string or scale, `DUPLICATE_ATTRIBUTE` for a repeated key.
    pub fn build(mut self) -> Result<Attributes<'static>, EncodeError> {
        let count = match u64::try_from(self.entries.len()) {
            Ok(count) if self.entries.len() <= ATTRIBUTES_MAX => count,
            _ => return Err(EncodeError::new(ErrorCode::LIST_TOO_LONG, "attributes")),
        };
        self.entries
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut out = BytesMut::new();
        let mut w = Writer::new(&mut out);
        let mut previous: Option<&str> = None;
        for (key, value) in &self.entries {
            check_symbol(key, "key")?;
            if previous == Some(key.as_str()) {
                return Err(EncodeError::new(ErrorCode::DUPLICATE_ATTRIBUTE, "key"));
            }
            previous = Some(key);
            w.string(key, SYMBOL_LEN_MAX, "key")?;
            match value {
                OwnedValue::Integer(value) => {
                    w.enumeration(AttributeKind::Integer);
                    w.i64(*value);
                }
                OwnedValue::Decimal { mantissa, scale } => {
                    if *scale > DECIMAL_SCALE_MAX {
                        return Err(EncodeError::new(ErrorCode::INVALID_FIELD, "scale"));
                    }
                    w.enumeration(AttributeKind::Decimal);
                    w.i64(*mantissa);
                    w.u8(*scale);
                }
                OwnedValue::String(value) => {
                    w.enumeration(AttributeKind::String);
                    w.string(value, ATTRIBUTE_STRING_LEN_MAX, "value")?;
                }
                OwnedValue::Bool(value) => {
                    w.enumeration(AttributeKind::Bool);
                    w.bool(*value);
                }
                OwnedValue::Enum(value) => {
                    check_symbol(value, "value")?;
                    w.enumeration(AttributeKind::Enum);
                    w.string(value, SYMBOL_LEN_MAX, "value")?;
                }
            }
        }
        Ok(Attributes {
            encoding: Cow::Owned(out.to_vec()),
            count,
        })
    }
}

/// The checks of a `symbol` on text that is already UTF-8.
fn check_symbol(text: &str, field: &'static str) -> Result<(), EncodeError> {
    if text.len() > SYMBOL_LEN_MAX {
        return Err(EncodeError::new(ErrorCode::STRING_TOO_LONG, field));
    }
    if !is_symbol(text.as_bytes()) {
        return Err(EncodeError::new(ErrorCode::INVALID_FIELD, field));
    }
    Ok(())
}

/// JSON: an object in key order, each value externally tagged by kind, e.g.
/// `{"credit_score": {"integer": 720}, "roof": {"enum": "asphalt"}}`.
impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for attribute in self {
            map.serialize_entry(attribute.key, &attribute.value)?;
        }
        map.end()
    }
}

/// Goes through the builder, so a deserialized map is always one the encoder accepts.
impl<'de, 'a> Deserialize<'de> for Attributes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Attributes<'static>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute map: an object of {kind: value} objects")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut builder = AttributesBuilder::default();
                while let Some((key, value)) = map.next_entry::<String, OwnedValue>()? {
                    // A map longer than any valid one is refused before it grows further.
                    if builder.entries.len() > ATTRIBUTES_MAX {
                        return Err(de::Error::custom("more attributes than ATTRIBUTES_MAX"));
                    }
                    builder = builder.push(key, value);
                }
                builder.build().map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> Attributes<'static> {
        Attributes::builder()
            .integer("monthly_bill", 180)
            .decimal("roof_age", 125, 1)
            .string("utility", "Xcel Energy")
            .bool("homeowner", true)
            .enum_value("roof", "asphalt")
            .integer("credit_score", 720)
            .build()
            .unwrap()
    }

    fn decode(count: u16, entries: &[u8]) -> Result<Attributes<'_>, DecodeError> {
        let mut bytes = count.to_le_bytes().to_vec();
        bytes.extend_from_slice(entries);
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let mut r = Reader::new(bytes);
        let attributes = Attributes::decode(&mut r)?;
        r.finish()?;
        Ok(attributes)
    }

    #[test]
    fn builder_sorts_and_iterates() {
        let attributes = sample();
        let keys: Vec<&str> = attributes.iter().map(|a| a.key).collect();
        assert_eq!(
            keys,
            [
                "credit_score",
                "homeowner",
                "monthly_bill",
                "roof",
                "roof_age",
                "utility"
            ]
        );
        assert_eq!(attributes.len(), 6);
        assert_eq!(
            attributes.get("credit_score"),
            Some(AttributeValue::Integer(720))
        );
        assert_eq!(
            attributes.get("roof_age"),
            Some(AttributeValue::Decimal {
                mantissa: 125,
                scale: 1
            })
        );
        assert_eq!(
            attributes.get("utility"),
            Some(AttributeValue::String("Xcel Energy"))
        );
        assert_eq!(
            attributes.get("roof"),
            Some(AttributeValue::Enum("asphalt"))
        );
        assert_eq!(
            attributes.get("homeowner"),
            Some(AttributeValue::Bool(true))
        );
        assert_eq!(attributes.get("zzz"), None);
        assert_eq!(attributes.get("a"), None);
    }

    #[test]
    fn builder_refuses_what_the_decoder_refuses() {
        let code = |b: AttributesBuilder| b.build().unwrap_err().code;
        assert_eq!(
            code(Attributes::builder().integer("a", 1).integer("a", 2)),
            ErrorCode::DUPLICATE_ATTRIBUTE
        );
        assert_eq!(
            code(Attributes::builder().integer("A", 1)),
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            code(Attributes::builder().decimal("a", 1, 10)),
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            code(Attributes::builder().enum_value("a", "X")),
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            code(Attributes::builder().string("a", "x".repeat(257))),
            ErrorCode::STRING_TOO_LONG
        );
        let many = (0..65).fold(Attributes::builder(), |b, i| b.integer(format!("k{i}"), i));
        assert_eq!(code(many), ErrorCode::LIST_TOO_LONG);
    }

    #[test]
    fn decode_round_trips_the_canonical_bytes() {
        let attributes = sample();
        let mut out = BytesMut::new();
        attributes.encode(&mut Writer::new(&mut out));
        let mut r = Reader::new(&out);
        let decoded = Attributes::decode(&mut r).unwrap();
        r.finish().unwrap();
        assert_eq!(decoded, attributes);
        assert!(matches!(decoded.encoding, Cow::Borrowed(_)));
    }

    #[test]
    fn decode_error_codes() {
        // key "b" integer 1, then key "a": unsorted.
        let b1 = [1, 0, b'b', 1, 1, 0, 0, 0, 0, 0, 0, 0];
        let a1 = [1, 0, b'a', 1, 1, 0, 0, 0, 0, 0, 0, 0];
        let entries = [b1, a1].concat();
        let error = decode(2, &entries).unwrap_err();
        assert_eq!(
            (error.code, error.field, error.offset),
            (ErrorCode::ATTRIBUTES_UNSORTED, "key", 14)
        );
        let entries = [b1, b1].concat();
        assert_eq!(
            decode(2, &entries).unwrap_err().code,
            ErrorCode::DUPLICATE_ATTRIBUTE
        );
        assert_eq!(decode(65, &[]).unwrap_err().code, ErrorCode::LIST_TOO_LONG);
        assert_eq!(
            decode(1, &[1, 0, b'a', 6]).unwrap_err().code,
            ErrorCode::UNKNOWN_ENUM_VALUE
        );
        let scale = [1, 0, b'a', 2, 0, 0, 0, 0, 0, 0, 0, 0, 10];
        assert_eq!(
            decode(1, &scale).unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            decode(1, &[1, 0, b'a', 4, 2]).unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            decode(1, &[1, 0, b'a', 5, 1, 0, b'A']).unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            decode(1, &[1, 0, b'a', 3, 1, 1]).unwrap_err().code,
            ErrorCode::STRING_TOO_LONG
        );
        assert_eq!(
            decode(1, &[1, 0, b'a', 1, 0]).unwrap_err().code,
            ErrorCode::TRUNCATED
        );
        assert_eq!(decode(0, &[]).unwrap(), Attributes::new());
    }

    #[test]
    fn json_shape() {
        let json = serde_json_string(&sample());
        assert_eq!(
            json,
            r#"{"credit_score":{"integer":720},"homeowner":{"bool":true},"monthly_bill":{"integer":180},"roof":{"enum":"asphalt"},"roof_age":{"decimal":{"mantissa":125,"scale":1}},"utility":{"string":"Xcel Energy"}}"#
        );
        let back: Attributes<'static> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sample());
        assert!(serde_json::from_str::<Attributes<'static>>(r#"{"A":{"integer":1}}"#).is_err());
        assert!(
            serde_json::from_str::<Attributes<'static>>(r#"{"a":{"integer":1},"a":{"integer":2}}"#)
                .is_err()
        );
    }

    fn serde_json_string(attributes: &Attributes<'_>) -> String {
        serde_json::to_string(attributes).unwrap()
    }
}
