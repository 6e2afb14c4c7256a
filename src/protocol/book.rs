//! The definitions admin messages carry (spec section 7): verticals' required attributes and
//! ping trees, sellers, buyers and campaigns with their territory, filters, schedule, caps and
//! pricing.
//!
//! The codec checks each field's own domain (`INVALID_FIELD`: a zero id where the spec says
//! non-zero, `margin_bps` above 10,000, a weekday outside 1..=7, ...). Rules that relate two
//! fields (`bid_min <= bid_max`, `open_minute < close_minute`) are the exchange's to check and
//! answer with `INVALID_DEFINITION` (702), as `codes.md` says.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, de};

use super::attributes::decode_scale;
use super::codes::ErrorCode;
use super::error::{DecodeError, EncodeError};
use super::types::{AttributeKind, Country, Money, PostalCode, SaleMode, Symbol, own, wire_enum};
use super::wire::{Reader, WireEnum, Writer};
use crate::limits::{
    BASIS_POINTS_MAX, FILTER_VALUE_LEN_MAX, TERRITORY_REGION_LEN_MAX, TIME_ZONE_LEN_MAX,
};
use crate::limits::{
    DECIMAL_SCALE_MAX, FILTER_VALUES_MAX, FILTERS_MAX, NAME_LEN_MAX, SCHEDULE_WINDOWS_MAX,
    SECRET_LEN_MAX, SELLER_BUYER_LIST_MAX, TERRITORY_RULES_MAX, VERTICALS_PER_SELLER_MAX,
};

wire_enum!(
    /// How a `*_PUT` treats an existing id.
    PutMode {
        /// `ALREADY_EXISTS` (701) if the id exists.
        Create = 1,
        /// `NOT_FOUND` (700) if it does not.
        Update = 2,
        Upsert = 3,
    }
);

wire_enum!(
    /// Whether a seller, buyer or campaign takes part.
    Status {
        Active = 1,
        Paused = 2,
    }
);

wire_enum!(
    /// A tier's selection strategy in a vertical's ping tree.
    Strategy {
        HighestBid = 1,
        SecondPrice = 2,
        RoundRobin = 3,
        Weighted = 4,
        FirstToAccept = 5,
    }
);

wire_enum!(
    /// How a buyer takes its leads.
    DeliveryMode {
        /// Connected: bids and acknowledges deliveries.
        Live = 1,
        /// Fixed price only; deliveries wait until it connects.
        Stored = 2,
    }
);

wire_enum!(
    /// A campaign's role in the auction.
    CampaignRole {
        Primary = 1,
        /// Buys only leads no primary campaign took, at its fixed price.
        Fallback = 2,
    }
);

wire_enum!(
    /// Whether a territory rule adds or removes codes.
    Effect {
        Include = 1,
        Exclude = 2,
    }
);

wire_enum!(
    /// What `SET_STATUS` changes.
    StatusTarget {
        Seller = 1,
        Buyer = 2,
        Campaign = 3,
    }
);

wire_enum!(
    /// Which id a `TRACE_REQUEST` gives.
    TraceKey {
        Lead = 1,
        Ping = 2,
    }
);

/// A `u64` id the spec says is non-zero; 0 is `INVALID_FIELD`.
fn decode_id(r: &mut Reader<'_>, field: &'static str) -> Result<u64, DecodeError> {
    let remaining = r.remaining();
    let id = r.u64(field)?;
    if id == 0 {
        return Err(r.error_at(ErrorCode::INVALID_FIELD, field, remaining));
    }
    Ok(id)
}

fn encode_id(w: &mut Writer<'_>, id: u64, field: &'static str) -> Result<(), EncodeError> {
    if id == 0 {
        return Err(EncodeError::new(ErrorCode::INVALID_FIELD, field));
    }
    w.u64(id);
    Ok(())
}

fn decode_symbol<'a>(r: &mut Reader<'a>, field: &'static str) -> Result<Symbol<'a>, DecodeError> {
    r.symbol(field).map(Symbol::from_checked)
}

fn decode_secret<'a>(r: &mut Reader<'a>) -> Result<Option<Cow<'a, str>>, DecodeError> {
    r.option("secret", |r| {
        r.string(SECRET_LEN_MAX, "secret").map(Cow::Borrowed)
    })
}

fn encode_secret(w: &mut Writer<'_>, secret: Option<&Cow<'_, str>>) -> Result<(), EncodeError> {
    w.option(secret, |w, secret| {
        w.string(secret, SECRET_LEN_MAX, "secret")
    })
}

/// An attribute every lead of a vertical must carry (`VERTICAL_PUT.required`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredAttribute<'a> {
    pub key: Symbol<'a>,
    pub kind: AttributeKind,
}

impl<'a> RequiredAttribute<'a> {
    /// Smallest encoding: a one-byte symbol and the kind.
    pub(crate) const SIZE_MIN: usize = 4;

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            key: decode_symbol(r, "key")?,
            kind: r.enumeration("kind")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.key.encode(w, "key")?;
        w.enumeration(self.kind);
        Ok(())
    }

    pub fn into_owned(self) -> RequiredAttribute<'static> {
        RequiredAttribute {
            key: self.key.into_owned(),
            kind: self.kind,
        }
    }
}

/// One level of a vertical's ping tree (`VERTICAL_PUT.tiers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Tiers are asked in ascending order.
    pub tier: u8,
    pub strategy: Strategy,
}

impl Tier {
    pub(crate) const SIZE: usize = 2;

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            tier: r.u8("tier")?,
            strategy: r.enumeration("strategy")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.tier);
        w.enumeration(self.strategy);
    }
}

/// The lowest sale price a seller accepts for a vertical (`seller.floors`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Floor<'a> {
    pub vertical: Symbol<'a>,
    pub price: Money,
}

impl<'a> Floor<'a> {
    pub(crate) const SIZE_MIN: usize = 3 + 8;

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            vertical: decode_symbol(r, "vertical")?,
            price: r.money("price")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.vertical.encode(w, "vertical")?;
        w.money(self.price, "price")
    }

    pub fn into_owned(self) -> Floor<'static> {
        Floor {
            vertical: self.vertical.into_owned(),
            price: self.price,
        }
    }
}

/// A seller's definition (`SELLER_PUT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seller<'a> {
    /// Non-zero.
    pub seller_id: u64,
    pub name: Cow<'a, str>,
    pub status: Status,
    /// The login secret; absent on update: unchanged.
    pub secret: Option<Cow<'a, str>>,
    /// Verticals the seller may sell; empty: none.
    pub verticals: Vec<Symbol<'a>>,
    /// The exchange's margin in basis points of the sale price, 0..=10,000.
    pub margin_bps: u16,
    /// A fixed margin per sale, taken after `margin_bps`.
    pub margin_fixed: Money,
    pub floors: Vec<Floor<'a>>,
    /// If not empty, only these buyers may buy this seller's leads.
    pub buyers_allowed: Vec<u64>,
    /// These buyers may never buy them.
    pub buyers_blocked: Vec<u64>,
}

impl<'a> Seller<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let seller_id = decode_id(r, "seller_id")?;
        let name = Cow::Borrowed(r.string(NAME_LEN_MAX, "name")?);
        let status = r.enumeration("status")?;
        let secret = decode_secret(r)?;
        let verticals = r.list(VERTICALS_PER_SELLER_MAX, "verticals", 3, |r| {
            decode_symbol(r, "verticals")
        })?;
        let margin_remaining = r.remaining();
        let margin_bps = r.u16("margin_bps")?;
        if margin_bps > BASIS_POINTS_MAX {
            return Err(r.error_at(ErrorCode::INVALID_FIELD, "margin_bps", margin_remaining));
        }
        Ok(Self {
            seller_id,
            name,
            status,
            secret,
            verticals,
            margin_bps,
            margin_fixed: r.money("margin_fixed")?,
            floors: r.list(
                VERTICALS_PER_SELLER_MAX,
                "floors",
                Floor::SIZE_MIN,
                Floor::decode,
            )?,
            buyers_allowed: r.list(SELLER_BUYER_LIST_MAX, "buyers_allowed", 8, |r| {
                r.u64("buyers_allowed")
            })?,
            buyers_blocked: r.list(SELLER_BUYER_LIST_MAX, "buyers_blocked", 8, |r| {
                r.u64("buyers_blocked")
            })?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        encode_id(w, self.seller_id, "seller_id")?;
        w.string(&self.name, NAME_LEN_MAX, "name")?;
        w.enumeration(self.status);
        encode_secret(w, self.secret.as_ref())?;
        w.list(
            &self.verticals,
            VERTICALS_PER_SELLER_MAX,
            "verticals",
            |w, v| v.encode(w, "verticals"),
        )?;
        if self.margin_bps > BASIS_POINTS_MAX {
            return Err(EncodeError::new(ErrorCode::INVALID_FIELD, "margin_bps"));
        }
        w.u16(self.margin_bps);
        w.money(self.margin_fixed, "margin_fixed")?;
        w.list(
            &self.floors,
            VERTICALS_PER_SELLER_MAX,
            "floors",
            |w, floor| floor.encode(w),
        )?;
        w.list(
            &self.buyers_allowed,
            SELLER_BUYER_LIST_MAX,
            "buyers_allowed",
            |w, id| {
                w.u64(*id);
                Ok(())
            },
        )?;
        w.list(
            &self.buyers_blocked,
            SELLER_BUYER_LIST_MAX,
            "buyers_blocked",
            |w, id| {
                w.u64(*id);
                Ok(())
            },
        )
    }

    pub fn into_owned(self) -> Seller<'static> {
        Seller {
            seller_id: self.seller_id,
            name: own(self.name),
            status: self.status,
            secret: self.secret.map(own),
            verticals: self.verticals.into_iter().map(Symbol::into_owned).collect(),
            margin_bps: self.margin_bps,
            margin_fixed: self.margin_fixed,
            floors: self.floors.into_iter().map(Floor::into_owned).collect(),
            buyers_allowed: self.buyers_allowed,
            buyers_blocked: self.buyers_blocked,
        }
    }
}

/// A buyer's definition (`BUYER_PUT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buyer<'a> {
    /// Non-zero.
    pub buyer_id: u64,
    pub name: Cow<'a, str>,
    pub status: Status,
    /// As for sellers.
    pub secret: Option<Cow<'a, str>>,
    /// IANA time zone name, e.g. `America/Denver`; schedules and cap periods follow it.
    pub time_zone: Cow<'a, str>,
    /// The most the buyer spends per local day; 0: no limit.
    pub budget_day: Money,
    /// Per local calendar month; 0: no limit.
    pub budget_month: Money,
    pub delivery: DeliveryMode,
    /// How long a live buyer has to answer a `LEAD_DELIVERY`.
    pub accept_within_ms: u32,
}

impl<'a> Buyer<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            buyer_id: decode_id(r, "buyer_id")?,
            name: Cow::Borrowed(r.string(NAME_LEN_MAX, "name")?),
            status: r.enumeration("status")?,
            secret: decode_secret(r)?,
            time_zone: Cow::Borrowed(r.string(TIME_ZONE_LEN_MAX, "time_zone")?),
            budget_day: r.money("budget_day")?,
            budget_month: r.money("budget_month")?,
            delivery: r.enumeration("delivery")?,
            accept_within_ms: r.u32("accept_within_ms")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        encode_id(w, self.buyer_id, "buyer_id")?;
        w.string(&self.name, NAME_LEN_MAX, "name")?;
        w.enumeration(self.status);
        encode_secret(w, self.secret.as_ref())?;
        w.string(&self.time_zone, TIME_ZONE_LEN_MAX, "time_zone")?;
        w.money(self.budget_day, "budget_day")?;
        w.money(self.budget_month, "budget_month")?;
        w.enumeration(self.delivery);
        w.u32(self.accept_within_ms);
        Ok(())
    }

    pub fn into_owned(self) -> Buyer<'static> {
        Buyer {
            buyer_id: self.buyer_id,
            name: own(self.name),
            status: self.status,
            secret: self.secret.map(own),
            time_zone: own(self.time_zone),
            budget_day: self.budget_day,
            budget_month: self.budget_month,
            delivery: self.delivery,
            accept_within_ms: self.accept_within_ms,
        }
    }
}

/// One rule of a campaign's territory: `effect`, then the area it names.
/// JSON: `{"effect": "include", "rule": {"radius": {"country": "US", "center": "80331", "radius_miles": 25}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerritoryRule<'a> {
    pub effect: Effect,
    pub rule: TerritoryArea<'a>,
}

/// The area a territory rule names (its `kind` and fields).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TerritoryArea<'a> {
    /// Kind 1: that exact code.
    Postal {
        country: Country,
        postal_code: PostalCode<'a>,
    },
    /// Kind 2: codes that start with `prefix` (ZIP3: `803`).
    Prefix {
        country: Country,
        prefix: PostalCode<'a>,
    },
    /// Kind 3: codes in that state or region (`CO`).
    Region {
        country: Country,
        region: Cow<'a, str>,
    },
    /// Kind 4: codes whose centroid is within `radius_miles` of the center's.
    Radius {
        country: Country,
        center: PostalCode<'a>,
        radius_miles: u16,
    },
    /// Kind 5: every code in the country.
    Country { country: Country },
}

impl<'a> TerritoryRule<'a> {
    /// Smallest encoding: effect, kind and a country.
    pub(crate) const SIZE_MIN: usize = 4;

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let effect = r.enumeration("effect")?;
        let kind_remaining = r.remaining();
        let rule = match r.u8("kind")? {
            1 => TerritoryArea::Postal {
                country: Country::from_checked(r.country("country")?),
                postal_code: PostalCode::from_checked(r.postal_code("postal_code")?),
            },
            2 => TerritoryArea::Prefix {
                country: Country::from_checked(r.country("country")?),
                prefix: PostalCode::from_checked(r.postal_code("prefix")?),
            },
            3 => TerritoryArea::Region {
                country: Country::from_checked(r.country("country")?),
                region: Cow::Borrowed(r.string(TERRITORY_REGION_LEN_MAX, "region")?),
            },
            4 => TerritoryArea::Radius {
                country: Country::from_checked(r.country("country")?),
                center: PostalCode::from_checked(r.postal_code("center")?),
                radius_miles: r.u16("radius_miles")?,
            },
            5 => TerritoryArea::Country {
                country: Country::from_checked(r.country("country")?),
            },
            _ => return Err(r.error_at(ErrorCode::UNKNOWN_ENUM_VALUE, "kind", kind_remaining)),
        };
        Ok(Self { effect, rule })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.enumeration(self.effect);
        match &self.rule {
            TerritoryArea::Postal {
                country,
                postal_code,
            } => {
                w.u8(1);
                w.bytes(country.as_bytes());
                postal_code.encode(w, "postal_code")
            }
            TerritoryArea::Prefix { country, prefix } => {
                w.u8(2);
                w.bytes(country.as_bytes());
                prefix.encode(w, "prefix")
            }
            TerritoryArea::Region { country, region } => {
                w.u8(3);
                w.bytes(country.as_bytes());
                w.string(region, TERRITORY_REGION_LEN_MAX, "region")
            }
            TerritoryArea::Radius {
                country,
                center,
                radius_miles,
            } => {
                w.u8(4);
                w.bytes(country.as_bytes());
                center.encode(w, "center")?;
                w.u16(*radius_miles);
                Ok(())
            }
            TerritoryArea::Country { country } => {
                w.u8(5);
                w.bytes(country.as_bytes());
                Ok(())
            }
        }
    }

    pub fn into_owned(self) -> TerritoryRule<'static> {
        let rule = match self.rule {
            TerritoryArea::Postal {
                country,
                postal_code,
            } => TerritoryArea::Postal {
                country,
                postal_code: postal_code.into_owned(),
            },
            TerritoryArea::Prefix { country, prefix } => TerritoryArea::Prefix {
                country,
                prefix: prefix.into_owned(),
            },
            TerritoryArea::Region { country, region } => TerritoryArea::Region {
                country,
                region: own(region),
            },
            TerritoryArea::Radius {
                country,
                center,
                radius_miles,
            } => TerritoryArea::Radius {
                country,
                center: center.into_owned(),
                radius_miles,
            },
            TerritoryArea::Country { country } => TerritoryArea::Country { country },
        };
        TerritoryRule {
            effect: self.effect,
            rule,
        }
    }
}

/// A campaign filter: an attribute `key` and the condition it must meet.
/// JSON: `{"key": "credit_score", "condition": {"int_range": {"min": 600, "max": 850}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter<'a> {
    pub key: Symbol<'a>,
    pub condition: FilterCondition<'a>,
}

/// What a filter requires of its attribute (its `kind` and fields). Variants without fields are
/// written `{"present": {}}` so that every union in the JSON has the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FilterCondition<'a> {
    /// Kind 1: an integer in `min..=max`.
    IntRange { min: i64, max: i64 },
    /// Kind 2: a number in `min`×10^-scale ..= `max`×10^-scale (integers count); scale 0..=9.
    DecimalRange { min: i64, max: i64, scale: u8 },
    /// Kind 3: a string or enum equal to one of `values`.
    OneOf { values: Vec<Cow<'a, str>> },
    /// Kind 4: a bool equal to `value`.
    Is { value: bool },
    /// Kind 5: the attribute is present.
    Present {},
    /// Kind 6: the attribute is absent.
    Absent {},
}

impl<'a> Filter<'a> {
    /// Smallest encoding: a one-byte symbol and the kind.
    pub(crate) const SIZE_MIN: usize = 4;

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let key = decode_symbol(r, "key")?;
        let kind_remaining = r.remaining();
        let condition = match r.u8("kind")? {
            1 => FilterCondition::IntRange {
                min: r.i64("min")?,
                max: r.i64("max")?,
            },
            2 => FilterCondition::DecimalRange {
                min: r.i64("min")?,
                max: r.i64("max")?,
                scale: decode_scale(r)?,
            },
            3 => FilterCondition::OneOf {
                values: r.list(FILTER_VALUES_MAX, "values", 2, |r| {
                    r.string(FILTER_VALUE_LEN_MAX, "values").map(Cow::Borrowed)
                })?,
            },
            4 => FilterCondition::Is {
                value: r.bool("value")?,
            },
            5 => FilterCondition::Present {},
            6 => FilterCondition::Absent {},
            _ => return Err(r.error_at(ErrorCode::UNKNOWN_ENUM_VALUE, "kind", kind_remaining)),
        };
        Ok(Self { key, condition })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.key.encode(w, "key")?;
        match &self.condition {
            FilterCondition::IntRange { min, max } => {
                w.u8(1);
                w.i64(*min);
                w.i64(*max);
            }
            FilterCondition::DecimalRange { min, max, scale } => {
                if *scale > DECIMAL_SCALE_MAX {
                    return Err(EncodeError::new(ErrorCode::INVALID_FIELD, "scale"));
                }
                w.u8(2);
                w.i64(*min);
                w.i64(*max);
                w.u8(*scale);
            }
            FilterCondition::OneOf { values } => {
                w.u8(3);
                w.list(values, FILTER_VALUES_MAX, "values", |w, value| {
                    w.string(value, FILTER_VALUE_LEN_MAX, "values")
                })?;
            }
            FilterCondition::Is { value } => {
                w.u8(4);
                w.bool(*value);
            }
            FilterCondition::Present {} => w.u8(5),
            FilterCondition::Absent {} => w.u8(6),
        }
        Ok(())
    }

    pub fn into_owned(self) -> Filter<'static> {
        let condition = match self.condition {
            FilterCondition::IntRange { min, max } => FilterCondition::IntRange { min, max },
            FilterCondition::DecimalRange { min, max, scale } => {
                FilterCondition::DecimalRange { min, max, scale }
            }
            FilterCondition::OneOf { values } => FilterCondition::OneOf {
                values: values.into_iter().map(own).collect(),
            },
            FilterCondition::Is { value } => FilterCondition::Is { value },
            FilterCondition::Present {} => FilterCondition::Present {},
            FilterCondition::Absent {} => FilterCondition::Absent {},
        };
        Filter {
            key: self.key.into_owned(),
            condition,
        }
    }
}

/// A weekly open-hours window, in the buyer's time zone. The codec checks `weekday`;
/// `open_minute < close_minute <= 1440` is the exchange's check (`INVALID_DEFINITION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// 1 Monday … 7 Sunday.
    pub weekday: u8,
    /// Minutes after local midnight.
    pub open_minute: u16,
    pub close_minute: u16,
}

impl Window {
    pub(crate) const SIZE: usize = 5;

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let weekday_remaining = r.remaining();
        let weekday = r.u8("weekday")?;
        if !(1..=7).contains(&weekday) {
            return Err(r.error_at(ErrorCode::INVALID_FIELD, "weekday", weekday_remaining));
        }
        Ok(Self {
            weekday,
            open_minute: r.u16("open_minute")?,
            close_minute: r.u16("close_minute")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if !(1..=7).contains(&self.weekday) {
            return Err(EncodeError::new(ErrorCode::INVALID_FIELD, "weekday"));
        }
        w.u8(self.weekday);
        w.u16(self.open_minute);
        w.u16(self.close_minute);
        Ok(())
    }
}

/// A campaign's caps: lead counts, then money; 0 means no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    pub leads_hour: u32,
    pub leads_day: u32,
    pub leads_week: u32,
    pub leads_month: u32,
    pub leads_total: u32,
    pub spend_day: Money,
    pub spend_month: Money,
}

impl Caps {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            leads_hour: r.u32("leads_hour")?,
            leads_day: r.u32("leads_day")?,
            leads_week: r.u32("leads_week")?,
            leads_month: r.u32("leads_month")?,
            leads_total: r.u32("leads_total")?,
            spend_day: r.money("spend_day")?,
            spend_month: r.money("spend_month")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u32(self.leads_hour);
        w.u32(self.leads_day);
        w.u32(self.leads_week);
        w.u32(self.leads_month);
        w.u32(self.leads_total);
        w.money(self.spend_day, "spend_day")?;
        w.money(self.spend_month, "spend_month")
    }
}

/// The sale modes a campaign buys: a `u8` bit set, 1 exclusive, 2 shared; 0 or another bit is
/// `INVALID_FIELD`. JSON: the integer (1, 2 or 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SaleModes(u8);

impl SaleModes {
    pub const EXCLUSIVE: Self = Self(1);
    pub const SHARED: Self = Self(2);
    pub const BOTH: Self = Self(3);

    /// Validates a bit set.
    pub fn new(bits: u8) -> Result<Self, EncodeError> {
        if (1..=3).contains(&bits) {
            Ok(Self(bits))
        } else {
            Err(EncodeError::new(ErrorCode::INVALID_FIELD, "sale_modes"))
        }
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub fn contains(self, mode: SaleMode) -> bool {
        self.0 & mode.to_wire() != 0
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let remaining = r.remaining();
        let bits = r.u8("sale_modes")?;
        Self::new(bits).map_err(|_| r.error_at(ErrorCode::INVALID_FIELD, "sale_modes", remaining))
    }
}

impl fmt::Debug for SaleModes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            1 => "exclusive",
            2 => "shared",
            _ => "exclusive|shared",
        };
        write!(f, "SaleModes({name})")
    }
}

impl<'de> Deserialize<'de> for SaleModes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(u8::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// How a campaign prices leads (`kind` and fields).
/// JSON: `{"fixed": {"exclusive_price": 4500, "shared_price": 1800}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Pricing {
    /// Kind 1: the price for the sale mode sold.
    Fixed {
        exclusive_price: Money,
        shared_price: Money,
    },
    /// Kind 2: the buyer's bid, clamped to `bid_min..=bid_max`, then adjusted by `adjust_bps`
    /// (-10,000..=10,000).
    LiveBid {
        bid_min: Money,
        bid_max: Money,
        adjust_bps: i16,
    },
}

/// `adjust_bps` is a share of the bid between -100 % and +100 %.
fn adjust_bps_valid(adjust_bps: i16) -> bool {
    adjust_bps.unsigned_abs() <= BASIS_POINTS_MAX
}

impl Pricing {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind_remaining = r.remaining();
        match r.u8("kind")? {
            1 => Ok(Self::Fixed {
                exclusive_price: r.money("exclusive_price")?,
                shared_price: r.money("shared_price")?,
            }),
            2 => {
                let bid_min = r.money("bid_min")?;
                let bid_max = r.money("bid_max")?;
                let adjust_remaining = r.remaining();
                let adjust_bps = r.i16("adjust_bps")?;
                if !adjust_bps_valid(adjust_bps) {
                    return Err(r.error_at(
                        ErrorCode::INVALID_FIELD,
                        "adjust_bps",
                        adjust_remaining,
                    ));
                }
                Ok(Self::LiveBid {
                    bid_min,
                    bid_max,
                    adjust_bps,
                })
            }
            _ => Err(r.error_at(ErrorCode::UNKNOWN_ENUM_VALUE, "kind", kind_remaining)),
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            Self::Fixed {
                exclusive_price,
                shared_price,
            } => {
                w.u8(1);
                w.money(*exclusive_price, "exclusive_price")?;
                w.money(*shared_price, "shared_price")
            }
            Self::LiveBid {
                bid_min,
                bid_max,
                adjust_bps,
            } => {
                w.u8(2);
                w.money(*bid_min, "bid_min")?;
                w.money(*bid_max, "bid_max")?;
                if !adjust_bps_valid(*adjust_bps) {
                    return Err(EncodeError::new(ErrorCode::INVALID_FIELD, "adjust_bps"));
                }
                w.i16(*adjust_bps);
                Ok(())
            }
        }
    }
}

/// A campaign's definition (`CAMPAIGN_PUT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign<'a> {
    /// Non-zero.
    pub campaign_id: u64,
    /// The buyer that owns it.
    pub buyer_id: u64,
    pub name: Cow<'a, str>,
    pub status: Status,
    pub vertical: Symbol<'a>,
    pub role: CampaignRole,
    /// A lead matches when at least one include rule matches and no exclude rule does.
    pub territory: Vec<TerritoryRule<'a>>,
    /// All must hold.
    pub filters: Vec<Filter<'a>>,
    /// When it buys, in the buyer's time zone; empty: always.
    pub schedule: Vec<Window>,
    pub caps: Caps,
    pub sale_modes: SaleModes,
    pub pricing: Pricing,
    /// Its tier in the vertical's ping tree.
    pub tier: u8,
    /// Its weight for the weighted strategy, 1 or more.
    pub weight: u16,
    /// A lead whose contact hash this campaign bought within this many seconds is not offered
    /// to it again; 0: no check.
    pub duplicate_lookback_s: u32,
}

impl<'a> Campaign<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let campaign_id = decode_id(r, "campaign_id")?;
        let buyer_id = r.u64("buyer_id")?;
        let name = Cow::Borrowed(r.string(NAME_LEN_MAX, "name")?);
        let status = r.enumeration("status")?;
        let vertical = decode_symbol(r, "vertical")?;
        let role = r.enumeration("role")?;
        let territory = r.list(
            TERRITORY_RULES_MAX,
            "territory",
            TerritoryRule::SIZE_MIN,
            TerritoryRule::decode,
        )?;
        let filters = r.list(FILTERS_MAX, "filters", Filter::SIZE_MIN, Filter::decode)?;
        let schedule = r.list(
            SCHEDULE_WINDOWS_MAX,
            "schedule",
            Window::SIZE,
            Window::decode,
        )?;
        let caps = Caps::decode(r)?;
        let sale_modes = SaleModes::decode(r)?;
        let pricing = Pricing::decode(r)?;
        let tier = r.u8("tier")?;
        let weight_remaining = r.remaining();
        let weight = r.u16("weight")?;
        if weight == 0 {
            return Err(r.error_at(ErrorCode::INVALID_FIELD, "weight", weight_remaining));
        }
        Ok(Self {
            campaign_id,
            buyer_id,
            name,
            status,
            vertical,
            role,
            territory,
            filters,
            schedule,
            caps,
            sale_modes,
            pricing,
            tier,
            weight,
            duplicate_lookback_s: r.u32("duplicate_lookback_s")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        encode_id(w, self.campaign_id, "campaign_id")?;
        w.u64(self.buyer_id);
        w.string(&self.name, NAME_LEN_MAX, "name")?;
        w.enumeration(self.status);
        self.vertical.encode(w, "vertical")?;
        w.enumeration(self.role);
        w.list(
            &self.territory,
            TERRITORY_RULES_MAX,
            "territory",
            |w, rule| rule.encode(w),
        )?;
        w.list(&self.filters, FILTERS_MAX, "filters", |w, filter| {
            filter.encode(w)
        })?;
        w.list(
            &self.schedule,
            SCHEDULE_WINDOWS_MAX,
            "schedule",
            |w, window| window.encode(w),
        )?;
        self.caps.encode(w)?;
        w.u8(self.sale_modes.bits());
        self.pricing.encode(w)?;
        w.u8(self.tier);
        if self.weight == 0 {
            return Err(EncodeError::new(ErrorCode::INVALID_FIELD, "weight"));
        }
        w.u16(self.weight);
        w.u32(self.duplicate_lookback_s);
        Ok(())
    }

    pub fn into_owned(self) -> Campaign<'static> {
        Campaign {
            campaign_id: self.campaign_id,
            buyer_id: self.buyer_id,
            name: own(self.name),
            status: self.status,
            vertical: self.vertical.into_owned(),
            role: self.role,
            territory: self
                .territory
                .into_iter()
                .map(TerritoryRule::into_owned)
                .collect(),
            filters: self.filters.into_iter().map(Filter::into_owned).collect(),
            schedule: self.schedule,
            caps: self.caps,
            sale_modes: self.sale_modes,
            pricing: self.pricing,
            tier: self.tier,
            weight: self.weight,
            duplicate_lookback_s: self.duplicate_lookback_s,
        }
    }
}
