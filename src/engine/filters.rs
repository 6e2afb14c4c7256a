//! Compiled attribute filters: a campaign's typed predicates on a lead's attributes (spec
//! section 7, `filter`), checked in one merge walk without allocating.
//!
//! # Why compiled
//!
//! An auction checks the filters of every campaign the territory index returns, so `matches`
//! is on the hot path. Compiling sorts the filters by key, so that a single walk over the
//! filters and the attribute map (whose canonical encoding is already sorted by key) finds each
//! filter's attribute: O(filters + attributes) byte compares, no lookups and no allocation. It
//! also turns decimal bounds into one exact fixed-point scale, so no comparison needs a float
//! or a division, and sorts `one_of` values for a binary search.
//!
//! # Semantics (spec section 7)
//!
//! All filters must hold. A filter on an attribute the lead does not carry fails, except
//! `absent`. `int_range` holds only for integers; `decimal_range` for decimals and integers,
//! compared exactly whatever their scales; `one_of` for strings and enums; `is` for bools. A
//! value of another kind fails the filter: a buyer that asked for a number must not be sold a
//! lead whose seller sent text.
//!
//! # Digest
//!
//! The compiled form is canonical: filters sorted by key, `one_of` values sorted and
//! deduplicated. [`CompiledFilters::digest_into`] feeds it to a hasher in that order with
//! fixed-width integers, and serde writes the same order (as the spec's `filter` list), so equal
//! filter sets digest and serialize equally whatever order the admin listed them in.

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
use std::hash::Hasher;

use serde::{Deserialize, Serialize};

use crate::limits::{ATTRIBUTES_MAX, DECIMAL_SCALE_MAX, FILTER_VALUES_MAX, FILTERS_MAX};
use crate::protocol::{Attributes, ErrorCode, Filter, FilterCondition, Symbol};

/// An admin definition the exchange refuses: the code to answer (`INVALID_DEFINITION`, 702,
/// for every check of this module) and a sentence naming what is wrong, for the `ERROR`
/// message. Shared by the compilers of this module and of `preping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    pub code: ErrorCode,
    pub message: String,
}

impl DefinitionError {
    /// An `INVALID_DEFINITION` with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::INVALID_DEFINITION,
            message: message.into(),
        }
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.0)
    }
}

impl std::error::Error for DefinitionError {}

/// The scale every decimal comparison happens at: the largest a decimal may have, so that
/// scaling any value to it is exact.
const FIXED_SCALE: u8 = DECIMAL_SCALE_MAX;

/// `10^k` for `k` in `0..=FIXED_SCALE`.
const POW10: [i128; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// `mantissa × 10^-scale` as a count of `10^-FIXED_SCALE` units, exactly, or `None` for a scale
/// above `FIXED_SCALE` (which no validated attribute or compiled filter has).
///
/// i128 because `i64::MAX × 10^9` is about 9.2 × 10^27, beyond i64 but far within i128's
/// 1.7 × 10^38: the product can never saturate, so the comparison is exact.
#[inline]
fn to_fixed(mantissa: i64, scale: u8) -> Option<i128> {
    let shift = FIXED_SCALE.checked_sub(scale)?;
    let factor = POW10.get(usize::from(shift))?;
    Some(i128::from(mantissa).saturating_mul(*factor))
}

/// A filter's condition in the form `matches` checks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Condition {
    /// An integer in `min..=max`.
    IntRange {
        min: i64,
        max: i64,
    },
    /// A decimal or integer in `min_fixed..=max_fixed`, in `10^-FIXED_SCALE` units. The
    /// definition's own `min`, `max` and `scale` are kept to give the definition back.
    DecimalRange {
        min_fixed: i128,
        max_fixed: i128,
        min: i64,
        max: i64,
        scale: u8,
    },
    /// A string or enum equal to one of `values`: sorted by bytes, without repeats.
    OneOf {
        values: Box<[Box<str>]>,
    },
    /// A bool equal to `value`.
    Is {
        value: bool,
    },
    Present,
    Absent,
}

impl Condition {
    /// Whether the condition holds for the attribute's value (`None`: the lead lacks it).
    #[inline]
    fn holds(&self, value: Option<RawValue<'_>>) -> bool {
        let Some(value) = value else {
            return matches!(self, Self::Absent);
        };
        match (self, value) {
            (Self::IntRange { min, max }, RawValue::Integer(v)) => *min <= v && v <= *max,
            (
                Self::DecimalRange {
                    min_fixed,
                    max_fixed,
                    ..
                },
                value,
            ) => {
                let fixed = match value {
                    RawValue::Integer(v) => to_fixed(v, 0),
                    RawValue::Decimal { mantissa, scale } => to_fixed(mantissa, scale),
                    _ => None,
                };
                fixed.is_some_and(|v| *min_fixed <= v && v <= *max_fixed)
            }
            (Self::OneOf { values }, RawValue::Text(v)) => values
                .binary_search_by(|probe| probe.as_bytes().cmp(v))
                .is_ok(),
            (Self::Is { value }, RawValue::Bool(v)) => *value == v,
            (Self::Present, _) => true,
            // Absent with a value present, and every kind mismatch.
            _ => false,
        }
    }

    /// A stable tag per kind, the spec's `kind` numbers, for the digest.
    fn kind_tag(&self) -> u8 {
        match self {
            Self::IntRange { .. } => 1,
            Self::DecimalRange { .. } => 2,
            Self::OneOf { .. } => 3,
            Self::Is { .. } => 4,
            Self::Present => 5,
            Self::Absent => 6,
        }
    }
}

impl CompiledFilter {
    /// Whether this one filter holds for the lead: [`CompiledFilters::matches_lead`] is the
    /// conjunction of its filters' answers (the lead's keys are strictly sorted, so finding
    /// each key on its own finds the value the merge walk finds).
    pub fn holds_for(&self, lead: &LeadAttributes<'_>) -> bool {
        let key = self.key.as_bytes();
        let entries = lead.entries();
        let entry = if entries.len() <= LINEAR_KEY_SEARCH_MAX {
            // A lead's few keys mostly differ in length: comparing lengths first skips them
            // without reading their bytes, cheaper than the searches' byte comparisons.
            entries
                .iter()
                .find(|entry| entry.key.len() == key.len() && entry.key == key)
        } else {
            let at =
                entries.partition_point(|entry| compare_keys(entry.key, key) == Ordering::Less);
            entries.get(at).filter(|entry| entry.key == key)
        };
        self.condition.holds(entry.map(|entry| entry.value))
    }
}

/// One compiled filter: a predicate on one attribute. Equal filters (same key, same
/// canonical condition) hold for the same leads, so a book keeps one of each
/// ([`super::book::Book::predicate`]) and an auction decides each at most once per lead.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompiledFilter {
    key: Symbol<'static>,
    condition: Condition,
}

/// A campaign's filters, sorted by key, ready for [`matches`](Self::matches).
///
/// Serde writes and reads the spec's `filter` list (sorted by key); reading compiles it again,
/// so a snapshot can never hold filters that `compile` would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "Vec<Filter<'static>>", try_from = "Vec<Filter<'static>>")]
pub struct CompiledFilters {
    filters: Box<[CompiledFilter]>,
}

impl CompiledFilters {
    /// Checks and compiles a campaign's filters. `INVALID_DEFINITION` (702) for a key listed
    /// twice, a range whose `min` is above its `max`, a `decimal_range` scale above 9, an empty
    /// `one_of`, or more filters or `one_of` values than the spec's list maxima (which the codec
    /// enforces already; checked again because definitions also arrive through serde).
    pub fn compile(filters: &[Filter<'_>]) -> Result<Self, DefinitionError> {
        if filters.len() > FILTERS_MAX {
            return Err(DefinitionError::invalid(format!(
                "{} filters, more than the {FILTERS_MAX} a campaign may have",
                filters.len()
            )));
        }
        let mut compiled = Vec::with_capacity(filters.len());
        for filter in filters {
            compiled.push(CompiledFilter {
                key: filter.key.clone().into_owned(),
                condition: compile_condition(filter.key.as_str(), &filter.condition)?,
            });
        }
        compiled.sort_unstable_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        let repeated = compiled.windows(2).find_map(|pair| match pair {
            [a, b] if a.key == b.key => Some(&a.key),
            _ => None,
        });
        if let Some(key) = repeated {
            return Err(DefinitionError::invalid(format!(
                "filter key {key} is listed twice"
            )));
        }
        Ok(Self {
            filters: compiled.into_boxed_slice(),
        })
    }

    /// No filters: every lead matches.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether every filter holds for `attributes`.
    ///
    /// One merge walk: both sides are sorted by key bytes (the filters by `compile`, the map by
    /// its canonical encoding), so each attribute is passed at most once and each filter finds
    /// its attribute, or learns it is missing, without a lookup. The walk reads the encoding
    /// directly (`RawAttributes`): an attribute no filter asks about is skipped by its length,
    /// and only the values filters test are decoded. Stops at the first filter that fails.
    /// Allocates nothing.
    #[inline]
    pub fn matches(&self, attributes: &Attributes<'_>) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        let mut walk = RawAttributes::new(attributes);
        let mut current = walk.next();
        for filter in self.filters.iter() {
            let key = filter.key.as_bytes();
            // Skip attributes no filter asks about.
            let value = loop {
                match current {
                    None => break None,
                    Some(attribute) => match compare_keys(attribute.key, key) {
                        Ordering::Less => current = walk.next(),
                        Ordering::Equal => break Some(attribute.value()),
                        Ordering::Greater => break None,
                    },
                }
            };
            if !filter.condition.holds(value) {
                return false;
            }
        }
        true
    }

    /// [`matches`](Self::matches) against attributes decoded once per lead: for an auction
    /// that checks many campaigns' filters against one lead. Each filter finds its attribute
    /// by binary search in what the previous filter left, so a campaign with few filters pays
    /// a few comparisons whatever the lead's size. Allocates nothing.
    #[inline]
    pub fn matches_lead(&self, lead: &LeadAttributes<'_>) -> bool {
        let mut rest = lead.entries();
        for filter in self.filters.iter() {
            let key = filter.key.as_bytes();
            let at = rest.partition_point(|entry| compare_keys(entry.key, key) == Ordering::Less);
            rest = rest.get(at..).unwrap_or(&[]);
            let value = rest
                .first()
                .filter(|entry| entry.key == key)
                .map(|entry| entry.value);
            if !filter.condition.holds(value) {
                return false;
            }
        }
        true
    }

    /// The filters, in their canonical order (by key).
    pub fn predicates(&self) -> &[CompiledFilter] {
        &self.filters
    }

    /// Feeds the compiled filters to `hasher` in their canonical order (key bytes), with
    /// fixed-width integers and length prefixes, so that equal filter sets give equal digests
    /// on every platform and whatever order the definition listed them in.
    pub fn digest_into(&self, hasher: &mut impl Hasher) {
        hasher.write_u64(self.filters.len() as u64);
        for filter in self.filters.iter() {
            digest_str(hasher, filter.key.as_str());
            hasher.write_u8(filter.condition.kind_tag());
            match &filter.condition {
                Condition::IntRange { min, max } => {
                    hasher.write_i64(*min);
                    hasher.write_i64(*max);
                }
                Condition::DecimalRange {
                    min, max, scale, ..
                } => {
                    // The definition as written, as serde writes it: 1.5 at scale 1 and 1.50 at
                    // scale 2 match the same leads but are different definitions, and the
                    // digest must agree with equality and with the snapshot.
                    hasher.write_i64(*min);
                    hasher.write_i64(*max);
                    hasher.write_u8(*scale);
                }
                Condition::OneOf { values } => {
                    hasher.write_u64(values.len() as u64);
                    for value in values.iter() {
                        digest_str(hasher, value);
                    }
                }
                Condition::Is { value } => hasher.write_u8(u8::from(*value)),
                Condition::Present | Condition::Absent => {}
            }
        }
    }
}

/// A string with its length first, so that ("ab", "c") and ("a", "bc") digest differently.
fn digest_str(hasher: &mut impl Hasher, text: &str) {
    hasher.write_u64(text.len() as u64);
    hasher.write(text.as_bytes());
}

/// A lead's attributes decoded once (keys and values located, text left as bytes), for
/// [`CompiledFilters::matches_lead`]: one entry of 40 bytes per attribute the lead has (at
/// most `ATTRIBUTES_MAX`), inline for a lead of up to [`LEAD_ATTRIBUTES_INLINE`] attributes
/// (no allocation: most leads), else in one allocation sized to them. Build one per auction
/// and check every candidate campaign against it.
#[derive(Debug, Clone)]
pub struct LeadAttributes<'a> {
    entries: LeadEntries<'a>,
}

/// How many attributes a [`LeadAttributes`] holds without allocating: the verticals' usual
/// leads carry 4 to 8.
pub const LEAD_ATTRIBUTES_INLINE: usize = 8;

#[derive(Debug, Clone)]
enum LeadEntries<'a> {
    /// The first `len` entries are the lead's; the rest are placeholders.
    Inline {
        entries: [LeadEntry<'a>; LEAD_ATTRIBUTES_INLINE],
        len: usize,
    },
    Heap(Vec<LeadEntry<'a>>),
}

#[derive(Debug, Clone, Copy)]
struct LeadEntry<'a> {
    key: &'a [u8],
    value: RawValue<'a>,
}

impl<'a> LeadAttributes<'a> {
    /// Decodes `attributes` (at most `ATTRIBUTES_MAX`, which every valid map is).
    pub fn new(attributes: &'a Attributes<'_>) -> Self {
        let decoded = RawAttributes::new(attributes)
            .take(ATTRIBUTES_MAX)
            .map(|attribute| LeadEntry {
                key: attribute.key,
                value: attribute.value(),
            });
        if attributes.len() > LEAD_ATTRIBUTES_INLINE {
            let mut entries = Vec::with_capacity(attributes.len().min(ATTRIBUTES_MAX));
            entries.extend(decoded);
            return Self {
                entries: LeadEntries::Heap(entries),
            };
        }
        let mut entries = [LeadEntry {
            key: &[],
            value: RawValue::Other,
        }; LEAD_ATTRIBUTES_INLINE];
        let len = entries
            .iter_mut()
            .zip(decoded)
            .map(|(slot, entry)| *slot = entry)
            .count();
        Self {
            entries: LeadEntries::Inline { entries, len },
        }
    }

    fn entries(&self) -> &[LeadEntry<'a>] {
        match &self.entries {
            LeadEntries::Inline { entries, len } => entries.get(..*len).unwrap_or(entries),
            LeadEntries::Heap(entries) => entries,
        }
    }
}

/// A walk over an attribute map's canonical encoding (spec section 2, `attributes`, without
/// the count): per attribute a `u16` key length and the key, a `u8` kind, then the value by
/// kind (1: `i64`; 2: `i64` and a `u8` scale; 3 and 5: a `u16` length and the bytes; 4: a
/// `u8`).
///
/// Why not [`Attributes::iter`]: it decodes every key and value through the checked reader,
/// UTF-8 validation included, about three times the cost of this whole walk in release builds
/// (`measure_matches`), which a filter check per campaign per auction cannot afford. The map was validated when it was made, so
/// this walk only finds boundaries: it jumps over an attribute by its lengths and decodes a
/// value only when asked. It never panics: should the bytes ever be short, the walk ends as if
/// the map did (`matches` agrees with a decoder-based reference in the property test below).
#[derive(Debug, Clone)]
pub(crate) struct RawAttributes<'a> {
    rest: &'a [u8],
    left: usize,
}

/// One attribute of a [`RawAttributes`] walk: its key bytes, kind and undecoded value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawAttribute<'a> {
    pub(crate) key: &'a [u8],
    /// The spec's kind number, 1..=5.
    pub(crate) kind: u8,
    value: &'a [u8],
}

/// A decoded value as filters test it: text (string or enum) stays bytes, as `one_of`
/// compares bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawValue<'a> {
    Integer(i64),
    Decimal {
        mantissa: i64,
        scale: u8,
    },
    Text(&'a [u8]),
    Bool(bool),
    /// A kind this build does not know (none today).
    Other,
}

/// The spec's attribute kind numbers.
pub(crate) mod wire_kind {
    pub(crate) const INTEGER: u8 = 1;
    pub(crate) const DECIMAL: u8 = 2;
    pub(crate) const STRING: u8 = 3;
    pub(crate) const BOOL: u8 = 4;
    pub(crate) const ENUM: u8 = 5;
}

impl<'a> RawAttributes<'a> {
    #[inline]
    pub(crate) fn new(attributes: &'a Attributes<'_>) -> Self {
        Self {
            rest: attributes.as_wire_bytes(),
            left: attributes.len(),
        }
    }

    /// Splits a `u16`-length-prefixed field off `bytes`: (field, rest).
    #[inline]
    fn prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let (length, rest) = bytes.split_first_chunk::<2>()?;
        rest.split_at_checked(usize::from(u16::from_le_bytes(*length)))
    }

    #[inline]
    fn read(&mut self) -> Option<RawAttribute<'a>> {
        let (key, rest) = Self::prefixed(self.rest)?;
        let (&kind, rest) = rest.split_first()?;
        let (value, rest) = match kind {
            wire_kind::INTEGER => rest.split_at_checked(8)?,
            wire_kind::DECIMAL => rest.split_at_checked(9)?,
            wire_kind::BOOL => rest.split_at_checked(1)?,
            wire_kind::STRING | wire_kind::ENUM => {
                let (text, after) = Self::prefixed(rest)?;
                (text, after)
            }
            _ => return None,
        };
        self.rest = rest;
        Some(RawAttribute { key, kind, value })
    }
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = RawAttribute<'a>;

    #[inline]
    fn next(&mut self) -> Option<RawAttribute<'a>> {
        self.left = self.left.checked_sub(1)?;
        let attribute = self.read();
        if attribute.is_none() {
            self.left = 0;
        }
        attribute
    }
}

impl<'a> RawAttribute<'a> {
    #[inline]
    fn value(&self) -> RawValue<'a> {
        let word = |bytes: &[u8]| bytes.first_chunk::<8>().map(|b| i64::from_le_bytes(*b));
        match self.kind {
            wire_kind::INTEGER => word(self.value).map_or(RawValue::Other, RawValue::Integer),
            wire_kind::DECIMAL => match (word(self.value), self.value.get(8)) {
                (Some(mantissa), Some(&scale)) => RawValue::Decimal { mantissa, scale },
                _ => RawValue::Other,
            },
            wire_kind::STRING | wire_kind::ENUM => RawValue::Text(self.value),
            wire_kind::BOOL => RawValue::Bool(self.value.first() == Some(&1)),
            _ => RawValue::Other,
        }
    }
}

/// Up to how many attributes a lead's keys are searched one by one for a filter's key
/// ([`CompiledFilter::holds_for`]); a larger map is searched by halves. Typical leads carry
/// 4 to 10.
const LINEAR_KEY_SEARCH_MAX: usize = 16;

/// Byte order of two keys, written out as the attribute decoder does: keys are at most 32
/// bytes, and an inline loop beats a call to `memcmp`.
#[inline]
fn compare_keys(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

fn compile_condition(
    key: &str,
    condition: &FilterCondition<'_>,
) -> Result<Condition, DefinitionError> {
    Ok(match condition {
        FilterCondition::IntRange { min, max } => {
            if min > max {
                return Err(DefinitionError::invalid(format!(
                    "filter {key}: int_range min {min} is above max {max}"
                )));
            }
            Condition::IntRange {
                min: *min,
                max: *max,
            }
        }
        FilterCondition::DecimalRange { min, max, scale } => {
            let (Some(min_fixed), Some(max_fixed)) =
                (to_fixed(*min, *scale), to_fixed(*max, *scale))
            else {
                return Err(DefinitionError::invalid(format!(
                    "filter {key}: decimal_range scale {scale} is above {DECIMAL_SCALE_MAX}"
                )));
            };
            if min > max {
                return Err(DefinitionError::invalid(format!(
                    "filter {key}: decimal_range min {min} is above max {max} (scale {scale})"
                )));
            }
            Condition::DecimalRange {
                min_fixed,
                max_fixed,
                min: *min,
                max: *max,
                scale: *scale,
            }
        }
        FilterCondition::OneOf { values } => {
            if values.is_empty() {
                return Err(DefinitionError::invalid(format!(
                    "filter {key}: one_of lists no values, so no lead could match"
                )));
            }
            if values.len() > FILTER_VALUES_MAX {
                return Err(DefinitionError::invalid(format!(
                    "filter {key}: one_of lists {} values, more than {FILTER_VALUES_MAX}",
                    values.len()
                )));
            }
            let mut sorted: Vec<Box<str>> = values.iter().map(|v| Box::from(&**v)).collect();
            sorted.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            // A repeated value changes nothing the filter means, so it is dropped, not refused.
            sorted.dedup();
            Condition::OneOf {
                values: sorted.into_boxed_slice(),
            }
        }
        FilterCondition::Is { value } => Condition::Is { value: *value },
        FilterCondition::Present {} => Condition::Present,
        FilterCondition::Absent {} => Condition::Absent,
    })
}

impl From<CompiledFilters> for Vec<Filter<'static>> {
    fn from(compiled: CompiledFilters) -> Self {
        compiled
            .filters
            .into_vec()
            .into_iter()
            .map(|filter| Filter {
                key: filter.key,
                condition: match filter.condition {
                    Condition::IntRange { min, max } => FilterCondition::IntRange { min, max },
                    Condition::DecimalRange {
                        min, max, scale, ..
                    } => FilterCondition::DecimalRange { min, max, scale },
                    Condition::OneOf { values } => FilterCondition::OneOf {
                        values: values
                            .into_vec()
                            .into_iter()
                            .map(|v| Cow::Owned(String::from(v)))
                            .collect(),
                    },
                    Condition::Is { value } => FilterCondition::Is { value },
                    Condition::Present => FilterCondition::Present {},
                    Condition::Absent => FilterCondition::Absent {},
                },
            })
            .collect()
    }
}

impl TryFrom<Vec<Filter<'static>>> for CompiledFilters {
    type Error = DefinitionError;

    fn try_from(filters: Vec<Filter<'static>>) -> Result<Self, DefinitionError> {
        Self::compile(&filters)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::protocol::{AttributeKind, AttributeValue, AttributesBuilder};
    use proptest::prelude::*;

    fn filter(key: &str, condition: FilterCondition<'static>) -> Filter<'static> {
        Filter {
            key: Symbol::new(key.to_owned()).unwrap(),
            condition,
        }
    }

    fn int_range(key: &str, min: i64, max: i64) -> Filter<'static> {
        filter(key, FilterCondition::IntRange { min, max })
    }

    fn decimal_range(key: &str, min: i64, max: i64, scale: u8) -> Filter<'static> {
        filter(key, FilterCondition::DecimalRange { min, max, scale })
    }

    fn one_of(key: &str, values: &[&str]) -> Filter<'static> {
        filter(
            key,
            FilterCondition::OneOf {
                values: values.iter().map(|v| Cow::Owned((*v).to_owned())).collect(),
            },
        )
    }

    fn compile(filters: &[Filter<'static>]) -> CompiledFilters {
        CompiledFilters::compile(filters).unwrap()
    }

    /// A solar lead as sellers send them.
    fn solar() -> Attributes<'static> {
        Attributes::builder()
            .integer("credit_score", 720)
            .integer("monthly_bill", 180)
            .decimal("roof_age", 125, 1)
            .bool("homeowner", true)
            .enum_value("roof", "asphalt")
            .string("utility", "Xcel Energy")
            .build()
            .unwrap()
    }

    fn one(f: Filter<'static>, attributes: &Attributes<'_>) -> bool {
        compile(&[f]).matches(attributes)
    }

    /// Whether each of `filters`, decided on its own as an auction does, holds for the lead.
    fn each_holds(filters: &[Filter<'static>], attributes: &Attributes<'_>) -> Vec<bool> {
        let lead = LeadAttributes::new(attributes);
        compile(filters)
            .predicates()
            .iter()
            .map(|filter| filter.holds_for(&lead))
            .collect()
    }

    #[test]
    fn a_filter_finds_its_key_in_a_small_and_a_large_lead() {
        // Keys of one length and of others, first, last, between and missing, in a lead
        // searched key by key and in one searched by halves; in leads held inline (up to
        // full) and in ones that allocate.
        // With "kk", `count + 1` attributes: a few, the most held inline, one more, the most
        // searched key by key, then more.
        for count in [
            3,
            LEAD_ATTRIBUTES_INLINE - 1,
            LEAD_ATTRIBUTES_INLINE,
            LINEAR_KEY_SEARCH_MAX - 1,
            LINEAR_KEY_SEARCH_MAX + 9,
        ] {
            let attributes = (0..count)
                .fold(Attributes::builder(), |b, at| {
                    b.integer(format!("k{at:02}"), i64::try_from(at).unwrap())
                })
                .integer("kk", -1)
                .build()
                .unwrap();
            let last = i64::try_from(count - 1).unwrap();
            let filters = [
                int_range("k00", 0, 0),
                int_range("k01", 2, 9),
                int_range(&format!("k{last:02}"), last, last),
                int_range("kk", -1, -1),
                int_range("k0", 0, 0),
                int_range("zz", 0, 0),
            ];
            // Compiled filters are sorted by key.
            let mut expected = vec![
                ("k00", true),
                ("k01", false),
                ("k0", false),
                ("kk", true),
                ("zz", false),
            ];
            let last_key = format!("k{last:02}");
            expected.push((last_key.as_str(), true));
            expected.sort_unstable();
            let want: Vec<bool> = expected.iter().map(|&(_, holds)| holds).collect();
            assert_eq!(
                each_holds(&filters, &attributes),
                want,
                "{count} attributes"
            );
        }
    }

    #[test]
    fn no_filters_match_everything() {
        let filters = compile(&[]);
        assert!(filters.is_empty());
        assert!(filters.matches(&solar()));
        assert!(filters.matches(&Attributes::new()));
    }

    #[test]
    fn int_range_bounds_are_inclusive() {
        let lead = solar();
        assert!(one(int_range("credit_score", 720, 800), &lead));
        assert!(one(int_range("credit_score", 600, 720), &lead));
        assert!(one(int_range("credit_score", 720, 720), &lead));
        assert!(!one(int_range("credit_score", 721, 800), &lead));
        assert!(!one(int_range("credit_score", 600, 719), &lead));
        assert!(one(int_range("credit_score", i64::MIN, i64::MAX), &lead));
    }

    #[test]
    fn int_range_refuses_other_kinds() {
        // roof_age is a decimal 12.5; even an integral decimal is not an integer.
        assert!(!one(int_range("roof_age", 0, 100), &solar()));
        let whole = Attributes::builder()
            .decimal("age", 300, 1)
            .build()
            .unwrap();
        assert!(!one(int_range("age", 0, 100), &whole));
        assert!(!one(int_range("homeowner", 0, 1), &solar()));
        assert!(!one(int_range("utility", 0, 1), &solar()));
    }

    #[test]
    fn decimal_range_compares_exactly_across_scales() {
        // 145.5 as mantissa 1455 scale 1, filter 14550 at scale 2 (= 145.50).
        let bill = Attributes::builder()
            .decimal("monthly_bill", 1455, 1)
            .build()
            .unwrap();
        assert!(one(decimal_range("monthly_bill", 14550, 20000, 2), &bill));
        assert!(one(decimal_range("monthly_bill", 0, 14550, 2), &bill));
        assert!(!one(decimal_range("monthly_bill", 14551, 20000, 2), &bill));
        assert!(!one(decimal_range("monthly_bill", 0, 14549, 2), &bill));
        // The filter coarser than the value: 145.5 against 146 at scale 0.
        assert!(!one(decimal_range("monthly_bill", 146, 200, 0), &bill));
        assert!(one(decimal_range("monthly_bill", 145, 200, 0), &bill));
        // Scale 9 against scale 0 at the edge of i64.
        let big = Attributes::builder()
            .decimal("x", i64::MAX, 0)
            .build()
            .unwrap();
        assert!(one(decimal_range("x", i64::MAX, i64::MAX, 0), &big));
        assert!(!one(decimal_range("x", i64::MIN, i64::MAX, 9), &big));
        let tiny = Attributes::builder().decimal("x", -1, 9).build().unwrap();
        assert!(one(decimal_range("x", -1, 0, 9), &tiny));
        assert!(!one(decimal_range("x", 0, 1, 0), &tiny));
    }

    #[test]
    fn decimal_range_counts_integers() {
        let lead = solar();
        // monthly_bill is the integer 180: in 99.99..=180.00 but not in 180.01..=500.
        assert!(one(decimal_range("monthly_bill", 9999, 18000, 2), &lead));
        assert!(!one(decimal_range("monthly_bill", 18001, 50000, 2), &lead));
        // roof_age 12.5 in 10..=15 at scale 0.
        assert!(one(decimal_range("roof_age", 10, 15, 0), &lead));
        assert!(!one(decimal_range("roof_age", 13, 15, 0), &lead));
        // Strings, bools and enums are not numbers.
        assert!(!one(decimal_range("utility", i64::MIN, i64::MAX, 0), &lead));
        assert!(!one(
            decimal_range("homeowner", i64::MIN, i64::MAX, 0),
            &lead
        ));
    }

    #[test]
    fn one_of_matches_strings_and_enums() {
        let lead = solar();
        assert!(one(one_of("roof", &["tile", "asphalt"]), &lead));
        assert!(!one(one_of("roof", &["tile", "metal"]), &lead));
        assert!(one(one_of("utility", &["Xcel Energy", "PG&E"]), &lead));
        // Exact bytes: no case folding.
        assert!(!one(one_of("utility", &["xcel energy"]), &lead));
        // Numbers and bools are not text, even when their text would match.
        assert!(!one(one_of("credit_score", &["720"]), &lead));
        assert!(!one(one_of("homeowner", &["true"]), &lead));
    }

    #[test]
    fn is_matches_bools_only() {
        let lead = solar();
        assert!(one(
            filter("homeowner", FilterCondition::Is { value: true }),
            &lead
        ));
        assert!(!one(
            filter("homeowner", FilterCondition::Is { value: false }),
            &lead
        ));
        assert!(!one(
            filter("credit_score", FilterCondition::Is { value: true }),
            &lead
        ));
    }

    #[test]
    fn presence() {
        let lead = solar();
        let present = |key| filter(key, FilterCondition::Present {});
        let absent = |key| filter(key, FilterCondition::Absent {});
        assert!(one(present("utility"), &lead));
        assert!(!one(present("shade"), &lead));
        assert!(one(absent("shade"), &lead));
        assert!(!one(absent("utility"), &lead));
        assert!(one(absent("anything"), &Attributes::new()));
    }

    #[test]
    fn missing_attribute_fails_every_kind_but_absent() {
        let empty = Attributes::new();
        for f in [
            int_range("a", i64::MIN, i64::MAX),
            decimal_range("a", i64::MIN, i64::MAX, 3),
            one_of("a", &["x"]),
            filter("a", FilterCondition::Is { value: true }),
            filter("a", FilterCondition::Present {}),
        ] {
            assert!(!one(f.clone(), &empty), "{f:?}");
            assert!(!one(f, &solar()));
        }
    }

    #[test]
    fn all_filters_must_hold_in_any_listed_order() {
        let lead = solar();
        let filters = [
            one_of("roof", &["asphalt"]),
            int_range("credit_score", 650, 850),
            filter("homeowner", FilterCondition::Is { value: true }),
            filter("shade", FilterCondition::Absent {}),
            decimal_range("monthly_bill", 10000, 100000, 2),
        ];
        assert!(compile(&filters).matches(&lead));
        let mut reversed = filters.to_vec();
        reversed.reverse();
        assert_eq!(compile(&reversed), compile(&filters));
        reversed.push(int_range("zzz_last", 0, 1));
        assert!(!compile(&reversed).matches(&lead));
        reversed.pop();
        reversed.push(int_range("aaa_first", 0, 1));
        assert!(!compile(&reversed).matches(&lead));
    }

    #[test]
    fn definition_errors() {
        let code =
            |filters: &[Filter<'static>]| CompiledFilters::compile(filters).unwrap_err().code;
        assert_eq!(code(&[int_range("a", 2, 1)]), ErrorCode::INVALID_DEFINITION);
        assert_eq!(
            code(&[decimal_range("a", 2, 1, 4)]),
            ErrorCode::INVALID_DEFINITION
        );
        assert_eq!(
            code(&[decimal_range("a", 1, 2, 10)]),
            ErrorCode::INVALID_DEFINITION
        );
        assert_eq!(code(&[one_of("a", &[])]), ErrorCode::INVALID_DEFINITION);
        let error = CompiledFilters::compile(&[
            int_range("credit_score", 1, 2),
            one_of("roof", &["tile"]),
            filter("credit_score", FilterCondition::Present {}),
        ])
        .unwrap_err();
        assert_eq!(error.code, ErrorCode::INVALID_DEFINITION);
        assert!(error.message.contains("credit_score"), "{error}");
        let many: Vec<_> = (0..=FILTERS_MAX)
            .map(|i| int_range(&format!("k{i}"), 0, 1))
            .collect();
        assert_eq!(code(&many), ErrorCode::INVALID_DEFINITION);
        // Equal bounds are a valid one-point range.
        assert!(CompiledFilters::compile(&[int_range("a", 5, 5)]).is_ok());
    }

    #[test]
    fn serde_round_trip_is_canonical() {
        let filters = compile(&[
            one_of("roof", &["tile", "asphalt", "tile"]),
            decimal_range("monthly_bill", 1455, 3000, 1),
            filter("shade", FilterCondition::Absent {}),
        ]);
        let json = serde_json::to_string(&filters).unwrap();
        assert!(json.starts_with(r#"[{"key":"monthly_bill""#), "{json}");
        assert!(json.contains(r#"["asphalt","tile"]"#), "{json}");
        let back: CompiledFilters = serde_json::from_str(&json).unwrap();
        assert_eq!(back, filters);
        // A snapshot with a broken definition is refused, not trusted.
        let bad = r#"[{"key":"a","condition":{"int_range":{"min":2,"max":1}}}]"#;
        assert!(serde_json::from_str::<CompiledFilters>(bad).is_err());
    }

    #[test]
    fn digest_ignores_listed_order() {
        fn digest(filters: &CompiledFilters) -> u64 {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            filters.digest_into(&mut hasher);
            hasher.finish()
        }
        let a = compile(&[int_range("a", 1, 2), one_of("b", &["x", "y"])]);
        let b = compile(&[one_of("b", &["y", "x", "y"]), int_range("a", 1, 2)]);
        let c = compile(&[int_range("a", 1, 3), one_of("b", &["x", "y"])]);
        assert_eq!(a, b);
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&c));
        // Same leads, different definitions: equality, digest and snapshot all tell them apart.
        let d = compile(&[decimal_range("a", 15, 30, 1)]);
        let e = compile(&[decimal_range("a", 150, 300, 2)]);
        assert_ne!(d, e);
        assert_ne!(digest(&d), digest(&e));
    }

    /// Nanoseconds per `matches` of five filters against a 20-attribute solar lead, holding and
    /// failing at the last filter. Run: `cargo test --release --lib
    /// engine::filters::tests::measure_matches -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement; run it in release mode"]
    fn measure_matches() {
        use std::hint::black_box;
        use std::time::Instant;
        let lead = (0..14)
            .fold(Attributes::builder(), |b, i| {
                b.integer(format!("extra_{i:02}"), i)
            })
            .integer("credit_score", 720)
            .integer("monthly_bill", 180)
            .decimal("roof_age", 125, 1)
            .bool("homeowner", true)
            .enum_value("roof", "asphalt")
            .string("utility", "Xcel Energy")
            .build()
            .unwrap();
        let holds = compile(&[
            int_range("credit_score", 650, 850),
            filter("homeowner", FilterCondition::Is { value: true }),
            decimal_range("monthly_bill", 10000, 100000, 2),
            one_of("roof", &["asphalt", "tile", "metal"]),
            decimal_range("roof_age", 0, 20, 0),
        ]);
        let fails = compile(&[
            int_range("credit_score", 650, 850),
            filter("homeowner", FilterCondition::Is { value: true }),
            decimal_range("monthly_bill", 10000, 100000, 2),
            one_of("roof", &["asphalt", "tile", "metal"]),
            decimal_range("roof_age", 0, 10, 0),
        ]);
        for (name, filters, expected) in [("holds", &holds, true), ("fails last", &fails, false)] {
            let rounds = 1_000_000u32;
            let start = Instant::now();
            for _ in 0..rounds {
                assert_eq!(black_box(filters).matches(black_box(&lead)), expected);
            }
            let ns = start.elapsed().as_nanos() / u128::from(rounds);
            eprintln!("matches, 5 filters, 20 attributes, {name}: {ns} ns");
            let start = Instant::now();
            for _ in 0..rounds {
                let prepared = LeadAttributes::new(black_box(&lead));
                black_box(&prepared);
            }
            let ns = start.elapsed().as_nanos() / u128::from(rounds);
            eprintln!("LeadAttributes::new, 20 attributes: {ns} ns");
            let prepared = LeadAttributes::new(&lead);
            let start = Instant::now();
            for _ in 0..rounds {
                assert_eq!(
                    black_box(filters).matches_lead(black_box(&prepared)),
                    expected
                );
            }
            let ns = start.elapsed().as_nanos() / u128::from(rounds);
            eprintln!("matches_lead, 5 filters, 20 attributes, {name}: {ns} ns");
            let start = Instant::now();
            for _ in 0..rounds {
                black_box(black_box(&lead).iter().count());
            }
            let ns = start.elapsed().as_nanos() / u128::from(rounds);
            eprintln!("for comparison, Attributes::iter over 20 attributes: {ns} ns");
        }
    }

    // Property test against a naive reference: per filter a `get` (no merge walk), decimals
    // compared by cross-multiplying (no common scale), one_of by a linear scan.

    fn reference(filters: &[Filter<'static>], attributes: &Attributes<'_>) -> bool {
        filters.iter().all(|f| {
            let value = attributes.get(f.key.as_str());
            match (&f.condition, value) {
                (FilterCondition::Absent {}, v) => v.is_none(),
                (_, None) => false,
                (FilterCondition::Present {}, Some(_)) => true,
                (FilterCondition::IntRange { min, max }, Some(AttributeValue::Integer(v))) => {
                    *min <= v && v <= *max
                }
                (FilterCondition::DecimalRange { min, max, scale }, Some(v)) => {
                    let (m, s) = match v {
                        AttributeValue::Integer(v) => (v, 0u8),
                        AttributeValue::Decimal { mantissa, scale } => (mantissa, scale),
                        _ => return false,
                    };
                    // m / 10^s  vs  bound / 10^scale  ⇔  m·10^scale  vs  bound·10^s.
                    let lhs = i128::from(m) * 10i128.pow(u32::from(*scale));
                    let lo = i128::from(*min) * 10i128.pow(u32::from(s));
                    let hi = i128::from(*max) * 10i128.pow(u32::from(s));
                    lo <= lhs && lhs <= hi
                }
                (
                    FilterCondition::OneOf { values },
                    Some(AttributeValue::String(v) | AttributeValue::Enum(v)),
                ) => values.iter().any(|x| x == v),
                (FilterCondition::Is { value }, Some(AttributeValue::Bool(v))) => *value == v,
                _ => false,
            }
        })
    }

    /// Few keys and few values, so filters and attributes often meet and ranges often bite.
    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "bb", "c", "d", "e", "f", "g"]).prop_map(String::from)
    }

    fn word() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["x", "y", "z", "asphalt"]).prop_map(String::from)
    }

    fn number() -> impl Strategy<Value = i64> {
        prop_oneof![-30i64..30, any::<i64>(), Just(i64::MAX), Just(i64::MIN)]
    }

    fn attributes() -> impl Strategy<Value = Attributes<'static>> {
        let value = prop_oneof![
            number().prop_map(|v| (1u8, v, 0u8, String::new(), false)),
            (number(), 0u8..=9).prop_map(|(v, s)| (2u8, v, s, String::new(), false)),
            word().prop_map(|w| (3u8, 0, 0, w, false)),
            any::<bool>().prop_map(|b| (4u8, 0, 0, String::new(), b)),
            word().prop_map(|w| (5u8, 0, 0, w, false)),
        ];
        prop::collection::btree_map(key(), value, 0..8).prop_map(|map| {
            map.into_iter()
                .fold(
                    AttributesBuilder::default(),
                    |b, (k, (kind, n, s, w, flag))| match kind {
                        1 => b.integer(k, n),
                        2 => b.decimal(k, n, s),
                        3 => b.string(k, w),
                        4 => b.bool(k, flag),
                        _ => b.enum_value(k, w),
                    },
                )
                .build()
                .unwrap()
        })
    }

    fn condition() -> impl Strategy<Value = FilterCondition<'static>> {
        prop_oneof![
            (number(), number()).prop_map(|(a, b)| FilterCondition::IntRange {
                min: a.min(b),
                max: a.max(b)
            }),
            (number(), number(), 0u8..=9).prop_map(|(a, b, scale)| {
                FilterCondition::DecimalRange {
                    min: a.min(b),
                    max: a.max(b),
                    scale,
                }
            }),
            prop::collection::vec(word(), 1..4).prop_map(|values| FilterCondition::OneOf {
                values: values.into_iter().map(Cow::Owned).collect()
            }),
            any::<bool>().prop_map(|value| FilterCondition::Is { value }),
            Just(FilterCondition::Present {}),
            Just(FilterCondition::Absent {}),
        ]
    }

    fn filters() -> impl Strategy<Value = Vec<Filter<'static>>> {
        // Unique keys (a map), then shuffled so compile's sort is exercised.
        prop::collection::btree_map(key(), condition(), 0..6)
            .prop_map(|map| {
                map.into_iter()
                    .map(|(k, condition)| filter(&k, condition))
                    .collect::<Vec<_>>()
            })
            .prop_shuffle()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn raw_walk_agrees_with_the_decoder(attributes in attributes()) {
            let raw: Vec<(Vec<u8>, u8)> = RawAttributes::new(&attributes)
                .map(|a| (a.key.to_vec(), a.kind))
                .collect();
            let decoded: Vec<(Vec<u8>, u8)> = attributes
                .iter()
                .map(|a| {
                    let kind = match a.value.kind() {
                        AttributeKind::Integer => 1,
                        AttributeKind::Decimal => 2,
                        AttributeKind::String => 3,
                        AttributeKind::Bool => 4,
                        AttributeKind::Enum => 5,
                    };
                    (a.key.as_bytes().to_vec(), kind)
                })
                .collect();
            prop_assert_eq!(raw, decoded);
        }

        #[test]
        fn matches_agrees_with_reference(filters in filters(), attributes in attributes()) {
            let compiled = CompiledFilters::compile(&filters).unwrap();
            let expected = reference(&filters, &attributes);
            prop_assert_eq!(compiled.matches(&attributes), expected);
            let lead = LeadAttributes::new(&attributes);
            prop_assert_eq!(compiled.matches_lead(&lead), expected);
            // Each filter on its own, as an auction decides the book's distinct filters.
            let each = compiled.predicates().iter().all(|filter| filter.holds_for(&lead));
            prop_assert_eq!(each, expected);
        }
    }
}
