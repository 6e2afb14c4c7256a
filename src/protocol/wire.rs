//! The field encodings of spec section 2: a bounds-checked [`Reader`] over untrusted bytes and a
//! [`Writer`] that appends to a `BytesMut`.
//!
//! Every read checks the bytes are there, and every length or count is checked against its
//! maximum before anything is read, so that a lying peer costs neither a panic nor memory. The
//! reader borrows strings from the input instead of copying them.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use super::codes::ErrorCode;
use super::error::{DecodeError, EncodeError};
use crate::limits::{MONEY_MAX, POSTAL_CODE_LEN_MAX, SYMBOL_LEN_MAX};

/// A `u8` enum of the spec (version 1 has no `u16` enum): its listed values map to variants,
/// anything else is `UNKNOWN_ENUM_VALUE`.
pub trait WireEnum: Sized + Copy {
    /// The variant for a wire value, or `None` for a value this version does not define.
    fn from_wire(value: u8) -> Option<Self>;
    /// The wire value of this variant.
    fn to_wire(self) -> u8;
}

/// Reads fields in wire order from one frame. Offsets in errors count from the start of the
/// slice the reader was made from, which is the start of the frame (its length prefix). Errors
/// carry no correlation id: the frame decoder adds it, which keeps the reader a slice and a
/// length, small enough to live in registers on the hot path.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    /// The bytes not read yet. Consuming by re-slicing needs no offset arithmetic.
    rest: &'a [u8],
    /// Length of the slice the reader was made from, to turn `rest.len()` into an offset.
    len: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the first byte of `bytes` (offset 0).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            len: bytes.len(),
        }
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The bytes not read yet, without consuming them.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Offset of the next byte to read.
    #[inline]
    pub fn offset(&self) -> u32 {
        self.offset_of(self.rest.len())
    }

    /// The offset at which `remaining` bytes were left; fields remember `remaining()` at their
    /// start so that errors point at the field's first byte.
    #[inline]
    fn offset_of(&self, remaining: usize) -> u32 {
        u32::try_from(self.len.saturating_sub(remaining)).unwrap_or(u32::MAX)
    }

    /// The error for the field that started when `remaining` bytes were left.
    #[cold]
    #[inline(never)]
    pub fn error_at(&self, code: ErrorCode, field: &'static str, remaining: usize) -> DecodeError {
        DecodeError {
            code,
            correlation_id: None,
            field,
            offset: self.offset_of(remaining),
        }
    }

    /// The error for a field that starts at the current position.
    #[cold]
    #[inline(never)]
    pub fn error(&self, code: ErrorCode, field: &'static str) -> DecodeError {
        self.error_at(code, field, self.rest.len())
    }

    /// Fails with `TRAILING_BYTES` if anything is left: version 1 has no extension at the end of
    /// a body (spec section 3).
    #[inline]
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.error(ErrorCode::TRAILING_BYTES, "body"))
        }
    }

    /// Exactly `N` bytes.
    #[inline]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(*head)
            }
            None => Err(self.error(ErrorCode::TRUNCATED, field)),
        }
    }

    /// `length` bytes, borrowed. `field_remaining` is `remaining()` at the start of the field
    /// the bytes belong to, so that a truncation points at the field, not into it.
    #[inline]
    fn take(
        &mut self,
        length: usize,
        field: &'static str,
        field_remaining: usize,
    ) -> Result<&'a [u8], DecodeError> {
        match self.rest.split_at_checked(length) {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(self.error_at(ErrorCode::TRUNCATED, field, field_remaining)),
        }
    }

    #[inline]
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        match self.rest.split_first() {
            Some((&byte, tail)) => {
                self.rest = tail;
                Ok(byte)
            }
            None => Err(self.error(ErrorCode::TRUNCATED, field)),
        }
    }

    #[inline]
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_le_bytes)
    }

    #[inline]
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_le_bytes)
    }

    #[inline]
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_le_bytes)
    }

    #[inline]
    pub fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        self.array(field).map(i16::from_le_bytes)
    }

    #[inline]
    pub fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.array(field).map(i64::from_le_bytes)
    }

    /// `bool`: 0 or 1, anything else is `INVALID_FIELD`.
    #[inline]
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.error_at(
                ErrorCode::INVALID_FIELD,
                field,
                self.rest.len().saturating_add(1),
            )),
        }
    }

    /// The tag of an `option<T>`: whether a `T` follows. A tag other than 0 or 1 is `INVALID_FIELD`.
    #[inline]
    pub fn option_tag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        self.bool(field)
    }

    /// `money`: a `u64` of at most `MONEY_MAX`.
    #[inline]
    pub fn money(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let start = self.rest.len();
        let value = self.u64(field)?;
        if value > MONEY_MAX {
            return Err(self.error_at(ErrorCode::MONEY_OUT_OF_RANGE, field, start));
        }
        Ok(value)
    }

    /// A `u8` enum: values the type does not list are `UNKNOWN_ENUM_VALUE`.
    #[inline]
    pub fn enumeration<T: WireEnum>(&mut self, field: &'static str) -> Result<T, DecodeError> {
        let start = self.rest.len();
        let value = self.u8(field)?;
        T::from_wire(value)
            .ok_or_else(|| self.error_at(ErrorCode::UNKNOWN_ENUM_VALUE, field, start))
    }

    /// The length and bytes of a `str(max)`: the length is checked against `max` before the
    /// bytes are read. Returns the bytes unvalidated and `remaining()` at the field's start.
    #[inline(always)]
    fn string_bytes(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<(&'a [u8], usize), DecodeError> {
        let start = self.rest.len();
        let length = usize::from(self.u16(field)?);
        if length > max {
            return Err(self.error_at(ErrorCode::STRING_TOO_LONG, field, start));
        }
        Ok((self.take(length, field, start)?, start))
    }

    /// `str(max)`: length at most `max` (`STRING_TOO_LONG`), then the bytes (`TRUNCATED`), then
    /// UTF-8 (`INVALID_UTF8`), in that order.
    #[inline]
    pub fn string(&mut self, max: usize, field: &'static str) -> Result<&'a str, DecodeError> {
        let (bytes, start) = self.string_bytes(max, field)?;
        std::str::from_utf8(bytes).map_err(|_| self.error_at(ErrorCode::INVALID_UTF8, field, start))
    }

    /// The bytes of a `str(max)` that must also satisfy `valid`, an ASCII charset (else
    /// `INVALID_FIELD`). The charset is the fast test and implies valid UTF-8; only if it fails
    /// is UTF-8 validity checked, so that invalid UTF-8 still gets `INVALID_UTF8` as section 2's
    /// order says (the str checks come before the symbol's own).
    #[inline(always)]
    fn checked_string_bytes(
        &mut self,
        max: usize,
        field: &'static str,
        valid: fn(&[u8]) -> bool,
    ) -> Result<&'a [u8], DecodeError> {
        let (bytes, start) = self.string_bytes(max, field)?;
        if valid(bytes) {
            return Ok(bytes);
        }
        let code = if std::str::from_utf8(bytes).is_ok() {
            ErrorCode::INVALID_FIELD
        } else {
            ErrorCode::INVALID_UTF8
        };
        Err(self.error_at(code, field, start))
    }

    /// A `str(max)` whose bytes must also satisfy the ASCII charset `valid`.
    #[inline(always)]
    fn checked_string(
        &mut self,
        max: usize,
        field: &'static str,
        valid: fn(&[u8]) -> bool,
    ) -> Result<&'a str, DecodeError> {
        let bytes = self.checked_string_bytes(max, field, valid)?;
        // The charset is ASCII, so this cannot fail; the error keeps the function total.
        std::str::from_utf8(bytes).map_err(|_| self.error(ErrorCode::INVALID_UTF8, field))
    }

    /// `symbol`: a non-empty `str(32)` of `a`–`z`, `0`–`9`, `_`.
    #[inline(always)]
    pub fn symbol(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        self.checked_string(SYMBOL_LEN_MAX, field, is_symbol)
    }

    /// A `symbol`'s bytes, validated but not turned into a `str` (attribute decoding only
    /// validates keys and values, so it skips the conversion).
    #[inline(always)]
    pub fn symbol_bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        self.checked_string_bytes(SYMBOL_LEN_MAX, field, is_symbol)
    }

    /// `postal_code`: a non-empty `str(16)` of `A`–`Z`, `0`–`9`, space and `-`.
    #[inline(always)]
    pub fn postal_code(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        self.checked_string(POSTAL_CODE_LEN_MAX, field, is_postal_code)
    }

    /// A `str(max)` that is only validated, not returned: ASCII is checked inline, and only
    /// other text goes through the full UTF-8 validation.
    #[inline]
    pub fn skip_string(&mut self, max: usize, field: &'static str) -> Result<(), DecodeError> {
        let (bytes, start) = self.string_bytes(max, field)?;
        if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
            Ok(())
        } else {
            Err(self.error_at(ErrorCode::INVALID_UTF8, field, start))
        }
    }

    /// `country`: 2 bytes of `A`–`Z`.
    #[inline]
    pub fn country(&mut self, field: &'static str) -> Result<[u8; 2], DecodeError> {
        let start = self.rest.len();
        let code: [u8; 2] = self.array(field)?;
        if !is_upper_alpha(&code) {
            return Err(self.error_at(ErrorCode::INVALID_FIELD, field, start));
        }
        Ok(code)
    }

    /// `currency`: 3 bytes of `A`–`Z`.
    #[inline]
    pub fn currency(&mut self, field: &'static str) -> Result<[u8; 3], DecodeError> {
        let start = self.rest.len();
        let code: [u8; 3] = self.array(field)?;
        if !is_upper_alpha(&code) {
            return Err(self.error_at(ErrorCode::INVALID_FIELD, field, start));
        }
        Ok(code)
    }

    /// `ip`: family 4 or 6, then the address bytes; another family is `UNKNOWN_ENUM_VALUE`.
    #[inline]
    pub fn ip(&mut self, field: &'static str) -> Result<IpAddr, DecodeError> {
        let start = self.rest.len();
        match self.u8(field)? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>(field)?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>(field)?))),
            _ => Err(self.error_at(ErrorCode::UNKNOWN_ENUM_VALUE, field, start)),
        }
    }

    /// The count of a `list<T>(max)`, checked against `max` before any element is read.
    #[inline]
    pub fn count(&mut self, max: usize, field: &'static str) -> Result<u16, DecodeError> {
        let start = self.rest.len();
        let count = self.u16(field)?;
        if usize::from(count) > max {
            return Err(self.error_at(ErrorCode::LIST_TOO_LONG, field, start));
        }
        Ok(count)
    }

    /// A capacity for a list of `count` elements of at least `element_size_min` bytes each that
    /// the remaining bytes could hold: a count the frame cannot back never reserves memory.
    #[inline]
    pub fn capacity(&self, count: u16, element_size_min: usize) -> usize {
        usize::from(count).min(self.rest.len().checked_div(element_size_min).unwrap_or(0))
    }

    /// A `list<T>(max)` read into a `Vec`, each element by `element`. The vector's capacity is
    /// bounded by what the remaining bytes can hold (see [`capacity`](Self::capacity)).
    #[inline]
    pub fn list<T>(
        &mut self,
        max: usize,
        field: &'static str,
        element_size_min: usize,
        mut element: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.count(max, field)?;
        let mut items = Vec::with_capacity(self.capacity(count, element_size_min));
        for _ in 0..count {
            items.push(element(self)?);
        }
        Ok(items)
    }

    /// An `option<T>`: the tag, then `T` read by `value` if present.
    #[inline]
    pub fn option<T>(
        &mut self,
        field: &'static str,
        value: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.option_tag(field)? {
            value(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The bytes consumed since `start`, a value of [`rest`](Self::rest) taken earlier.
    #[inline]
    pub fn consumed_since(&self, start: &'a [u8]) -> &'a [u8] {
        start
            .get(..start.len().saturating_sub(self.rest.len()))
            .unwrap_or_default()
    }
}

/// The byte `b` in every byte of a word.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit set in each byte of `word` that lies in `low..=high`. Valid only for words
/// whose bytes are all below 0x80 (callers check that first): then no byte's sum carries into
/// the next, so eight bytes are classified with a few integer operations (SWAR).
#[inline]
fn bytes_in_range(word: u64, low: u8, high: u8) -> u64 {
    let at_least_low = word.wrapping_add(splat(0x80u8.wrapping_sub(low)));
    let above_high = word.wrapping_add(splat(0x7Fu8.wrapping_sub(high)));
    at_least_low & !above_high & splat(0x80)
}

/// Whether `word_valid` holds for every 8-byte word of `bytes` and `bytes` is not empty.
/// Checking a word at a time is what keeps symbol-heavy `PING` decoding fast: a lead carries a
/// dozen symbols. Every byte is covered by overlapping loads, with no per-byte loop: whole words
/// plus the last 8 bytes for 8 bytes or more; the first and last 4 bytes for 4 to 7; the
/// first, middle and last byte (and `filler`, a valid byte, for the rest of the word) for 1 to 3.
/// Overlap is harmless because a byte checked twice gives the same answer.
#[inline]
fn all_words(bytes: &[u8], filler: u8, word_valid: fn(u64) -> bool) -> bool {
    if let Some(last) = bytes.last_chunk::<8>() {
        return bytes.chunks_exact(8).all(|chunk| {
            chunk
                .first_chunk::<8>()
                .is_some_and(|word| word_valid(u64::from_le_bytes(*word)))
        }) && word_valid(u64::from_le_bytes(*last));
    }
    let word = match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (Some(first), Some(last)) => {
            u64::from(u32::from_le_bytes(*first)) | (u64::from(u32::from_le_bytes(*last)) << 32)
        }
        _ => match (bytes.first(), bytes.get(bytes.len() / 2), bytes.last()) {
            (Some(&first), Some(&middle), Some(&last)) => {
                (splat(filler) & !0xFF_FFFF)
                    | u64::from(first)
                    | (u64::from(middle) << 8)
                    | (u64::from(last) << 16)
            }
            _ => return false,
        },
    };
    word_valid(word)
}

/// Eight symbol bytes: `a`–`z`, `0`–`9`, `_`.
#[inline]
fn symbol_word(word: u64) -> bool {
    word & splat(0x80) == 0
        && (bytes_in_range(word, b'a', b'z')
            | bytes_in_range(word, b'0', b'9')
            | bytes_in_range(word, b'_', b'_'))
            == splat(0x80)
}

/// Eight postal-code bytes: `A`–`Z`, `0`–`9`, space, `-`.
#[inline]
fn postal_code_word(word: u64) -> bool {
    word & splat(0x80) == 0
        && (bytes_in_range(word, b'A', b'Z')
            | bytes_in_range(word, b'0', b'9')
            | bytes_in_range(word, b' ', b' ')
            | bytes_in_range(word, b'-', b'-'))
            == splat(0x80)
}

/// `a`–`z`, `0`–`9`, `_`, and not empty.
#[inline]
pub fn is_symbol(bytes: &[u8]) -> bool {
    all_words(bytes, b'a', symbol_word)
}

/// `A`–`Z`, `0`–`9`, space, `-`, and not empty.
#[inline]
pub fn is_postal_code(bytes: &[u8]) -> bool {
    all_words(bytes, b'0', postal_code_word)
}

/// Only `A`–`Z` (country and currency codes).
#[inline]
pub fn is_upper_alpha(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_uppercase)
}

/// Appends fields in wire order. Methods that can meet a value a receiver would reject return
/// an [`EncodeError`]; the frame encoder truncates `out` back on error, so nothing partial stays.
#[derive(Debug)]
pub struct Writer<'b> {
    out: &'b mut BytesMut,
}

impl<'b> Writer<'b> {
    pub fn new(out: &'b mut BytesMut) -> Self {
        Self { out }
    }

    /// Bytes in the underlying buffer (not only this writer's).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether the underlying buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    #[inline]
    pub fn u8(&mut self, value: u8) {
        self.out.put_u8(value);
    }

    #[inline]
    pub fn u16(&mut self, value: u16) {
        self.out.put_u16_le(value);
    }

    #[inline]
    pub fn u32(&mut self, value: u32) {
        self.out.put_u32_le(value);
    }

    #[inline]
    pub fn u64(&mut self, value: u64) {
        self.out.put_u64_le(value);
    }

    #[inline]
    pub fn i16(&mut self, value: i16) {
        self.out.put_i16_le(value);
    }

    #[inline]
    pub fn i64(&mut self, value: i64) {
        self.out.put_i64_le(value);
    }

    #[inline]
    pub fn bytes(&mut self, value: &[u8]) {
        self.out.put_slice(value);
    }

    #[inline]
    pub fn bool(&mut self, value: bool) {
        self.out.put_u8(u8::from(value));
    }

    #[inline]
    pub fn enumeration<T: WireEnum>(&mut self, value: T) {
        self.out.put_u8(value.to_wire());
    }

    /// `money`, refused above `MONEY_MAX`.
    #[inline]
    pub fn money(&mut self, value: u64, field: &'static str) -> Result<(), EncodeError> {
        if value > MONEY_MAX {
            return Err(EncodeError::new(ErrorCode::MONEY_OUT_OF_RANGE, field));
        }
        self.u64(value);
        Ok(())
    }

    /// `str(max)`, refused above `max` bytes.
    #[inline]
    pub fn string(
        &mut self,
        value: &str,
        max: usize,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        let length = match u16::try_from(value.len()) {
            Ok(length) if value.len() <= max => length,
            _ => return Err(EncodeError::new(ErrorCode::STRING_TOO_LONG, field)),
        };
        self.u16(length);
        self.bytes(value.as_bytes());
        Ok(())
    }

    /// The count of a `list<T>(max)`, refused above `max`.
    #[inline]
    pub fn count(
        &mut self,
        count: usize,
        max: usize,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        match u16::try_from(count) {
            Ok(count16) if count <= max => {
                self.u16(count16);
                Ok(())
            }
            _ => Err(EncodeError::new(ErrorCode::LIST_TOO_LONG, field)),
        }
    }

    /// A `list<T>(max)`: the count, refused above `max`, then each element by `element`.
    #[inline]
    pub fn list<T>(
        &mut self,
        items: &[T],
        max: usize,
        field: &'static str,
        mut element: impl FnMut(&mut Self, &T) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.count(items.len(), max, field)?;
        items.iter().try_for_each(|item| element(self, item))
    }

    /// An `option<T>`: the tag, then `T` written by `value` if present.
    #[inline]
    pub fn option<T>(
        &mut self,
        item: Option<&T>,
        value: impl FnOnce(&mut Self, &T) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        match item {
            None => {
                self.u8(0);
                Ok(())
            }
            Some(item) => {
                self.u8(1);
                value(self, item)
            }
        }
    }

    /// `ip`: family then the address in network byte order.
    #[inline]
    pub fn ip(&mut self, value: &IpAddr) {
        match value {
            IpAddr::V4(v4) => {
                self.u8(4);
                self.bytes(&v4.octets());
            }
            IpAddr::V6(v6) => {
                self.u8(6);
                self.bytes(&v6.octets());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader<'_> {
        Reader::new(bytes)
    }

    #[test]
    fn integers_are_little_endian() {
        let bytes = [1, 2, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0xFE, 0xFF];
        let mut r = reader(&bytes);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 2);
        assert_eq!(r.u32("c").unwrap(), 3);
        assert_eq!(r.u64("d").unwrap(), 4);
        assert_eq!(r.i16("e").unwrap(), -2);
        r.finish().unwrap();
        assert_eq!(r.u8("f").unwrap_err().code, ErrorCode::TRUNCATED);
    }

    #[test]
    fn truncation_points_at_the_field_start() {
        let mut r = reader(&[9, 1, 2, 3]);
        r.u8("x").unwrap();
        let error = r.u64("y").unwrap_err();
        assert_eq!(
            (error.code, error.field, error.offset),
            (ErrorCode::TRUNCATED, "y", 1)
        );
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 3);
        let error = reader(&[5, 0, b'a']).string(16, "s").unwrap_err();
        assert_eq!((error.code, error.offset), (ErrorCode::TRUNCATED, 0));
    }

    #[test]
    fn string_checks_length_before_truncation_before_utf8() {
        // Length 300 > 256 in a 2-byte buffer: too long, not truncated.
        assert_eq!(
            reader(&[44, 1]).string(256, "s").unwrap_err().code,
            ErrorCode::STRING_TOO_LONG
        );
        assert_eq!(
            reader(&[2, 0, 0xFF]).string(256, "s").unwrap_err().code,
            ErrorCode::TRUNCATED
        );
        assert_eq!(
            reader(&[1, 0, 0xFF]).string(256, "s").unwrap_err().code,
            ErrorCode::INVALID_UTF8
        );
        assert_eq!(reader(&[2, 0, b'h', b'i']).string(2, "s").unwrap(), "hi");
        assert_eq!(reader(&[0, 0]).string(0, "s").unwrap(), "");
    }

    #[test]
    fn symbols_postal_codes_countries() {
        assert_eq!(
            reader(&[5, 0, b's', b'o', b'l', b'a', b'r'])
                .symbol("v")
                .unwrap(),
            "solar"
        );
        assert_eq!(
            reader(&[0, 0]).symbol("v").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            reader(&[1, 0, b'A']).symbol("v").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            reader(&[2, 0, 0xC3, 0xA9]).symbol("v").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            reader(&[1, 0, 0xC3]).symbol("v").unwrap_err().code,
            ErrorCode::INVALID_UTF8
        );
        assert_eq!(
            reader(&[33, 0]).symbol("v").unwrap_err().code,
            ErrorCode::STRING_TOO_LONG
        );
        assert_eq!(
            reader(&[6, 0, b'S', b'W', b'1', b' ', b'1', b'-'])
                .postal_code("p")
                .unwrap(),
            "SW1 1-"
        );
        assert_eq!(
            reader(&[1, 0, b'a']).postal_code("p").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            reader(&[0, 0]).postal_code("p").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(reader(b"US").country("c").unwrap(), *b"US");
        assert_eq!(
            reader(b"us").country("c").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            reader(b"U").country("c").unwrap_err().code,
            ErrorCode::TRUNCATED
        );
        assert_eq!(reader(b"USD").currency("c").unwrap(), *b"USD");
        assert_eq!(
            reader(b"US1").currency("c").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
    }

    #[test]
    fn bool_option_money_ip_count() {
        assert!(reader(&[1]).bool("b").unwrap());
        assert_eq!(
            reader(&[2]).bool("b").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(reader(&[2]).bool("b").unwrap_err().offset, 0);
        assert_eq!(
            reader(&[7]).option_tag("o").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        let max = MONEY_MAX.to_le_bytes();
        assert_eq!(reader(&max).money("m").unwrap(), MONEY_MAX);
        let over = (MONEY_MAX + 1).to_le_bytes();
        assert_eq!(
            reader(&over).money("m").unwrap_err().code,
            ErrorCode::MONEY_OUT_OF_RANGE
        );
        assert_eq!(
            reader(&[4, 10, 0, 0, 1]).ip("ip").unwrap(),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            reader(&[5]).ip("ip").unwrap_err().code,
            ErrorCode::UNKNOWN_ENUM_VALUE
        );
        assert_eq!(
            reader(&[6, 0]).ip("ip").unwrap_err().code,
            ErrorCode::TRUNCATED
        );
        assert_eq!(
            reader(&[0xFF, 0xFF]).count(64, "l").unwrap_err().code,
            ErrorCode::LIST_TOO_LONG
        );
        let r = reader(&[0; 30]);
        assert_eq!(r.capacity(65_535, 8), 3);
        assert_eq!(r.capacity(2, 8), 2);
    }

    #[test]
    fn charsets_agree_with_a_byte_by_byte_definition() {
        let symbol = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
        let postal = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'-';
        // Every byte value at every position of every length up to 17 (each load pattern).
        for length in 1..=17 {
            for position in 0..length {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; length];
                    bytes[position] = b;
                    assert_eq!(
                        is_symbol(&bytes),
                        symbol(b),
                        "symbol byte {b:#x} at {position} of {length}"
                    );
                    let mut bytes = vec![b'0'; length];
                    bytes[position] = b;
                    assert_eq!(
                        is_postal_code(&bytes),
                        postal(b),
                        "postal byte {b:#x} at {position} of {length}"
                    );
                }
            }
        }
        assert!(!is_symbol(b""));
        assert!(!is_postal_code(b""));
        assert!(is_symbol(b"abcdefgh_0123456789"));
    }

    #[test]
    fn finish_reports_trailing_bytes_where_they_start() {
        let mut r = reader(&[1, 2, 3]);
        r.u8("a").unwrap();
        let error = r.finish().unwrap_err();
        assert_eq!((error.code, error.offset), (ErrorCode::TRAILING_BYTES, 1));
    }

    #[test]
    fn writer_round_trips_and_refuses_out_of_range() {
        let mut out = BytesMut::new();
        let mut w = Writer::new(&mut out);
        w.u8(1);
        w.u16(2);
        w.u32(3);
        w.u64(4);
        w.i16(-2);
        w.i64(-5);
        w.bool(true);
        w.money(MONEY_MAX, "m").unwrap();
        w.string("héllo", 16, "s").unwrap();
        w.count(3, 3, "l").unwrap();
        w.ip(&"::1".parse().unwrap());
        assert_eq!(
            w.money(MONEY_MAX + 1, "m").unwrap_err().code,
            ErrorCode::MONEY_OUT_OF_RANGE
        );
        assert_eq!(
            w.string("abc", 2, "s").unwrap_err().code,
            ErrorCode::STRING_TOO_LONG
        );
        assert_eq!(
            w.count(4, 3, "l").unwrap_err().code,
            ErrorCode::LIST_TOO_LONG
        );
        let mut r = reader(&out);
        assert_eq!(r.u8("").unwrap(), 1);
        assert_eq!(r.u16("").unwrap(), 2);
        assert_eq!(r.u32("").unwrap(), 3);
        assert_eq!(r.u64("").unwrap(), 4);
        assert_eq!(r.i16("").unwrap(), -2);
        assert_eq!(r.i64("").unwrap(), -5);
        assert!(r.bool("").unwrap());
        assert_eq!(r.money("").unwrap(), MONEY_MAX);
        assert_eq!(r.string(16, "").unwrap(), "héllo");
        assert_eq!(r.count(3, "").unwrap(), 3);
        assert_eq!(r.ip("").unwrap(), "::1".parse::<IpAddr>().unwrap());
        r.finish().unwrap();
    }
}
