//! The shared field types of spec section 2 and the structures every role uses: checked
//! strings (`Symbol`, `PostalCode`), codes of the outside world (`Country`, `Currency`), digests,
//! the spec's small enums, and the lead's parts (`LeadView`, `Contact`, `Consent`).
//!
//! A checked type can only hold a value the decoder accepts: its constructors validate, serde
//! deserialization goes through them, and the decoder builds them from bytes it has checked. So
//! the encoder never has to re-check a symbol's characters.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::attributes::Attributes;
use super::codes::ErrorCode;
use super::error::{DecodeError, EncodeError};
use super::wire::{Reader, WireEnum, Writer, is_postal_code, is_symbol, is_upper_alpha};
use crate::limits::{
    CERTIFICATE_ID_LEN_MAX, CITY_LEN_MAX, CONTACT_REGION_LEN_MAX, EMAIL_LEN_MAX, PAGE_URL_LEN_MAX,
    PERSON_NAME_LEN_MAX, PHONE_LEN_MAX, STREET_LEN_MAX, TEXT_VERSION_LEN_MAX, USER_AGENT_LEN_MAX,
};
use crate::limits::{POSTAL_CODE_LEN_MAX, SYMBOL_LEN_MAX};

/// A `money` value: minor units of the settlement currency, at most `MONEY_MAX` on the wire.
pub type Money = u64;

/// A `timestamp`: microseconds since the Unix epoch, UTC, leap seconds not counted.
pub type TimestampUs = u64;

/// Turns borrowed text into owned text, for the `into_owned` methods.
pub(crate) fn own(text: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(text.into_owned())
}

/// Defines a checked string type: a `Cow<str>` that a constructor has validated.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $valid:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name<'a>(Cow<'a, str>);

        impl<'a> $name<'a> {
            /// Validates `text`: `STRING_TOO_LONG` above the maximum, `INVALID_FIELD` for an
            /// empty string or a character outside the charset.
            pub fn new(text: impl Into<Cow<'a, str>>) -> Result<Self, EncodeError> {
                let text = text.into();
                if text.len() > $max {
                    return Err(EncodeError::new(ErrorCode::STRING_TOO_LONG, $field));
                }
                if !$valid(text.as_bytes()) {
                    return Err(EncodeError::new(ErrorCode::INVALID_FIELD, $field));
                }
                Ok(Self(text))
            }

            /// Wraps text the reader has already validated.
            pub(crate) fn from_checked(text: &'a str) -> Self {
                Self(Cow::Borrowed(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_owned(self) -> $name<'static> {
                $name(own(self.0))
            }

            pub(crate) fn encode(&self, w: &mut Writer<'_>, field: &'static str) -> Result<(), EncodeError> {
                w.string(&self.0, $max, field)
            }
        }

        impl std::ops::Deref for $name<'_> {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name<'_> {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'a> TryFrom<&'a str> for $name<'a> {
            type Error = EncodeError;
            fn try_from(text: &'a str) -> Result<Self, EncodeError> {
                Self::new(text)
            }
        }

        impl TryFrom<String> for $name<'static> {
            type Error = EncodeError;
            fn try_from(text: String) -> Result<Self, EncodeError> {
                Self::new(text)
            }
        }

        impl Serialize for $name<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de, 'a> Deserialize<'de> for $name<'a> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::new(text).map_err(de::Error::custom)
            }
        }
    };
}

checked_string!(
    /// A `symbol`: a non-empty `str(32)` of `a`–`z`, `0`–`9` and `_` (verticals, attribute keys,
    /// enum values).
    Symbol,
    "symbol",
    SYMBOL_LEN_MAX,
    is_symbol
);

checked_string!(
    /// A `postal_code`: a non-empty `str(16)` of upper-case ASCII letters, digits, space and `-`.
    PostalCode,
    "postal_code",
    POSTAL_CODE_LEN_MAX,
    is_postal_code
);

/// Defines a fixed-length upper-case code (`country`, `currency`).
macro_rules! alpha_code {
    ($(#[$doc:meta])* $name:ident, $length:literal, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $length]);

        impl $name {
            /// Validates `code`: exactly the right number of `A`–`Z`, else `INVALID_FIELD`.
            pub fn new(code: &str) -> Result<Self, EncodeError> {
                match <[u8; $length]>::try_from(code.as_bytes()) {
                    Ok(bytes) => Self::from_bytes(bytes),
                    Err(_) => Err(EncodeError::new(ErrorCode::INVALID_FIELD, $field)),
                }
            }

            /// Validates raw bytes.
            pub fn from_bytes(bytes: [u8; $length]) -> Result<Self, EncodeError> {
                if is_upper_alpha(&bytes) {
                    Ok(Self(bytes))
                } else {
                    Err(EncodeError::new(ErrorCode::INVALID_FIELD, $field))
                }
            }

            /// Wraps bytes the reader has already validated.
            pub(crate) const fn from_checked(bytes: [u8; $length]) -> Self {
                Self(bytes)
            }

            pub const fn as_bytes(&self) -> &[u8; $length] {
                &self.0
            }

            pub fn as_str(&self) -> &str {
                // Always ASCII by construction; the fallback only keeps this panic-free.
                std::str::from_utf8(&self.0).unwrap_or("?")
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let code = Cow::<'de, str>::deserialize(deserializer)?;
                Self::new(&code).map_err(de::Error::custom)
            }
        }
    };
}

alpha_code!(
    /// A `country`: ISO 3166-1 alpha-2, upper-case, e.g. `US`.
    Country,
    2,
    "country"
);

alpha_code!(
    /// A `currency`: ISO 4217, upper-case, e.g. `USD`.
    Currency,
    3,
    "currency"
);

/// A `hash32`: 32 raw bytes, a SHA-256 digest. JSON: 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        fn nibble(digit: u8) -> Option<u8> {
            match digit {
                b'0'..=b'9' => digit.checked_sub(b'0'),
                b'a'..=b'f' => digit.checked_sub(b'a' - 10),
                b'A'..=b'F' => digit.checked_sub(b'A' - 10),
                _ => None,
            }
        }
        let digits: &[u8; 64] = text.as_bytes().try_into().ok()?;
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let [high, low] = pair else { return None };
            *byte = (nibble(*high)? << 4) | nibble(*low)?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Display for Hash32 {
    /// Lower-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({self})")
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        Self::from_hex(&text).ok_or_else(|| de::Error::custom("a hash32 is 64 hex digits"))
    }
}

/// Defines a spec enum: a closed set of `u8` wire values, serialized by snake_case name.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl WireEnum for $name {
            #[inline]
            fn from_wire(value: u8) -> Option<Self> {
                match value {
                    $($value => Some(Self::$variant),)*
                    _ => None,
                }
            }

            #[inline]
            fn to_wire(self) -> u8 {
                match self {
                    $(Self::$variant => $value,)*
                }
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// What a session acts as (`LOGIN.role`).
    Role {
        Seller = 1,
        Buyer = 2,
        Admin = 3,
    }
);

wire_enum!(
    /// How a lead is sold: to one buyer or to several.
    SaleMode {
        Exclusive = 1,
        Shared = 2,
    }
);

wire_enum!(
    /// How a seller wants a pinged lead sold (`PING.sale_mode`).
    PingSaleMode {
        Exclusive = 1,
        Shared = 2,
        /// Exclusive only when the best exclusive price beats the sum of the best shared prices.
        Either = 3,
    }
);

wire_enum!(
    /// A buyer's answer to a delivery (`DELIVERY_ACK.outcome`).
    DeliveryOutcome {
        Accept = 1,
        Reject = 2,
    }
);

wire_enum!(
    /// The kind of an attribute's value.
    AttributeKind {
        Integer = 1,
        Decimal = 2,
        String = 3,
        Bool = 4,
        Enum = 5,
    }
);

/// `PING.shared_buyers_max` must be 0 for an exclusive sale and 1..=`SHARED_BUYERS_MAX`
/// otherwise; the decoder and encoder share this rule.
pub(crate) fn shared_buyers_max_valid(sale_mode: PingSaleMode, shared_buyers_max: u8) -> bool {
    match sale_mode {
        PingSaleMode::Exclusive => shared_buyers_max == 0,
        PingSaleMode::Shared | PingSaleMode::Either => {
            (1..=crate::limits::SHARED_BUYERS_MAX).contains(&shared_buyers_max)
        }
    }
}

/// What every matching buyer may see of a lead before it is sold (`lead_view`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadView<'a> {
    pub vertical: Symbol<'a>,
    pub country: Country,
    pub postal_code: PostalCode<'a>,
    pub attributes: Attributes<'a>,
}

impl<'a> LeadView<'a> {
    #[inline]
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            vertical: Symbol::from_checked(r.symbol("vertical")?),
            country: Country::from_checked(r.country("country")?),
            postal_code: PostalCode::from_checked(r.postal_code("postal_code")?),
            attributes: Attributes::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.vertical.encode(w, "vertical")?;
        w.bytes(self.country.as_bytes());
        self.postal_code.encode(w, "postal_code")?;
        self.attributes.encode(w);
        Ok(())
    }

    pub fn into_owned(self) -> LeadView<'static> {
        LeadView {
            vertical: self.vertical.into_owned(),
            country: self.country,
            postal_code: self.postal_code.into_owned(),
            attributes: self.attributes.into_owned(),
        }
    }
}

/// The consumer's personal data (`contact`). Travels only seller → exchange → winning buyer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact<'a> {
    pub first_name: Cow<'a, str>,
    pub last_name: Cow<'a, str>,
    /// E.164, e.g. `+13035550142`.
    pub phone: Cow<'a, str>,
    pub email: Cow<'a, str>,
    /// Street address, lines joined with `, `.
    pub street: Cow<'a, str>,
    pub city: Cow<'a, str>,
    /// State or region, e.g. `CO`.
    pub region: Cow<'a, str>,
}

impl<'a> Contact<'a> {
    #[inline]
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            first_name: Cow::Borrowed(r.string(PERSON_NAME_LEN_MAX, "first_name")?),
            last_name: Cow::Borrowed(r.string(PERSON_NAME_LEN_MAX, "last_name")?),
            phone: Cow::Borrowed(r.string(PHONE_LEN_MAX, "phone")?),
            email: Cow::Borrowed(r.string(EMAIL_LEN_MAX, "email")?),
            street: Cow::Borrowed(r.string(STREET_LEN_MAX, "street")?),
            city: Cow::Borrowed(r.string(CITY_LEN_MAX, "city")?),
            region: Cow::Borrowed(r.string(CONTACT_REGION_LEN_MAX, "region")?),
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.string(&self.first_name, PERSON_NAME_LEN_MAX, "first_name")?;
        w.string(&self.last_name, PERSON_NAME_LEN_MAX, "last_name")?;
        w.string(&self.phone, PHONE_LEN_MAX, "phone")?;
        w.string(&self.email, EMAIL_LEN_MAX, "email")?;
        w.string(&self.street, STREET_LEN_MAX, "street")?;
        w.string(&self.city, CITY_LEN_MAX, "city")?;
        w.string(&self.region, CONTACT_REGION_LEN_MAX, "region")
    }

    pub fn into_owned(self) -> Contact<'static> {
        Contact {
            first_name: own(self.first_name),
            last_name: own(self.last_name),
            phone: own(self.phone),
            email: own(self.email),
            street: own(self.street),
            city: own(self.city),
            region: own(self.region),
        }
    }
}

/// What the seller holds to show the consumer agreed to be contacted (`consent`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent<'a> {
    /// A consent certificate id or token from a consent-capture service.
    pub certificate_id: Cow<'a, str>,
    /// The version of the consent text the consumer saw.
    pub text_version: Cow<'a, str>,
    /// When the consumer gave consent (µs since the epoch).
    pub consented_at: TimestampUs,
    /// The consumer's IP address at that moment.
    pub ip: IpAddr,
    pub user_agent: Cow<'a, str>,
    pub page_url: Cow<'a, str>,
}

impl<'a> Consent<'a> {
    #[inline]
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            certificate_id: Cow::Borrowed(r.string(CERTIFICATE_ID_LEN_MAX, "certificate_id")?),
            text_version: Cow::Borrowed(r.string(TEXT_VERSION_LEN_MAX, "text_version")?),
            consented_at: r.u64("consented_at")?,
            ip: r.ip("ip")?,
            user_agent: Cow::Borrowed(r.string(USER_AGENT_LEN_MAX, "user_agent")?),
            page_url: Cow::Borrowed(r.string(PAGE_URL_LEN_MAX, "page_url")?),
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.string(
            &self.certificate_id,
            CERTIFICATE_ID_LEN_MAX,
            "certificate_id",
        )?;
        w.string(&self.text_version, TEXT_VERSION_LEN_MAX, "text_version")?;
        w.u64(self.consented_at);
        w.ip(&self.ip);
        w.string(&self.user_agent, USER_AGENT_LEN_MAX, "user_agent")?;
        w.string(&self.page_url, PAGE_URL_LEN_MAX, "page_url")
    }

    pub fn into_owned(self) -> Consent<'static> {
        Consent {
            certificate_id: own(self.certificate_id),
            text_version: own(self.text_version),
            consented_at: self.consented_at,
            ip: self.ip,
            user_agent: own(self.user_agent),
            page_url: own(self.page_url),
        }
    }
}

/// One sale of a posted lead (`POST_RESULT.receipts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The exchange's id for that sale, quoted in disputes.
    pub receipt_id: u64,
    /// The seller's share of that sale.
    pub payout: Money,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn checked_strings_validate() {
        assert_eq!(
            Symbol::new("credit_score").unwrap().as_str(),
            "credit_score"
        );
        assert_eq!(Symbol::new("").unwrap_err().code, ErrorCode::INVALID_FIELD);
        assert_eq!(
            Symbol::new("Solar").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            Symbol::new("a".repeat(33)).unwrap_err().code,
            ErrorCode::STRING_TOO_LONG
        );
        assert!(Symbol::new("a".repeat(32)).is_ok());
        assert!(PostalCode::new("SW1A 1AA").is_ok());
        assert_eq!(
            PostalCode::new("sw1a").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(Country::new("US").unwrap().as_str(), "US");
        assert_eq!(
            Country::new("USA").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
        assert_eq!(
            Currency::new("usd").unwrap_err().code,
            ErrorCode::INVALID_FIELD
        );
    }

    #[test]
    fn hash32_hex() {
        let hash = Hash32([0xAB; 32]);
        let text = hash.to_string();
        assert_eq!(text, "ab".repeat(32));
        assert_eq!(Hash32::from_hex(&text), Some(hash));
        assert_eq!(Hash32::from_hex(&"AB".repeat(32)), Some(hash));
        assert_eq!(Hash32::from_hex("ab"), None);
        assert_eq!(Hash32::from_hex(&"zz".repeat(32)), None);
    }

    #[test]
    fn shared_buyers_max_rule() {
        assert!(shared_buyers_max_valid(PingSaleMode::Exclusive, 0));
        assert!(!shared_buyers_max_valid(PingSaleMode::Exclusive, 1));
        assert!(!shared_buyers_max_valid(PingSaleMode::Either, 0));
        assert!(shared_buyers_max_valid(PingSaleMode::Shared, 8));
        assert!(!shared_buyers_max_valid(PingSaleMode::Shared, 9));
    }
}
