//! Every message of spec sections 4–8: the `MessageType` numbers, one struct per message with
//! its fields in wire order, and the `Message` enum that holds any of them.
//!
//! Each struct decodes its body from a [`Reader`] (borrowing strings from the frame) and encodes
//! it to a [`Writer`], checking the same rules in both directions so that the encoder never emits
//! what a conforming receiver would refuse.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::book::{
    Buyer, Campaign, PutMode, RequiredAttribute, Seller, Status, StatusTarget, Tier, TraceKey,
};
use super::codes::{ErrorCode, TraceEventKind};
use super::error::{DecodeError, EncodeError};
use super::types::{
    Consent, Contact, Currency, DeliveryOutcome, Hash32, LeadView, Money, PingSaleMode, Receipt,
    Role, SaleMode, Symbol, TimestampUs, own, shared_buyers_max_valid,
};
use super::wire::{Reader, Writer};
use crate::limits::{
    CLIENT_NAME_LEN_MAX, MESSAGE_TEXT_LEN_MAX, SECRET_LEN_MAX, SHARED_BUYERS_MAX,
    STATS_COUNTERS_MAX, STATS_LATENCIES_MAX, TIERS_MAX, TRACE_EVENTS_MAX, VERTICALS_PER_SELLER_MAX,
};
use crate::limits::{STATS_NAME_LEN_MAX, TRACE_DETAIL_LEN_MAX};

/// Defines `MessageType`, `Message` and the per-type dispatch from one table, so that a message
/// cannot be added to one and forgotten in another.
macro_rules! messages {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) = $code:literal, $name:literal;)*) => {
        /// The header's `message_type` (spec section 1).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[repr(u16)]
        pub enum MessageType {
            $($(#[$doc])* #[serde(rename = $name)] $variant = $code,)*
        }

        impl MessageType {
            /// The type for a wire value, or `None` if version 1 does not define it.
            #[inline]
            pub const fn from_u16(value: u16) -> Option<Self> {
                match value {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The wire value.
            #[inline]
            pub const fn as_u16(self) -> u16 {
                self as u16
            }

            /// The spec's name, e.g. `PING_RESULT`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// Every message type, in wire-value order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];
        }

        /// Any message. JSON: internally tagged by the spec's name, e.g.
        /// `{"type": "BID", "auction_id": 1, "campaign_id": 2, "price": 4500}`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum Message<'a> {
            $($(#[$doc])* #[serde(rename = $name)] $variant($ty),)*
        }

        impl<'a> Message<'a> {
            /// The header type this message is sent with.
            pub fn message_type(&self) -> MessageType {
                match self {
                    $(Self::$variant(_) => MessageType::$variant,)*
                }
            }

            /// Copies every borrowed string, so the message outlives the frame it came from.
            pub fn into_owned(self) -> Message<'static> {
                match self {
                    $(Self::$variant(message) => Message::$variant(message.into_owned()),)*
                }
            }

            /// Reads the body of a message of type `message_type`. Does not check for trailing
            /// bytes; the frame decoder does.
            #[inline]
            pub(crate) fn decode_body(message_type: MessageType, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                match message_type {
                    $(MessageType::$variant => <$ty>::decode(r).map(Self::$variant),)*
                }
            }

            /// Writes the body, refusing what a receiver would refuse.
            pub(crate) fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                match self {
                    $(Self::$variant(message) => message.encode(w),)*
                }
            }
        }

        $(
            impl<'a> From<$ty> for Message<'a> {
                fn from(message: $ty) -> Self {
                    Self::$variant(message)
                }
            }
        )*
    };
}

messages! {
    Login(Login<'a>) = 0x0001, "LOGIN";
    LoginAccepted(LoginAccepted) = 0x0002, "LOGIN_ACCEPTED";
    LoginRejected(LoginRejected<'a>) = 0x0003, "LOGIN_REJECTED";
    Heartbeat(Heartbeat) = 0x0004, "HEARTBEAT";
    HeartbeatAck(HeartbeatAck) = 0x0005, "HEARTBEAT_ACK";
    Goodbye(Goodbye<'a>) = 0x0006, "GOODBYE";
    GoodbyeAck(GoodbyeAck) = 0x0007, "GOODBYE_ACK";
    Error(Error<'a>) = 0x0008, "ERROR";
    Ping(Ping<'a>) = 0x0101, "PING";
    PingResult(PingResult<'a>) = 0x0102, "PING_RESULT";
    Post(Post<'a>) = 0x0103, "POST";
    PostResult(PostResult<'a>) = 0x0104, "POST_RESULT";
    DirectPost(DirectPost<'a>) = 0x0105, "DIRECT_POST";
    PingOffer(PingOffer<'a>) = 0x0201, "PING_OFFER";
    Bid(Bid) = 0x0202, "BID";
    NoBid(NoBid) = 0x0203, "NO_BID";
    AuctionWon(AuctionWon) = 0x0204, "AUCTION_WON";
    AuctionLost(AuctionLost) = 0x0205, "AUCTION_LOST";
    LeadDelivery(LeadDelivery<'a>) = 0x0206, "LEAD_DELIVERY";
    DeliveryAck(DeliveryAck) = 0x0207, "DELIVERY_ACK";
    VerticalPut(VerticalPut<'a>) = 0x0301, "VERTICAL_PUT";
    VerticalRemove(VerticalRemove<'a>) = 0x0302, "VERTICAL_REMOVE";
    SellerPut(SellerPut<'a>) = 0x0303, "SELLER_PUT";
    SellerRemove(SellerRemove) = 0x0304, "SELLER_REMOVE";
    BuyerPut(BuyerPut<'a>) = 0x0305, "BUYER_PUT";
    BuyerRemove(BuyerRemove) = 0x0306, "BUYER_REMOVE";
    CampaignPut(CampaignPut<'a>) = 0x0307, "CAMPAIGN_PUT";
    CampaignRemove(CampaignRemove) = 0x0308, "CAMPAIGN_REMOVE";
    SetStatus(SetStatus) = 0x0309, "SET_STATUS";
    AdminOk(AdminOk) = 0x030A, "ADMIN_OK";
    StatsRequest(StatsRequest) = 0x030B, "STATS_REQUEST";
    Stats(Stats<'a>) = 0x030C, "STATS";
    TraceRequest(TraceRequest) = 0x030D, "TRACE_REQUEST";
    Trace(Trace<'a>) = 0x030E, "TRACE";
}

/// A `code` field: any `u16`, since codes are an open set.
#[inline]
fn decode_code(r: &mut Reader<'_>, field: &'static str) -> Result<ErrorCode, DecodeError> {
    r.u16(field).map(ErrorCode)
}

/// A `list<money>(max)` or other list that must not be empty: the count is checked against its
/// maximum (`LIST_TOO_LONG`), then against zero (`INVALID_FIELD`), before any element is read.
#[inline]
fn decode_non_empty_list<'a, T>(
    r: &mut Reader<'a>,
    max: usize,
    field: &'static str,
    element_size_min: usize,
    mut element: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let remaining = r.remaining();
    let count = r.count(max, field)?;
    if count == 0 {
        return Err(r.error_at(ErrorCode::INVALID_FIELD, field, remaining));
    }
    let mut items = Vec::with_capacity(r.capacity(count, element_size_min));
    for _ in 0..count {
        items.push(element(r)?);
    }
    Ok(items)
}

fn encode_non_empty_list<T>(
    w: &mut Writer<'_>,
    items: &[T],
    max: usize,
    field: &'static str,
    element: impl FnMut(&mut Writer<'_>, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    if items.is_empty() {
        return Err(EncodeError::new(ErrorCode::INVALID_FIELD, field));
    }
    w.list(items, max, field, element)
}

#[inline]
fn decode_hash(r: &mut Reader<'_>, field: &'static str) -> Result<Option<Hash32>, DecodeError> {
    r.option(field, |r| r.array::<32>(field).map(Hash32))
}

fn encode_hash(w: &mut Writer<'_>, hash: Option<&Hash32>) -> Result<(), EncodeError> {
    w.option(hash, |w, hash| {
        w.bytes(&hash.0);
        Ok(())
    })
}

/// For messages without borrowed data: `into_owned` is the identity, so `Message::into_owned`
/// can treat every variant alike.
macro_rules! owned_already {
    ($($ty:ident),*) => {
        $(impl $ty {
            pub fn into_owned(self) -> Self {
                self
            }
        })*
    };
}

owned_already!(
    LoginAccepted,
    Heartbeat,
    HeartbeatAck,
    GoodbyeAck,
    Bid,
    NoBid,
    AuctionWon,
    AuctionLost,
    DeliveryAck,
    SellerRemove,
    BuyerRemove,
    CampaignRemove,
    SetStatus,
    AdminOk,
    StatsRequest,
    TraceRequest
);

// ---------------------------------------------------------------------------------------------
// Session (section 4)

/// `LOGIN` (0x0001): the first frame of every session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login<'a> {
    pub role: Role,
    /// The seller's, buyer's or admin's id.
    pub principal_id: u64,
    /// The principal's secret, sent only inside this message.
    pub secret: Cow<'a, str>,
    pub version_min: u8,
    pub version_max: u8,
    /// The interval the client asks for; 0: the server's default.
    pub heartbeat_interval_ms: u32,
    /// Buyers: the last `LEAD_DELIVERY` processed (0 if none). Other roles send 0.
    pub last_delivery_seq: u64,
    /// Free text for the server's logs, e.g. `acme-seller/2.1`.
    pub client_name: Cow<'a, str>,
}

impl<'a> Login<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            role: r.enumeration("role")?,
            principal_id: r.u64("principal_id")?,
            secret: Cow::Borrowed(r.string(SECRET_LEN_MAX, "secret")?),
            version_min: r.u8("version_min")?,
            version_max: r.u8("version_max")?,
            heartbeat_interval_ms: r.u32("heartbeat_interval_ms")?,
            last_delivery_seq: r.u64("last_delivery_seq")?,
            client_name: Cow::Borrowed(r.string(CLIENT_NAME_LEN_MAX, "client_name")?),
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.enumeration(self.role);
        w.u64(self.principal_id);
        w.string(&self.secret, SECRET_LEN_MAX, "secret")?;
        w.u8(self.version_min);
        w.u8(self.version_max);
        w.u32(self.heartbeat_interval_ms);
        w.u64(self.last_delivery_seq);
        w.string(&self.client_name, CLIENT_NAME_LEN_MAX, "client_name")
    }

    pub fn into_owned(self) -> Login<'static> {
        Login {
            role: self.role,
            principal_id: self.principal_id,
            secret: own(self.secret),
            version_min: self.version_min,
            version_max: self.version_max,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            last_delivery_seq: self.last_delivery_seq,
            client_name: own(self.client_name),
        }
    }
}

/// `LOGIN_ACCEPTED` (0x0002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginAccepted {
    /// The server's id for this session, for logs and support.
    pub session_id: u64,
    /// The negotiated version; every later frame carries it.
    pub version: u8,
    /// The interval both sides use.
    pub heartbeat_interval_ms: u32,
    /// The largest `frame_length` the server accepts and sends.
    pub frame_length_max: u32,
    /// The most unanswered requests the server processes at once.
    pub in_flight_max: u32,
    /// The settlement currency of every `money` field.
    pub currency: Currency,
    /// The server's clock when it accepted.
    pub server_time: TimestampUs,
}

impl LoginAccepted {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            session_id: r.u64("session_id")?,
            version: r.u8("version")?,
            heartbeat_interval_ms: r.u32("heartbeat_interval_ms")?,
            frame_length_max: r.u32("frame_length_max")?,
            in_flight_max: r.u32("in_flight_max")?,
            currency: Currency::from_checked(r.currency("currency")?),
            server_time: r.u64("server_time")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.session_id);
        w.u8(self.version);
        w.u32(self.heartbeat_interval_ms);
        w.u32(self.frame_length_max);
        w.u32(self.in_flight_max);
        w.bytes(self.currency.as_bytes());
        w.u64(self.server_time);
        Ok(())
    }
}

/// Defines a message of a `code` then a `str(256)` message text (`LOGIN_REJECTED`, `GOODBYE`,
/// `ERROR`), which differ only in the code's field name.
macro_rules! code_and_text {
    ($(#[$doc:meta])* $name:ident, $code_field:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name<'a> {
            pub $code_field: ErrorCode,
            /// A sentence for a human; never contact data.
            pub message: Cow<'a, str>,
        }

        impl<'a> $name<'a> {
            pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                Ok(Self {
                    $code_field: decode_code(r, stringify!($code_field))?,
                    message: Cow::Borrowed(r.string(MESSAGE_TEXT_LEN_MAX, "message")?),
                })
            }

            pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                w.u16(self.$code_field.0);
                w.string(&self.message, MESSAGE_TEXT_LEN_MAX, "message")
            }

            pub fn into_owned(self) -> $name<'static> {
                $name { $code_field: self.$code_field, message: own(self.message) }
            }
        }
    };
}

code_and_text!(
    /// `LOGIN_REJECTED` (0x0003): the server closes the connection after sending it.
    LoginRejected,
    reason
);

code_and_text!(
    /// `GOODBYE` (0x0006): orderly end; `reason` 0 for a plain logout.
    Goodbye,
    reason
);

code_and_text!(
    /// `ERROR` (0x0008): answers a request that could not be processed, with its correlation id
    /// (0 when the frame could not be read far enough to know it).
    Error,
    code
);

/// Defines a message whose body is one `timestamp` named `sent_at`.
macro_rules! sent_at {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The heartbeat sender's clock; the ack echoes it, so the sender can measure RTT.
            pub sent_at: TimestampUs,
        }

        impl $name {
            pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self { sent_at: r.u64("sent_at")? })
            }

            pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                w.u64(self.sent_at);
                Ok(())
            }
        }
    };
}

sent_at!(
    /// `HEARTBEAT` (0x0004).
    Heartbeat
);

sent_at!(
    /// `HEARTBEAT_ACK` (0x0005).
    HeartbeatAck
);

/// Defines a message with an empty body.
macro_rules! empty_body {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        /// A unit struct; JSON carries only the message's `type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        pub struct $name;

        impl $name {
            pub(crate) fn decode(_: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self)
            }

            pub(crate) fn encode(&self, _: &mut Writer<'_>) -> Result<(), EncodeError> {
                Ok(())
            }
        }
    };
}

empty_body!(
    /// `GOODBYE_ACK` (0x0007): empty body.
    GoodbyeAck
);

empty_body!(
    /// `STATS_REQUEST` (0x030B): empty body.
    StatsRequest
);

// ---------------------------------------------------------------------------------------------
// Seller (section 5)

/// `PING` (0x0101): offer a lead's anonymized view for sale.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping<'a> {
    /// The seller's own id for this lead; a retried ping with the same non-zero token gets the
    /// first ping's result. 0: no token.
    pub client_token: u64,
    pub lead: LeadView<'a>,
    pub phone_hash: Option<Hash32>,
    pub email_hash: Option<Hash32>,
    pub sale_mode: PingSaleMode,
    /// 0 when `sale_mode` is exclusive, 1..=`SHARED_BUYERS_MAX` otherwise.
    pub shared_buyers_max: u8,
    /// The seller's deadline, from the exchange's receipt of the ping.
    pub timeout_ms: u32,
}

impl<'a> Ping<'a> {
    #[inline]
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let client_token = r.u64("client_token")?;
        let lead = LeadView::decode(r)?;
        let phone_hash = decode_hash(r, "phone_hash")?;
        let email_hash = decode_hash(r, "email_hash")?;
        let sale_mode = r.enumeration("sale_mode")?;
        let shared_remaining = r.remaining();
        let shared_buyers_max = r.u8("shared_buyers_max")?;
        if !shared_buyers_max_valid(sale_mode, shared_buyers_max) {
            return Err(r.error_at(
                ErrorCode::INVALID_FIELD,
                "shared_buyers_max",
                shared_remaining,
            ));
        }
        let timeout_ms = r.u32("timeout_ms")?;
        Ok(Self {
            client_token,
            lead,
            phone_hash,
            email_hash,
            sale_mode,
            shared_buyers_max,
            timeout_ms,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.client_token);
        self.lead.encode(w)?;
        encode_hash(w, self.phone_hash.as_ref())?;
        encode_hash(w, self.email_hash.as_ref())?;
        w.enumeration(self.sale_mode);
        if !shared_buyers_max_valid(self.sale_mode, self.shared_buyers_max) {
            return Err(EncodeError::new(
                ErrorCode::INVALID_FIELD,
                "shared_buyers_max",
            ));
        }
        w.u8(self.shared_buyers_max);
        w.u32(self.timeout_ms);
        Ok(())
    }

    pub fn into_owned(self) -> Ping<'static> {
        Ping {
            client_token: self.client_token,
            lead: self.lead.into_owned(),
            phone_hash: self.phone_hash,
            email_hash: self.email_hash,
            sale_mode: self.sale_mode,
            shared_buyers_max: self.shared_buyers_max,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// `PING_RESULT` (0x0102): the exchange's answer to a `PING`.
///
/// `payouts` is a `Cow` slice so that the server can encode a result from its own arrays
/// without copying; decoding allocates it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingResult<'a> {
    /// The exchange's id for this ping; 0 when it was rejected before an id was given.
    pub ping_id: u64,
    pub outcome: PingOutcome<'a>,
}

/// The `outcome` union of `PING_RESULT`.
/// JSON: `{"offer": {"sale_mode": "shared", "payouts": [3150, 2800], "post_within_ms": 30000}}`
/// or `{"no_sale": {"reason": 401}}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PingOutcome<'a> {
    /// Outcome 1.
    Offer {
        /// What the exchange will sell.
        sale_mode: SaleMode,
        /// What the seller is paid per buyer, after the margin; at least one entry.
        payouts: Cow<'a, [Money]>,
        /// The offer expires this long after the seller receives it.
        post_within_ms: u32,
    },
    /// Outcome 2.
    NoSale {
        /// A pre-ping rejection (3xx) or no sale (4xx).
        reason: ErrorCode,
    },
}

impl<'a> PingResult<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let ping_id = r.u64("ping_id")?;
        let outcome_remaining = r.remaining();
        let outcome = match r.u8("outcome")? {
            1 => PingOutcome::Offer {
                sale_mode: r.enumeration("sale_mode")?,
                payouts: Cow::Owned(decode_non_empty_list(
                    r,
                    usize::from(SHARED_BUYERS_MAX),
                    "payouts",
                    8,
                    |r| r.money("payouts"),
                )?),
                post_within_ms: r.u32("post_within_ms")?,
            },
            2 => PingOutcome::NoSale {
                reason: decode_code(r, "reason")?,
            },
            _ => {
                return Err(r.error_at(
                    ErrorCode::UNKNOWN_ENUM_VALUE,
                    "outcome",
                    outcome_remaining,
                ));
            }
        };
        Ok(Self { ping_id, outcome })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.ping_id);
        match &self.outcome {
            PingOutcome::Offer {
                sale_mode,
                payouts,
                post_within_ms,
            } => {
                w.u8(1);
                w.enumeration(*sale_mode);
                encode_non_empty_list(
                    w,
                    payouts,
                    usize::from(SHARED_BUYERS_MAX),
                    "payouts",
                    |w, payout| w.money(*payout, "payouts"),
                )?;
                w.u32(*post_within_ms);
            }
            PingOutcome::NoSale { reason } => {
                w.u8(2);
                w.u16(reason.0);
            }
        }
        Ok(())
    }

    pub fn into_owned(self) -> PingResult<'static> {
        let outcome = match self.outcome {
            PingOutcome::Offer {
                sale_mode,
                payouts,
                post_within_ms,
            } => PingOutcome::Offer {
                sale_mode,
                payouts: Cow::Owned(payouts.into_owned()),
                post_within_ms,
            },
            PingOutcome::NoSale { reason } => PingOutcome::NoSale { reason },
        };
        PingResult {
            ping_id: self.ping_id,
            outcome,
        }
    }
}

/// `POST` (0x0103): sell the pinged lead by sending its contact record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Post<'a> {
    /// From `PING_RESULT`.
    pub ping_id: u64,
    pub contact: Contact<'a>,
    pub consent: Consent<'a>,
}

impl<'a> Post<'a> {
    #[inline]
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            ping_id: r.u64("ping_id")?,
            contact: Contact::decode(r)?,
            consent: Consent::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.ping_id);
        self.contact.encode(w)?;
        self.consent.encode(w)
    }

    pub fn into_owned(self) -> Post<'static> {
        Post {
            ping_id: self.ping_id,
            contact: self.contact.into_owned(),
            consent: self.consent.into_owned(),
        }
    }
}

/// `POST_RESULT` (0x0104): the answer to `POST` and `DIRECT_POST`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostResult<'a> {
    /// The ping this answers (for `DIRECT_POST`, the id the exchange gave it; 0 if rejected before).
    pub ping_id: u64,
    /// The exchange's id for the lead; 0 if none was created.
    pub lead_id: u64,
    pub outcome: PostOutcome<'a>,
}

/// The `outcome` union of `POST_RESULT`.
/// JSON: `{"sold": {"sale_mode": "exclusive", "payout_total": 3150, "receipts": [{"receipt_id": 9, "payout": 3150}]}}`
/// or `{"unsold": {"reason": 501}}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PostOutcome<'a> {
    /// Outcome 1.
    Sold {
        sale_mode: SaleMode,
        /// What the seller is paid in all.
        payout_total: Money,
        /// One per buying buyer, at least one.
        receipts: Cow<'a, [Receipt]>,
    },
    /// Outcome 2.
    Unsold {
        /// 3xx, 4xx or 5xx.
        reason: ErrorCode,
    },
}

impl<'a> PostResult<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let ping_id = r.u64("ping_id")?;
        let lead_id = r.u64("lead_id")?;
        let outcome_remaining = r.remaining();
        let outcome = match r.u8("outcome")? {
            1 => PostOutcome::Sold {
                sale_mode: r.enumeration("sale_mode")?,
                payout_total: r.money("payout_total")?,
                receipts: Cow::Owned(decode_non_empty_list(
                    r,
                    usize::from(SHARED_BUYERS_MAX),
                    "receipts",
                    16,
                    |r| {
                        Ok(Receipt {
                            receipt_id: r.u64("receipt_id")?,
                            payout: r.money("payout")?,
                        })
                    },
                )?),
            },
            2 => PostOutcome::Unsold {
                reason: decode_code(r, "reason")?,
            },
            _ => {
                return Err(r.error_at(
                    ErrorCode::UNKNOWN_ENUM_VALUE,
                    "outcome",
                    outcome_remaining,
                ));
            }
        };
        Ok(Self {
            ping_id,
            lead_id,
            outcome,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.ping_id);
        w.u64(self.lead_id);
        match &self.outcome {
            PostOutcome::Sold {
                sale_mode,
                payout_total,
                receipts,
            } => {
                w.u8(1);
                w.enumeration(*sale_mode);
                w.money(*payout_total, "payout_total")?;
                encode_non_empty_list(
                    w,
                    receipts,
                    usize::from(SHARED_BUYERS_MAX),
                    "receipts",
                    |w, receipt| {
                        w.u64(receipt.receipt_id);
                        w.money(receipt.payout, "payout")
                    },
                )?;
            }
            PostOutcome::Unsold { reason } => {
                w.u8(2);
                w.u16(reason.0);
            }
        }
        Ok(())
    }

    pub fn into_owned(self) -> PostResult<'static> {
        let outcome = match self.outcome {
            PostOutcome::Sold {
                sale_mode,
                payout_total,
                receipts,
            } => PostOutcome::Sold {
                sale_mode,
                payout_total,
                receipts: Cow::Owned(receipts.into_owned()),
            },
            PostOutcome::Unsold { reason } => PostOutcome::Unsold { reason },
        };
        PostResult {
            ping_id: self.ping_id,
            lead_id: self.lead_id,
            outcome,
        }
    }
}

/// `DIRECT_POST` (0x0105): ping and post in one request. The fields of `PING`, in order, then
/// `contact` and `consent`. JSON: the ping's fields flattened beside `contact` and `consent`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DirectPost<'a> {
    #[serde(flatten)]
    pub ping: Ping<'a>,
    pub contact: Contact<'a>,
    pub consent: Consent<'a>,
}

impl<'a> DirectPost<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            ping: Ping::decode(r)?,
            contact: Contact::decode(r)?,
            consent: Consent::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.ping.encode(w)?;
        self.contact.encode(w)?;
        self.consent.encode(w)
    }

    pub fn into_owned(self) -> DirectPost<'static> {
        DirectPost {
            ping: self.ping.into_owned(),
            contact: self.contact.into_owned(),
            consent: self.consent.into_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Buyer (section 6)

/// `PING_OFFER` (0x0201): the exchange asks a campaign for a bid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingOffer<'a> {
    pub auction_id: u64,
    /// The buyer's campaign that matched.
    pub campaign_id: u64,
    pub lead: LeadView<'a>,
    /// What is being sold to this campaign.
    pub sale_mode: SaleMode,
    /// The lowest bid that can win.
    pub price_floor: Money,
    /// Answer within this time of receiving the offer; later bids are ignored.
    pub bid_within_ms: u32,
}

impl<'a> PingOffer<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            auction_id: r.u64("auction_id")?,
            campaign_id: r.u64("campaign_id")?,
            lead: LeadView::decode(r)?,
            sale_mode: r.enumeration("sale_mode")?,
            price_floor: r.money("price_floor")?,
            bid_within_ms: r.u32("bid_within_ms")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.auction_id);
        w.u64(self.campaign_id);
        self.lead.encode(w)?;
        w.enumeration(self.sale_mode);
        w.money(self.price_floor, "price_floor")?;
        w.u32(self.bid_within_ms);
        Ok(())
    }

    pub fn into_owned(self) -> PingOffer<'static> {
        PingOffer {
            auction_id: self.auction_id,
            campaign_id: self.campaign_id,
            lead: self.lead.into_owned(),
            sale_mode: self.sale_mode,
            price_floor: self.price_floor,
            bid_within_ms: self.bid_within_ms,
        }
    }
}

/// `BID` (0x0202): the answer to a `PING_OFFER`, with the offer's correlation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bid {
    pub auction_id: u64,
    pub campaign_id: u64,
    /// What the buyer pays if it wins.
    pub price: Money,
}

impl Bid {
    #[inline]
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            auction_id: r.u64("auction_id")?,
            campaign_id: r.u64("campaign_id")?,
            price: r.money("price")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.auction_id);
        w.u64(self.campaign_id);
        w.money(self.price, "price")
    }
}

/// Defines a buyer message of `auction_id`, `campaign_id` and a `reason` code.
macro_rules! auction_reason {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub auction_id: u64,
            pub campaign_id: u64,
            pub reason: ErrorCode,
        }

        impl $name {
            #[inline]
            pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self {
                    auction_id: r.u64("auction_id")?,
                    campaign_id: r.u64("campaign_id")?,
                    reason: decode_code(r, "reason")?,
                })
            }

            pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                w.u64(self.auction_id);
                w.u64(self.campaign_id);
                w.u16(self.reason.0);
                Ok(())
            }
        }
    };
}

auction_reason!(
    /// `NO_BID` (0x0203): the other answer to a `PING_OFFER`; `reason` 6xx.
    NoBid
);

auction_reason!(
    /// `AUCTION_LOST` (0x0205), notice: the bid did not win, or the won lead was not delivered.
    AuctionLost
);

/// `AUCTION_WON` (0x0204), notice: the buyer's bid or fixed price won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuctionWon {
    pub auction_id: u64,
    pub campaign_id: u64,
    /// What the buyer will pay on delivery.
    pub price: Money,
    pub sale_mode: SaleMode,
}

impl AuctionWon {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            auction_id: r.u64("auction_id")?,
            campaign_id: r.u64("campaign_id")?,
            price: r.money("price")?,
            sale_mode: r.enumeration("sale_mode")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.auction_id);
        w.u64(self.campaign_id);
        w.money(self.price, "price")?;
        w.enumeration(self.sale_mode);
        Ok(())
    }
}

/// `LEAD_DELIVERY` (0x0206): the full lead, sent only to a buyer that won it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadDelivery<'a> {
    /// This buyer's delivery sequence number: 1, 2, 3, … never reused.
    pub delivery_seq: u64,
    pub lead_id: u64,
    /// The auction the buyer won.
    pub auction_id: u64,
    pub campaign_id: u64,
    /// What the buyer pays.
    pub price: Money,
    pub sale_mode: SaleMode,
    pub lead: LeadView<'a>,
    pub contact: Contact<'a>,
    pub consent: Consent<'a>,
    /// When the exchange recorded the handoff, as its journal holds it.
    pub delivered_at: TimestampUs,
    /// Answer `DELIVERY_ACK` within this time or the lead goes to the next buyer.
    pub accept_within_ms: u32,
}

impl<'a> LeadDelivery<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            delivery_seq: r.u64("delivery_seq")?,
            lead_id: r.u64("lead_id")?,
            auction_id: r.u64("auction_id")?,
            campaign_id: r.u64("campaign_id")?,
            price: r.money("price")?,
            sale_mode: r.enumeration("sale_mode")?,
            lead: LeadView::decode(r)?,
            contact: Contact::decode(r)?,
            consent: Consent::decode(r)?,
            delivered_at: r.u64("delivered_at")?,
            accept_within_ms: r.u32("accept_within_ms")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.delivery_seq);
        w.u64(self.lead_id);
        w.u64(self.auction_id);
        w.u64(self.campaign_id);
        w.money(self.price, "price")?;
        w.enumeration(self.sale_mode);
        self.lead.encode(w)?;
        self.contact.encode(w)?;
        self.consent.encode(w)?;
        w.u64(self.delivered_at);
        w.u32(self.accept_within_ms);
        Ok(())
    }

    pub fn into_owned(self) -> LeadDelivery<'static> {
        LeadDelivery {
            delivery_seq: self.delivery_seq,
            lead_id: self.lead_id,
            auction_id: self.auction_id,
            campaign_id: self.campaign_id,
            price: self.price,
            sale_mode: self.sale_mode,
            lead: self.lead.into_owned(),
            contact: self.contact.into_owned(),
            consent: self.consent.into_owned(),
            delivered_at: self.delivered_at,
            accept_within_ms: self.accept_within_ms,
        }
    }
}

/// `DELIVERY_ACK` (0x0207): the answer to a `LEAD_DELIVERY`, with its correlation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryAck {
    pub delivery_seq: u64,
    pub lead_id: u64,
    pub outcome: DeliveryOutcome,
    /// 0 when accepted; why rejected (62x) otherwise.
    pub reason: ErrorCode,
}

impl DeliveryAck {
    #[inline]
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            delivery_seq: r.u64("delivery_seq")?,
            lead_id: r.u64("lead_id")?,
            outcome: r.enumeration("outcome")?,
            reason: decode_code(r, "reason")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.delivery_seq);
        w.u64(self.lead_id);
        w.enumeration(self.outcome);
        w.u16(self.reason.0);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Admin (section 7)

/// `VERTICAL_PUT` (0x0301).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerticalPut<'a> {
    pub mode: PutMode,
    pub vertical: Symbol<'a>,
    /// Attributes every lead of this vertical must carry.
    pub required: Vec<RequiredAttribute<'a>>,
    /// The ping tree; a tier not listed uses highest_bid.
    pub tiers: Vec<Tier>,
}

impl<'a> VerticalPut<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            mode: r.enumeration("mode")?,
            vertical: Symbol::from_checked(r.symbol("vertical")?),
            required: r.list(
                VERTICALS_PER_SELLER_MAX,
                "required",
                RequiredAttribute::SIZE_MIN,
                RequiredAttribute::decode,
            )?,
            tiers: r.list(TIERS_MAX, "tiers", Tier::SIZE, Tier::decode)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.enumeration(self.mode);
        self.vertical.encode(w, "vertical")?;
        w.list(
            &self.required,
            VERTICALS_PER_SELLER_MAX,
            "required",
            |w, required| required.encode(w),
        )?;
        w.list(&self.tiers, TIERS_MAX, "tiers", |w, tier| {
            tier.encode(w);
            Ok(())
        })
    }

    pub fn into_owned(self) -> VerticalPut<'static> {
        VerticalPut {
            mode: self.mode,
            vertical: self.vertical.into_owned(),
            required: self
                .required
                .into_iter()
                .map(RequiredAttribute::into_owned)
                .collect(),
            tiers: self.tiers,
        }
    }
}

/// `VERTICAL_REMOVE` (0x0302).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerticalRemove<'a> {
    pub vertical: Symbol<'a>,
}

impl<'a> VerticalRemove<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            vertical: Symbol::from_checked(r.symbol("vertical")?),
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.vertical.encode(w, "vertical")
    }

    pub fn into_owned(self) -> VerticalRemove<'static> {
        VerticalRemove {
            vertical: self.vertical.into_owned(),
        }
    }
}

/// Defines a `*_PUT` message: `mode`, then the definition under the field name the spec's
/// prose uses ("`mode` then a `seller`").
macro_rules! put {
    ($(#[$doc:meta])* $name:ident, $field:ident: $definition:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name<'a> {
            pub mode: PutMode,
            pub $field: $definition<'a>,
        }

        impl<'a> $name<'a> {
            pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                Ok(Self { mode: r.enumeration("mode")?, $field: $definition::decode(r)? })
            }

            pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                w.enumeration(self.mode);
                self.$field.encode(w)
            }

            pub fn into_owned(self) -> $name<'static> {
                $name { mode: self.mode, $field: self.$field.into_owned() }
            }
        }
    };
}

put!(
    /// `SELLER_PUT` (0x0303).
    SellerPut,
    seller: Seller
);

put!(
    /// `BUYER_PUT` (0x0305).
    BuyerPut,
    buyer: Buyer
);

put!(
    /// `CAMPAIGN_PUT` (0x0307).
    CampaignPut,
    campaign: Campaign
);

/// Defines a message whose body is one `u64` id.
macro_rules! one_id {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub $field: u64,
        }

        impl $name {
            pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self { $field: r.u64(stringify!($field))? })
            }

            pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                w.u64(self.$field);
                Ok(())
            }
        }
    };
}

one_id!(
    /// `SELLER_REMOVE` (0x0304).
    SellerRemove,
    seller_id
);

one_id!(
    /// `BUYER_REMOVE` (0x0306).
    BuyerRemove,
    buyer_id
);

one_id!(
    /// `CAMPAIGN_REMOVE` (0x0308).
    CampaignRemove,
    campaign_id
);

one_id!(
    /// `ADMIN_OK` (0x030A): the version of the book after the change.
    AdminOk,
    book_version
);

/// `SET_STATUS` (0x0309): pause or resume without changing anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    pub target: StatusTarget,
    pub id: u64,
    pub status: Status,
}

impl SetStatus {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            target: r.enumeration("target")?,
            id: r.u64("id")?,
            status: r.enumeration("status")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.enumeration(self.target);
        w.u64(self.id);
        w.enumeration(self.status);
        Ok(())
    }
}

/// One counter of `STATS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counter<'a> {
    pub name: Cow<'a, str>,
    pub value: u64,
}

impl Counter<'_> {
    pub fn into_owned(self) -> Counter<'static> {
        Counter {
            name: own(self.name),
            value: self.value,
        }
    }
}

/// One latency series of `STATS`, in microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency<'a> {
    pub name: Cow<'a, str>,
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Latency<'_> {
    pub fn into_owned(self) -> Latency<'static> {
        Latency {
            name: own(self.name),
            count: self.count,
            p50_us: self.p50_us,
            p90_us: self.p90_us,
            p99_us: self.p99_us,
            p999_us: self.p999_us,
            max_us: self.max_us,
        }
    }
}

/// `STATS` (0x030C).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats<'a> {
    pub uptime_ms: u64,
    pub counters: Vec<Counter<'a>>,
    pub latencies: Vec<Latency<'a>>,
}

impl<'a> Stats<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            uptime_ms: r.u64("uptime_ms")?,
            counters: r.list(STATS_COUNTERS_MAX, "counters", 2 + 8, |r| {
                Ok(Counter {
                    name: Cow::Borrowed(r.string(STATS_NAME_LEN_MAX, "name")?),
                    value: r.u64("value")?,
                })
            })?,
            latencies: r.list(STATS_LATENCIES_MAX, "latencies", 2 + 6 * 8, |r| {
                Ok(Latency {
                    name: Cow::Borrowed(r.string(STATS_NAME_LEN_MAX, "name")?),
                    count: r.u64("count")?,
                    p50_us: r.u64("p50_us")?,
                    p90_us: r.u64("p90_us")?,
                    p99_us: r.u64("p99_us")?,
                    p999_us: r.u64("p999_us")?,
                    max_us: r.u64("max_us")?,
                })
            })?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.uptime_ms);
        w.list(
            &self.counters,
            STATS_COUNTERS_MAX,
            "counters",
            |w, counter| {
                w.string(&counter.name, STATS_NAME_LEN_MAX, "name")?;
                w.u64(counter.value);
                Ok(())
            },
        )?;
        w.list(
            &self.latencies,
            STATS_LATENCIES_MAX,
            "latencies",
            |w, latency| {
                w.string(&latency.name, STATS_NAME_LEN_MAX, "name")?;
                for value in [
                    latency.count,
                    latency.p50_us,
                    latency.p90_us,
                    latency.p99_us,
                    latency.p999_us,
                    latency.max_us,
                ] {
                    w.u64(value);
                }
                Ok(())
            },
        )
    }

    pub fn into_owned(self) -> Stats<'static> {
        Stats {
            uptime_ms: self.uptime_ms,
            counters: self.counters.into_iter().map(Counter::into_owned).collect(),
            latencies: self
                .latencies
                .into_iter()
                .map(Latency::into_owned)
                .collect(),
        }
    }
}

/// `TRACE_REQUEST` (0x030D).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    /// Which id follows.
    pub key: TraceKey,
    pub id: u64,
}

impl TraceRequest {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            key: r.enumeration("key")?,
            id: r.u64("id")?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.enumeration(self.key);
        w.u64(self.id);
        Ok(())
    }
}

/// One event of a lead's life (`TRACE.events`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEvent<'a> {
    pub at: TimestampUs,
    pub kind: TraceEventKind,
    /// The seller, buyer or campaign concerned; 0 if none.
    pub party_id: u64,
    /// 0 if none.
    pub amount: Money,
    /// 0 if none.
    pub code: ErrorCode,
    pub detail: Cow<'a, str>,
}

impl TraceEvent<'_> {
    pub fn into_owned(self) -> TraceEvent<'static> {
        TraceEvent {
            at: self.at,
            kind: self.kind,
            party_id: self.party_id,
            amount: self.amount,
            code: self.code,
            detail: own(self.detail),
        }
    }
}

/// `TRACE` (0x030E): a lead's life, oldest event first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trace<'a> {
    pub ping_id: u64,
    /// 0 if never posted.
    pub lead_id: u64,
    pub events: Vec<TraceEvent<'a>>,
}

impl<'a> Trace<'a> {
    /// Smallest event: at, kind, party_id, amount, code and an empty detail.
    const EVENT_SIZE_MIN: usize = 8 + 2 + 8 + 8 + 2 + 2;

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(Self {
            ping_id: r.u64("ping_id")?,
            lead_id: r.u64("lead_id")?,
            events: r.list(TRACE_EVENTS_MAX, "events", Self::EVENT_SIZE_MIN, |r| {
                Ok(TraceEvent {
                    at: r.u64("at")?,
                    kind: TraceEventKind(r.u16("kind")?),
                    party_id: r.u64("party_id")?,
                    amount: r.money("amount")?,
                    code: decode_code(r, "code")?,
                    detail: Cow::Borrowed(r.string(TRACE_DETAIL_LEN_MAX, "detail")?),
                })
            })?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.u64(self.ping_id);
        w.u64(self.lead_id);
        w.list(&self.events, TRACE_EVENTS_MAX, "events", |w, event| {
            w.u64(event.at);
            w.u16(event.kind.0);
            w.u64(event.party_id);
            w.money(event.amount, "amount")?;
            w.u16(event.code.0);
            w.string(&event.detail, TRACE_DETAIL_LEN_MAX, "detail")
        })
    }

    pub fn into_owned(self) -> Trace<'static> {
        Trace {
            ping_id: self.ping_id,
            lead_id: self.lead_id,
            events: self
                .events
                .into_iter()
                .map(TraceEvent::into_owned)
                .collect(),
        }
    }
}
